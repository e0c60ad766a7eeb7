"""Uploading photos: owner.js sends one file per request and wants JSON; a plain form posts them all."""

from __future__ import annotations

from flask import flash, jsonify, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from werkzeug.wrappers import Response

from ..errors import wants_json
from . import bp, service
from .album_views import owner_id

FIELD = "photos"
NO_FILES = _l("Choose at least one photo to upload.")


@bp.post("/albums/<int:album_id>/photos")
def upload(album_id: int) -> Response | tuple[Response, int]:
    """Save every good file; each bad one gets its own error.

    JSON (Accept: application/json): {"files": [{"name", "ok", "error"?, "photo_id"?}], "saved", "version"}.
    """
    album = service.owned_album(owner_id(), album_id)
    # A form sent with nothing chosen still carries one empty part with an empty filename.
    files = [(f.filename, f.stream) for f in request.files.getlist(FIELD) if f.filename]
    results = service.save_uploads(album, files)
    saved = sum(result.ok for result in results)
    if wants_json():
        body = {"files": [r.as_json() for r in results], "saved": saved, "version": album.version}
        if not results:
            body.update(error="no_files", message=str(NO_FILES))
        # 200 once the files were looked at, however each fared: the outcome of each is in `files`.
        return jsonify(body), 200 if results else 400
    _flash_results(results, saved)
    return redirect(url_for(".album", album_id=album.id, _anchor="photos" if saved else "upload"))


def _flash_results(results: list[service.UploadResult], saved: int) -> None:
    if not results:
        flash(str(NO_FILES), "error")
        return
    if saved:
        flash(ngettext("%(num)d photo uploaded.", "%(num)d photos uploaded.", saved), "success")
    for result in results:
        if not result.ok:
            flash(f"{result.name}: {result.error}", "error")
