"""The owner's download rules at the door of every download view: what the visitor brought, the slot, the forms.

Views call `deliver(link, kind, build)` for anything that sends bytes (a photo, an archive of any kind, a
prepared link) and `check_download(link, kind)` for what only starts one (preparing); the rules themselves
are in `download_rules`. A browser asked for a PIN or an e-mail gets a short form (`before_download`), then
goes on to the download it asked for; scripts send `X-Download-Pin` and `X-Visitor-Email`.

The visitor's e-mail lives in the Flask session: `session["visitor_email"]` (the address, also read by the
activity record) and `session["visitor_email_shares"]` (the share ids it was given for: each owner asks for
it themselves).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response

from .. import delivery, download_rules
from ..access import find_share
from ..delivery import links
from ..download_rules import DownloadAsk, DownloadLimitReached, DownloadPinRequired, EmailRequired, WrongDownloadPin
from ..errors import AppError, error_response, wants_json
from ..models import ShareLink
from . import EMAIL_KEY, count_download, pages_bp, visitor_share

# The visitor pages of downloads (these forms, the "preparing" and "gone" pages of prepare.py): never stored.
PAGE_HEADERS = {"Cache-Control": "private, no-store", "Referrer-Policy": "same-origin", "X-Robots-Tag": "noindex"}
EMAIL_SHARES_KEY = "visitor_email_shares"


def email_given(link: ShareLink) -> bool:
    return bool(session.get(EMAIL_KEY)) and link.id in session.get(EMAIL_SHARES_KEY, [])


def remember_email(link: ShareLink, email: str) -> None:
    session[EMAIL_KEY] = email
    session[EMAIL_SHARES_KEY] = sorted({*session.get(EMAIL_SHARES_KEY, []), link.id})[-50:]


def _ask(link: ShareLink, kind: str, *, sends: bool = False) -> DownloadAsk:
    """What this request brought; an X-Visitor-Email header is checked and remembered like the form's."""
    g.download_share = link  # for `gate_page`: a prepared link's URL names no share token
    header_email = request.headers.get("X-Visitor-Email")
    if header_email and not email_given(link):
        remember_email(link, download_rules.normalize_email(header_email))
    return DownloadAsk(
        kind=kind,
        client=get_remote_address(),
        pin=request.form.get("pin") or request.headers.get("X-Download-Pin"),
        pin_cookie=request.cookies.get(download_rules.pin_cookie_name(link)),
        email_given=email_given(link),
        resuming=sends and not delivery.asks_from_first_byte(request.environ),
    )


def check_download(link: ShareLink, kind: str, *, sends: bool = False) -> bool:
    """Every rule for a download of `kind`, taking no slot (for what prepares one; `deliver` for what sends);
    True when a PIN was right just now: give the PIN cookie with `grant_pin`."""
    ask = _ask(link, kind, sends=sends)
    return download_rules.check(link, ask, secret_key=current_app.config["SECRET_KEY"])


def deliver(
    link: ShareLink, kind: str, build: Callable[[delivery.OnClose], Response], *, photo_id: int | None = None,
    part: str | None = None, size: str = "original",
) -> Response:
    """The download `build` makes (of photos at `size`, sizes.py, as activity records it) (handed the link's counting and activity close callback), once every rule
    allows it and, when the response starts a download, a slot is taken: a full limit refuses before any byte
    is sent."""
    pin_checked = check_download(link, kind, sends=True)
    refused: list[bool] = []
    deferred_slot: list[str] = []
    counter = count_download(link, kind, photo_id=photo_id, part=part, size=size)

    def on_close(sent: delivery.Delivery) -> None:
        if not refused:  # a refused response sends nothing: it must not count as started
            counter(sent, slot=deferred_slot[0] if deferred_slot else None)

    response = build(on_close)
    if delivery.starts_download(request.environ, response):
        if not download_rules.has_limit(link, kind):
            deferred_slot.append(download_rules.slot_column(kind))  # only counted: the activity writer adds it
        elif not download_rules.take_slot(link.id, kind):
            refused.append(True)
            response.close()  # releases what the response holds (an open file, an archive's shared lock)
            raise DownloadLimitReached()
    return grant_pin(response, link) if pin_checked else response


def grant_pin(response: Response, link: ShareLink) -> Response:
    """The cookie that spares this browser the PIN for this link until the owner changes it."""
    response.set_cookie(
        download_rules.pin_cookie_name(link),
        download_rules.pin_cookie_value(link, current_app.config["SECRET_KEY"]),
        max_age=download_rules.PIN_COOKIE_MAX_AGE, httponly=True, samesite="Lax", secure=request.is_secure, path="/",
    )
    return response


def pending(link: ShareLink) -> download_rules.Pending:
    return download_rules.pending(
        link, pin_cookie=request.cookies.get(download_rules.pin_cookie_name(link)), email_given=email_given(link),
        secret_key=current_app.config["SECRET_KEY"],
    )


def before_download_url(token: str, target: str) -> str:
    return url_for("share.before_download", token=token, next=target)


def safe_next(token: str, target: str | None) -> str:
    """Only this share's own pages and downloads, or a prepared link: never another site (an open redirect)."""
    allowed = (f"/s/{token}/", f"/api/share/{token}/", "/d/")
    if target and target.startswith(allowed) and not any(bad in target.lower() for bad in ("//", "\\", "/.", "%")):
        return target
    return url_for("share.gallery", token=token)


@pages_bp.get("/s/<token>/before-download")
def before_download(token: str) -> Response:
    """The PIN and e-mail forms the gallery's download buttons lead to; straight on once nothing is asked."""
    target = safe_next(token, request.args.get("next"))
    link = g.download_share = _form_share(token, target)
    state = pending(link)
    if not (state.pin or state.email):
        return redirect(target, 303)
    return _form_page(link, target, state, status=200)


def _form_share(token: str, target: str) -> ShareLink:
    """The share a PIN or e-mail form is for: opened like any page (the password), or, on the way to a valid
    prepared link of that very share, without it (the signed link is the proof and needs no password)."""
    if target.startswith(links.PATH_PREFIX):
        try:
            grant = links.load(target.removeprefix(links.PATH_PREFIX))
        except AppError:
            grant = None
        link = find_share(token)
        if grant is not None and grant.share_id == link.id:
            return link
    return visitor_share(token)


@pages_bp.post("/s/<token>/download-pin")
def give_pin(token: str) -> Response:
    """The PIN form: a right PIN earns the cookie and goes on to the download (or the e-mail form)."""
    target = safe_next(token, request.form.get("next"))
    link = _form_share(token, target)
    try:
        check_download(link, "photo")
    except (EmailRequired, DownloadLimitReached):
        pass  # the PIN was right: what else is missing is asked on the way
    return grant_pin(redirect(before_download_url(token, target), 303), link)


@pages_bp.post("/s/<token>/visitor-email")
def give_email(token: str) -> Response:
    """The e-mail form: the address is kept in this browser's session for this share."""
    target = safe_next(token, request.form.get("next"))
    link = g.download_share = _form_share(token, target)
    remember_email(link, download_rules.normalize_email(request.form.get("email", "")))
    return redirect(before_download_url(token, target), 303)


@pages_bp.errorhandler(download_rules.InvalidEmail)
@pages_bp.errorhandler(DownloadPinRequired)
@pages_bp.errorhandler(WrongDownloadPin)
@pages_bp.errorhandler(EmailRequired)
@pages_bp.errorhandler(DownloadLimitReached)
def gate_page(exc: AppError) -> Response:
    """In the visitor's pages, the form that clears the way (or the limit notice) instead of an error page."""
    if wants_json():
        return error_response(exc.status, exc.error, str(exc.message))
    link: ShareLink | None = g.get("download_share")
    if link is None:
        return error_response(exc.status, exc.error, str(exc.message))
    target = request.form.get("next") if request.method == "POST" else request.full_path.rstrip("?")
    error = None if isinstance(exc, DownloadPinRequired | EmailRequired) else str(exc.message)
    return _form_page(link, safe_next(link.token, target), pending(link), status=exc.status, error=error,
                      limit=isinstance(exc, DownloadLimitReached))


def _form_page(
    link: ShareLink, target: str, state: download_rules.Pending, *, status: int, error: str | None = None,
    limit: bool = False,
) -> Response:
    html = render_template(
        "share/download_gate.html", token=link.token, album=link.album, target=target, pending=state, error=error,
        limit=limit, title=_("Download limit reached") if limit else _("Before you download"),
    )
    return Response(html, status=status, headers=PAGE_HEADERS, mimetype="text/html")
