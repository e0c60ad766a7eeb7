"""Share links of an album: create (password, expiry, downloads), list with counters, revoke."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ..access import create_share_link, revoke_share_link, share_url
from ..models import Album
from . import bp, service
from .album_views import owner_id
from .forms import DownloadPinForm, ShareForm, ShareRulesForm


def _render(album: Album, form: ShareForm, status: int = 200) -> tuple[str, int]:
    return (
        render_template(
            "owner/shares.html",
            album=album,
            links=album.share_links,
            form=form,
            share_url=share_url,
            new_id=request.args.get("new", type=int),
            rules_form=ShareRulesForm(),
            pin_form=DownloadPinForm(),
        ),
        status,
    )


@bp.get("/albums/<int:album_id>/shares")
def shares(album_id: int) -> tuple[str, int]:
    """The album's links (newest first) with their counters, and the form for a new one."""
    return _render(service.owned_album(owner_id(), album_id), ShareForm())


@bp.post("/albums/<int:album_id>/shares")
def create_share(album_id: int) -> Response | tuple[str, int]:
    album = service.owned_album(owner_id(), album_id)
    form = ShareForm()
    if not form.validate_on_submit():
        return _render(album, form, 400)
    try:
        expires_at = service.expiry_from_form(
            form.expires_in.data, form.expires_unit.data, form.expires_on.data, form.tz_offset_minutes()
        )
    except ValueError as exc:
        form.expires_in.errors.append(str(exc))
        return _render(album, form, 400)
    link = create_share_link(
        album, password=form.password.data or None, expires_at=expires_at, downloads_allowed=form.downloads_allowed.data,
        ask_email=form.ask_email.data, download_pin=form.download_pin.data or None,
        max_album_downloads=form.max_album_downloads.data, max_photo_downloads=form.max_photo_downloads.data,
        language=form.language.data or None,
        web_size_only=form.web_size_only.data, strip_location=form.strip_location.data,
    )
    flash(_("Share link created. Copy it and send it to your client."), "success")
    return redirect(url_for(".shares", album_id=album.id, new=link.id, _anchor=f"link-{link.id}"))


@bp.post("/albums/<int:album_id>/shares/<int:share_id>/revoke")
def revoke_share(album_id: int, share_id: int) -> Response:
    """Revoking is final: the link answers 410 from now on; make a new link to share again."""
    link = service.owned_share(owner_id(), album_id, share_id)
    revoke_share_link(link)
    flash(_("Link revoked. Anyone who opens it now sees that it is no longer available."), "success")
    return redirect(url_for(".shares", album_id=album_id, _anchor=f"link-{link.id}"))
