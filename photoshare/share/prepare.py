"""Visitor pages of prepared downloads: the "preparing" page and the signed download link itself.

The signed link (`/d/<signed>`) needs no password: it is the proof. It still obeys the share's rules, serves
Range / If-Range with the album version's ETag exactly like "Download all", and when it can no longer be
used answers 410 with a page that offers to prepare the download again.
"""

from __future__ import annotations

from flask import current_app, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import delivery, jobs
from ..access import ShareGone, ShareNotFound, download_variant, find_share, require_downloads
from ..archive import archive_name
from ..delivery import links
from ..errors import error_response, wants_json
from ..extensions import db
from ..jobs import notify
from ..models import ShareLink
from . import count_download, gallery, pages_bp, visitor_share

PAGE_HEADERS = {"Cache-Control": "private, no-store", "Referrer-Policy": "same-origin", "X-Robots-Tag": "noindex"}


def prepare_page_url(token: str) -> str:
    return f"/s/{token}/prepare"


@pages_bp.get("/s/<token>/prepare")
def prepare_page(token: str) -> Response:
    """The progress bar of "Download all" for a large album; the download starts by itself when ready."""
    link = visitor_share(token)
    require_downloads(link)
    size = download_variant(link, request.args.get("size")).query
    totals = gallery.album_totals(link.album_id)
    html = render_template(
        "share/prepare.html",
        token=token,
        album=link.album,
        totals=totals,
        email_enabled=notify.enabled(),
        prepare_url=url_for("share_api.prepare_download", token=token, **size),
        status_url=url_for("share_api.download_status", token=token, job_id="job")[: -len("job")],
        gallery_url=url_for("share.gallery", token=token),
        direct_url=url_for("share_api.download_all", token=token, **size),
    )
    return Response(html, headers=PAGE_HEADERS, mimetype="text/html")  # werkzeug's default is text/plain


@pages_bp.route("/d/<signed>", methods=["GET", "HEAD"])
def prepared_download(signed: str) -> Response:
    """The prepared ZIP behind a signed link: resumable, no password, 410 once it cannot be used."""
    try:
        share, album, cached = jobs.open_prepared(signed)
    except links.LinkGone as exc:
        return _link_gone(exc)
    return delivery.send_prepared(
        cached, album, environ=request.environ, download_name=archive_name(album.title), on_close=count_download(share),
        version=links.load(signed).version,  # the album's, or a variant's (web size, location removed)
    )


def _link_gone(exc: links.LinkGone) -> Response:
    """410 with the way back: the preparing page of the same share, when that share is still open."""
    token = _active_token(exc.share_id)
    prepare_url = f"{current_app.config['BASE_URL']}{prepare_page_url(token)}" if token else None
    if wants_json():
        response = error_response(exc.status, exc.error, exc.message)
        if prepare_url:
            response.headers["Link"] = f'<{prepare_url}>; rel="alternate"'
        return response
    html = render_template("share/prepare_gone.html", message=exc.message, prepare_url=prepare_url)
    return Response(html, status=410, headers=PAGE_HEADERS, mimetype="text/html")


def _active_token(share_id: int | None) -> str | None:
    link = db.session.get(ShareLink, share_id) if share_id is not None else None
    if link is None:
        return None
    try:
        return find_share(link.token).token if link.downloads_allowed else None
    except (ShareGone, ShareNotFound):
        return None
