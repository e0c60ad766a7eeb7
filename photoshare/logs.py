"""How Photoshare writes its logs: one line per record, the request's id on it, and never a share password.

A log collector splits on newlines, so a traceback written over thirty lines arrives as thirty records without
context: every line here is one record, tracebacks included (text with `\\n` escaped, or one JSON object with
LOG_FORMAT=json). The request id ties the app's lines to gunicorn's and nginx's access lines for the same
request and is sent back as `X-Request-ID`. A share link may carry its password (`?password=`), and API clients
send `X-Share-Password`: `redact` is the one place that knows what such a secret looks like, and every
formatter here (the app's and gunicorn's, text and JSON) passes what it writes through it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from flask import Flask, g, has_request_context, request
from werkzeug.wrappers import Response

REDACTED = "[redacted]"
REQUEST_ID_HEADER = "X-Request-ID"
# key=value anywhere in a line (a query string, a request line, a form dump); the key may be percent-encoded,
# as Werkzeug decodes `p%61ssword=` to `password` before the app reads it. The value runs to the next space or
# "&" (a password may hold `;,'()`: better to hide too much). A key starts only after a separator, so a long
# word without "=" is scanned once, never from each of its characters.
_PARAM = re.compile(r"(?<![^\s?&;,(\"'<>{])(?P<key>[^\s?&;,(=\"'<>{]+)=(?P<value>[^\s&]*)")
# The header in any spelling a log line may carry: `X-Share-Password: x y`, `'X-Share-Password': 'x y'`,
# `HTTP_X_SHARE_PASSWORD=x`. A quoted value ends at its quote, a bare one at the end of the line or a comma.
# X-Download-Pin likewise (a download PIN is as secret as the password, and shorter).
_HEADER = re.compile(
    r"(?i)(x[-_](?:share[-_]password|download[-_]pin)['\"]?\s*[:=]\s*)(?:(['\"])[^'\"]*['\"]|[^\r\n,}]+)"
)
# What an incoming X-Request-ID may be: nginx's $request_id is 32 hex digits; nothing that could forge a line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# The environ key under which a file body notes itself: gunicorn's sendfile path never counts what it sent, so
# its access log reads the count from the body (photoshare/gunicorn_logger.py).
FILE_BODY = "photoshare.file_body"


def redact(text: str) -> str:
    """`text` with the value of every password parameter and X-Share-Password or X-Download-Pin header replaced
    by [redacted]."""
    lowered = text.lower()
    if "assword" not in lowered and "%" not in lowered and "_pin" not in lowered and "-pin" not in lowered:
        # the common case: nothing to look at twice
        return text

    def param(match: re.Match[str]) -> str:
        if "password" not in unquote_plus(match.group("key")).lower() or not match.group("value"):
            return match.group(0)
        return f"{match.group('key')}={REDACTED}"

    def header(match: re.Match[str]) -> str:
        quote = match.group(2) or ""
        return f"{match.group(1)}{quote}{REDACTED}{quote}"

    return _HEADER.sub(header, _PARAM.sub(param, text))


def one_line(text: str) -> str:
    """Line breaks escaped, so that a record is exactly one line however many its message or traceback has."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def current_request_id() -> str:
    """This request's id ("-" outside a request): nginx's X-Request-ID when PROXY_FIX_HOPS says nginx is
    trusted and the value is a plain token, otherwise one made here. Chosen once per request."""
    if not has_request_context():
        return "-"
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "") if _trusts_proxy() else ""
        g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(16)
    return g.request_id


def _trusts_proxy() -> bool:
    from flask import current_app

    return bool(current_app.config.get("PROXY_FIX_HOPS"))


class LineFormatter(logging.Formatter):
    """A text line: the record, its request id and any traceback, redacted, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = getattr(record, "request_id", None) or current_request_id()
        return one_line(redact(super().format(record)))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (time, level, logger, request_id, message, exception), every string redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or current_request_id(),
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json_line(entry)


def json_line(entry: dict[str, Any]) -> str:
    """`entry` as one line of JSON (json.dumps escapes every line break)."""
    return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: str, fmt: str = _TEXT_FORMAT, datefmt: str | None = None) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else LineFormatter(fmt, datefmt)


def init_logging(app: Flask) -> None:
    """Our handler on the root logger (stderr: gunicorn's error log, the journal), unless something else
    (gunicorn's --log-config, a test runner) configured logging first; and X-Request-ID on every response."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, "_photoshare", False)]
    if len(ours) == len(root.handlers):
        for handler in ours:
            root.removeHandler(handler)
        # The process's own stderr: sys.stderr may be swapped (a test runner) or become a logger itself (Celery
        # redirects it into logging, where writing to it again would loop and be dropped).
        handler = logging.StreamHandler(sys.__stderr__ or sys.stderr)
        handler._photoshare = True  # type: ignore[attr-defined]
        handler.setFormatter(formatter(app.config["LOG_FORMAT"]))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)  # a warning is a record too, not several lines of its own

    @app.after_request
    def send_request_id(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = current_request_id()
        return response
