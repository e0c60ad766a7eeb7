"""Albums and their photos: list, create, rename, delete, and the owner's thumbnails."""

from __future__ import annotations

import math

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from .. import albums as album_ops
from ..auth import current_user
from ..images import InvalidImage
from ..storage import get_storage
from . import bp, service
from .forms import ActionForm, AlbumForm, PhotoRenameForm, ShareForm

PHOTOS_PER_PAGE = 120


def owner_id() -> int:
    user = current_user()
    assert user is not None  # the blueprint's before_request guarantees it
    return user.id


def first_error(form: ActionForm | AlbumForm | PhotoRenameForm | ShareForm) -> str:
    return next((errors[0] for errors in form.errors.values() if errors), _("Please check the form."))


@bp.get("/albums")
def albums() -> str:
    """The owner's albums, each with its cover, photo count and size; the form to start a new one."""
    return render_template("owner/albums.html", summaries=service.album_summaries(owner_id()), form=AlbumForm())


@bp.post("/albums")
def create_album() -> Response | tuple[str, int]:
    form = AlbumForm()
    if not form.validate_on_submit():
        summaries = service.album_summaries(owner_id())
        return render_template("owner/albums.html", summaries=summaries, form=form), 400
    album = album_ops.create_album(current_user(), form.title.data)
    flash(_("Album “%(title)s” created. Now add some photos.", title=album.title), "success")
    return redirect(url_for(".album", album_id=album.id))


@bp.get("/albums/<int:album_id>")
def album(album_id: int) -> str:
    """One album: its photos a page at a time (an album may hold thousands), upload, rename."""
    album = service.owned_album(owner_id(), album_id)
    count, total_bytes = service.album_stats(album)
    pages = max(math.ceil(count / PHOTOS_PER_PAGE), 1)
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    return render_template(
        "owner/album.html",
        album=album,
        photos=service.photo_page(album, page, PHOTOS_PER_PAGE),
        photo_count=count,
        total_bytes=total_bytes,
        page=page,
        pages=pages,
        rename_form=AlbumForm(title=album.title),
        max_upload_bytes=current_app.config["MAX_CONTENT_LENGTH"],
    )


@bp.post("/albums/<int:album_id>/rename")
def rename_album(album_id: int) -> Response:
    album = service.owned_album(owner_id(), album_id)
    form = AlbumForm()
    if form.validate_on_submit():
        album_ops.rename_album(album, form.title.data)
        flash(_("Album renamed."), "success")
    else:
        flash(first_error(form), "error")
    return redirect(url_for(".album", album_id=album.id))


@bp.route("/albums/<int:album_id>/delete", methods=["GET", "POST"])
def delete_album(album_id: int) -> Response | str:
    """GET asks for confirmation (works without JavaScript); POST deletes the album, photos and links."""
    album = service.owned_album(owner_id(), album_id)
    form = ActionForm()
    if not form.validate_on_submit():
        count, total_bytes = service.album_stats(album)
        return render_template(
            "owner/delete_album.html", album=album, photo_count=count, total_bytes=total_bytes, form=form
        )
    title = album.title
    album_ops.delete_album(album)
    flash(_("Album “%(title)s” deleted.", title=title), "success")
    return redirect(url_for(".albums"))


@bp.post("/albums/<int:album_id>/photos/<int:photo_id>/rename")
def rename_photo(album_id: int, photo_id: int) -> Response:
    photo = service.owned_photo(owner_id(), album_id, photo_id)
    form = PhotoRenameForm()
    if form.validate_on_submit():
        album_ops.rename_photo(photo, form.filename.data)
        flash(_("Renamed to “%(name)s”.", name=photo.original_filename), "success")
    else:
        flash(first_error(form), "error")
    return redirect(_back_to_album(album_id, f"photo-{photo_id}"))


@bp.post("/albums/<int:album_id>/photos/<int:photo_id>/delete")
def delete_photo(album_id: int, photo_id: int) -> Response:
    photo = service.owned_photo(owner_id(), album_id, photo_id)
    name = photo.original_filename
    album_ops.delete_photo(photo)
    flash(_("Deleted “%(name)s”.", name=name), "success")
    return redirect(_back_to_album(album_id, "photos"))


@bp.get("/albums/<int:album_id>/photos/<int:photo_id>/thumbnail")
def thumbnail(album_id: int, photo_id: int) -> Response:
    """The photo's thumbnail for its owner (visitors use the share's own route); remade if missing."""
    photo = service.owned_photo(owner_id(), album_id, photo_id)
    try:
        key = album_ops.ensure_thumbnail(photo)
        source = get_storage().open(key)
    except FileNotFoundError:
        abort(404, _("This photo's file is missing."))
    except InvalidImage:  # an older original that cannot be decoded (damaged, or over MAX_IMAGE_PIXELS)
        abort(404, _("This photo cannot be shown."))
    response = send_file(
        source, mimetype="image/jpeg", etag=f"thumb-{photo.stored_name}", max_age=86400, conditional=True
    )
    response.cache_control.public = False  # an owner's photos never sit in a shared cache
    response.cache_control.private = True
    return response


def _back_to_album(album_id: int, anchor: str) -> str:
    page = request.args.get("page", 1, type=int)
    return url_for(".album", album_id=album_id, page=page if page > 1 else None, _anchor=anchor)
