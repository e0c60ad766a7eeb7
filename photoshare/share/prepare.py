"""Visitor pages of prepared downloads: the "preparing" page and the signed download link itself.

The signed link (`/d/<signed>`) needs no password: it is the proof. It still obeys the share's rules, serves
Range / If-Range with the album version's ETag exactly like "Download all", and when it can no longer be
used answers 410 with a page that prepares the download again in one click (`prepare_again`): the same share,
the album as it is now, at once when its ZIP is still cached.
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import delivery, jobs, plans
from ..access import ShareGone, ShareNotFound, download_variant, find_share
from ..delivery import links
from ..errors import error_response, wants_json
from ..extensions import db
from ..jobs import notify
from ..models import ShareLink
from ..sizes import ORIGINAL, Variant
from . import archives, gallery, pages_bp, visitor_share
from .download_gate import PAGE_HEADERS, check_download, deliver
from .jobs_api import notify_requests, requested_email


def prepare_page_url(token: str) -> str:
    return f"/s/{token}/prepare"


@pages_bp.get("/s/<token>/prepare")
def prepare_page(token: str) -> Response:
    """The progress bar of "Download all" for a large album (or of a selection, a part: `?selection_id=`,
    `?part=`); the download starts by itself when ready."""
    link = visitor_share(token)
    check_download(link, "prepared")
    variant = download_variant(link, request.args.get("size"))
    totals = gallery.album_totals(link.album_id)
    wanted = {name: value for name, value in archives.plan_args().items() if value}
    direct_url = url_for("share_api.download_all", token=token)
    if wanted or variant.size != ORIGINAL:  # a selection, a part, web size: that plan's own totals and URL
        plan = archives.requested_plan(link.album, **wanted, variant=variant)
        totals = gallery.AlbumTotals(plan.photo_count, plan.photo_bytes)
        direct_url = archives.download_url(token, plan)
    html = render_template(
        "share/prepare.html",
        token=token,
        album=link.album,
        totals=totals,
        email_enabled=notify.enabled(),
        prepare_url=url_for("share_api.prepare_download", token=token, **wanted, **variant.query),
        status_url=url_for("share_api.download_status", token=token, job_id="job")[: -len("job")],
        gallery_url=url_for("share.gallery", token=token),
        direct_url=direct_url,
    )
    return Response(html, headers=PAGE_HEADERS, mimetype="text/html")  # werkzeug's default is text/plain


@pages_bp.route("/d/<signed>", methods=["GET", "HEAD"])
def prepared_download(signed: str) -> Response:
    """The prepared ZIP behind a signed link: resumable, no password, 410 once it cannot be used."""
    try:
        share, plan, cached = jobs.open_prepared(signed)
    except links.LinkGone as exc:
        return _link_gone(exc, signed)
    try:
        return deliver(share, "prepared", lambda on_close: delivery.send_prepared(
            cached, plan, environ=request.environ, download_name=archives.download_name(plan), on_close=on_close),
            part=str(plan.part) if plan.part else None, size=plan.variant.size)
    except Exception:
        delivery.release_prepared(cached)  # refused before sending (PIN, e-mail, limit): the lock must go now
        raise


@pages_bp.post("/d/<signed>/again")
@notify_requests
def prepare_again(signed: str) -> Response:
    """One click on an expired (or outdated) link's page: prepare the album as it is now for the same share (the
    same plan in the same size, under the share's rules as they are now), ready at once when its ZIP is still
    cached; the owner's download rules apply as to any download."""
    share = _share_of(signed)
    check_download(share, "prepared")
    raw_email = requested_email()
    grant = links.load_any_age(signed)
    variant = download_variant(share, Variant.from_key(grant.variant).size)
    plan = plans.resolve(share.album, grant.plan_ref, variant) if share.album.photos else None
    job = jobs.prepare(share, plan=plan, email=notify.normalize_address(raw_email) if raw_email else None)
    return _again(signed, share, job)


@pages_bp.get("/d/<signed>/again")
def prepare_again_status(signed: str) -> Response:
    """Where the preparation started by `prepare_again` stands; on to the fresh link once it is ready."""
    share = _share_of(signed)
    check_download(share, "prepared")
    return _again(signed, share, jobs.status(share, request.args.get("job", "")))


def _share_of(signed: str) -> ShareLink:
    """The still-open share a genuine link of any age was issued through (410 once that share is closed)."""
    grant = links.load_any_age(signed)
    share = db.session.get(ShareLink, grant.share_id)
    if share is None or share.album_id != grant.album_id:
        raise links.LinkInvalid()
    return find_share(share.token)


def _again(signed: str, share: ShareLink, job: jobs.JobView) -> Response:
    if job.status == "ready" and job.download_url:
        return redirect(job.download_url, 303)
    html = render_template(
        "share/prepare_again.html", album=share.album, job=job, gallery_url=url_for("share.gallery", token=share.token),
        status_url=url_for("share.prepare_again_status", signed=signed, job=job.job_id),
        again_url=url_for("share.prepare_again", signed=signed), expired_url=url_for("share.prepared_download", signed=signed),
    )
    return Response(html, status=202 if job.status != "failed" else 200, headers=PAGE_HEADERS, mimetype="text/html")


def _link_gone(exc: links.LinkGone, signed: str) -> Response:
    """410 with the way back: a button preparing the download again for the same share (with the e-mail
    option), when that share is still open."""
    token = _active_token(exc.share_id)
    prepare_url = f"{current_app.config['BASE_URL']}{prepare_page_url(token)}" if token else None
    if wants_json():
        response = error_response(exc.status, exc.error, exc.message)
        if prepare_url:
            response.headers["Link"] = f'<{prepare_url}>; rel="alternate"'
        return response
    html = render_template(
        "share/prepare_gone.html", message=exc.message, prepare_url=prepare_url, email_enabled=notify.enabled(),
        again_url=url_for("share.prepare_again", signed=signed) if token else None,
        expired_url=url_for("share.prepared_download", signed=signed),
    )
    return Response(html, status=410, headers=PAGE_HEADERS, mimetype="text/html")


def _active_token(share_id: int | None) -> str | None:
    link = db.session.get(ShareLink, share_id) if share_id is not None else None
    if link is None:
        return None
    try:
        return find_share(link.token).token if link.downloads_allowed else None
    except (ShareGone, ShareNotFound):
        return None
