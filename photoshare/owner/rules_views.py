"""An existing share link's download rules: the e-mail question, the limits and their counts, the PIN.

The rules themselves (what a visitor must give, how slots are counted) are in `download_rules`.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from .. import download_rules
from . import bp, service
from .album_views import owner_id
from .forms import DownloadPinForm, ShareRulesForm


def _back(album_id: int, share_id: int) -> Response:
    return redirect(url_for(".shares", album_id=album_id, _anchor=f"link-{share_id}"))


@bp.post("/albums/<int:album_id>/shares/<int:share_id>/rules")
def share_rules(album_id: int, share_id: int) -> Response:
    """Raise, lower or lift the limits, reset the counts, ask or stop asking for an e-mail."""
    link = service.owned_share(owner_id(), album_id, share_id)
    form = ShareRulesForm()
    if not form.validate_on_submit():
        flash(" ".join(error for errors in form.errors.values() for error in errors), "error")
        return _back(album_id, share_id)
    link.ask_email = form.ask_email.data
    download_rules.set_limits(
        link, max_album=form.max_album_downloads.data, max_photo=form.max_photo_downloads.data,
        reset=form.reset_counts.data,
    )
    flash(_("Download rules saved."), "success")
    return _back(album_id, share_id)


@bp.post("/albums/<int:album_id>/shares/<int:share_id>/download-pin")
def share_download_pin(album_id: int, share_id: int) -> Response:
    """A new PIN (or none): visitors who gave the old one are asked again."""
    link = service.owned_share(owner_id(), album_id, share_id)
    form = DownloadPinForm()
    if not form.validate_on_submit():
        flash(" ".join(error for errors in form.errors.values() for error in errors), "error")
        return _back(album_id, share_id)
    download_rules.set_download_pin(link, form.download_pin.data or None)
    flash(_("Download PIN changed.") if form.download_pin.data else _("Downloads no longer need a PIN."), "success")
    return _back(album_id, share_id)
