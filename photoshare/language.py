"""The footer's language menu: a plain form (no JavaScript, CSRF-checked like every form) that keeps the
visitor's choice in a cookie; `i18n.select_locale` prefers it to Accept-Language."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, current_app, redirect, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from .errors import AppError
from .i18n import COOKIE_MAX_AGE, COOKIE_NAME, supported

bp = Blueprint("language", __name__)


class UnknownLanguage(AppError):
    status, error = 400, "unknown_language"


def back_to(referrer: str | None, host: str) -> str:
    """The page the menu was on (its Referer: our pages send it to us, Referrer-Policy same-origin): a path on
    this site only, never another site, never a `?password=`; the start page when there is none."""
    if not referrer:
        return "/"
    parts = urlsplit(referrer)
    if parts.netloc != host or not parts.path.startswith("/") or parts.path.startswith(("//", "/\\")):
        return "/"
    query = urlencode([(key, value) for key, value in parse_qsl(parts.query) if key != "password"])
    return parts.path + ("?" + query if query else "")


@bp.post("/language")
def choose() -> Response:
    """Remember the visitor's language for a year and go back to the page they were on."""
    code = supported(request.form.get("language"))
    if code is None:
        raise UnknownLanguage(_("That language is not available here."))
    response = redirect(back_to(request.referrer, request.host), 303)
    response.set_cookie(
        COOKIE_NAME, code, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax",
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure),
    )
    return response
