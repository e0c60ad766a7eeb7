"""Errors a person can read: a page in the site's look for browsers, JSON on /api/ paths, never a trace."""

from __future__ import annotations

import logging
import math
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from .extensions import limiter
from .i18n import N_  # the English title also names the error (`_slug`)
from .storage.base import StorageError

log = logging.getLogger(__name__)

TITLES = {
    400: N_("Bad request"),
    401: N_("Password required"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    410: N_("This link is no longer available"),
    413: N_("Upload too large"),
    416: N_("Range not satisfiable"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
    503: N_("Temporarily unavailable"),
    507: N_("Server storage is full"),
}

# What a browser or an API client reads for Werkzeug's own errors (its descriptions are English only).
MESSAGES = {
    404: N_("There is nothing at this address."),
    405: N_("This address does not accept that kind of request."),
    400: N_("The request could not be understood."),
}


class AppError(Exception):
    """An error with a status, a machine-readable code and a message for people."""

    status = 400
    error = "bad_request"
    message = _l("The request could not be understood.")

    def __init__(
        self,
        message: str | None = None,
        *,
        error: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message  # a lazy default turns into text in the language of the response
        self.error = error or self.error
        self.status = status or self.status
        self.headers = headers or {}


class NotFound(AppError):
    status, error, message = 404, "not_found", _l("There is nothing at this address.")


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, error: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    message = str(message)  # a lazy message from a class attribute, in the language chosen for this request
    if wants_json():
        response = jsonify({"error": error, "message": message})
    else:
        title = _(TITLES.get(status, N_("Error")))
        response = Response(
            render_template(
                "errors/page.html", status=status, title=title, message=message, error=error,
                retry_url=retry_url(), **extra,
            )
        )
    response.status_code = status
    response.headers.update(headers or {})
    # An error answers one visitor (a wrong password, an expired link): no shared cache or CDN may keep it.
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def retry_url() -> str:
    """Where "Try again" goes: a GET repeated as it was, but never with a password in the address; after a
    form post, the page the form came from."""
    if request.method != "GET":
        return request.path
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "password"]
    return request.path + ("?" + urlencode(args) if args else "")


def limit_headers(amount: int, reset_at: float) -> dict[str, str]:
    """The headers of a 429, and only of a 429 (no other response carries rate-limit headers): the limit that
    answered, nothing left, and when to come back in whole seconds, at least 1."""
    return {
        "X-RateLimit-Limit": str(amount),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(math.ceil(reset_at)),
        "Retry-After": str(max(1, math.ceil(reset_at - time.time()))),
    }


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError) -> Response:
        return error_response(exc.status, exc.error, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = dict(exc.get_headers()) if status in (405, 416, 429) else {}
        headers.pop("Content-Type", None)
        breached = limiter.current_limit if isinstance(exc, RateLimitExceeded) else None
        if breached is not None:  # Flask-Limiter's own headers are off: they went on every response of a route
            headers.update(limit_headers(breached.limit.amount, breached.window.reset_time))
        message = _http_message(exc)
        return error_response(status, _slug(TITLES.get(status, exc.name)), message, headers)

    @app.errorhandler(StorageError)
    def handle_storage_error(exc: StorageError) -> Response:
        # Nothing was committed that points at a missing object, so the visitor can simply try again.
        log.warning("storage unavailable on %s %s: %s", request.method, request.path, exc)
        message = _("Photo storage is not answering right now. Nothing was lost; please try again in a minute.")
        return error_response(503, "storage_unavailable", message, {"Retry-After": "30"})

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("Something went wrong on our side. Please try again in a moment."))


def _http_message(exc: HTTPException) -> str:
    status = exc.code or 500
    if status == 413:
        return _("That upload is larger than this server accepts.")
    if status == 429:
        return _("Too many attempts. Please wait a minute and try again.")
    if status == 400 and "CSRF" in (exc.description or ""):
        return _("Your session form expired. Please reload the page and try again.")
    if status == 416:
        return _("The requested byte range is outside the file.")
    if exc.description and exc.description != type(exc).description:  # a message of ours (abort(404, _("...")))
        return exc.description
    return _(MESSAGES.get(status) or TITLES.get(status, N_("Error")))


def _slug(title: str) -> str:
    return title.lower().replace(" ", "_")
