"""Range and conditional rules, in one place: what a response for a file of `size` bytes answers, and what
it sent (`Delivery`), whichever strategy sends the bytes (gunicorn, nginx, the store after a redirect).

Werkzeug decides what to answer (`make_conditional`: If-None-Match, If-Modified-Since, If-Range, Range) on a
copy of the request whose Range header was first put right here (`conditional_environ`), because Werkzeug
416s where RFC 9110 says otherwise (several ranges, a suffix longer than the file, units other than bytes).
nginx applies its own rules to a hand-over (`nginx_delivery` predicts them), and a redirect hands every
byte to the store (`redirect_delivery`). Werkzeug only, never Flask: no app, no request, only the environ.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.http import http_date, parse_etags, parse_range_header
from werkzeug.wrappers import Response

# A Range header Werkzeug cannot parse: it answers 416 with `Content-Range: bytes */SIZE`, but only when it
# would have honoured the range at all (a stale If-Range turns any Range, even a broken one, into a 200).
_UNPARSABLE_RANGE = "bytes=invalid"
# RFC 9110 digits are ASCII only: `\d` would also take "٣" (Arabic-Indic three), which int() reads as 3.
_RANGE_SPEC = re.compile(r"^([0-9]*)-([0-9]*)$")
# Positions at or past this are past the end of any file we serve; a longer number is read as this one, never
# converted whole (Python refuses int() of more than 4,300 digits, and a 10^4000 offset means "past the end").
_BEYOND_ANY_FILE = 1 << 63


@dataclass(frozen=True)
class Delivery:
    """What a response sent, handed to `on_close`: enough to tell a finished download from a partial one."""

    method: str
    status: int
    start: int
    stop: int  # exclusive
    size: int
    complete: bool  # every byte of [start, stop) went out (and, at the file's end, the client acknowledged it)
    # Bytes that went out, when the sender counted them (None: all of [start, stop) or none). Not part of what a
    # response *answered*, so two Deliveries of the same answer compare equal however far each got.
    sent: int | None = field(default=None, compare=False)

    @property
    def bytes_sent(self) -> int:
        """What this response sent of the file (activity's "bytes"): counted by gunicorn's body, else predicted."""
        if self.sent is not None:
            return self.sent
        return self.stop - self.start if self.complete and self.status in (200, 206) else 0

    @property
    def started_file(self) -> bool:
        """True for a GET whose body begins at the file's first byte: a download starts (a resumption or a
        download manager's other parts begin later), however far it then gets."""
        return self.method == "GET" and self.status in (200, 206) and self.start == 0

    @property
    def finished_file(self) -> bool:
        """True when this response delivered the last byte of the file: a download (or its resumption) ended."""
        return self.method == "GET" and self.status in (200, 206) and self.complete and self.stop == self.size


OnClose = Callable[[Delivery], None]


def not_modified(environ: dict[str, Any], etag: str, last_modified: datetime) -> Response | None:
    """A 304 when the client already holds this version, checked before doing any work to make the file."""
    if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD") or "HTTP_IF_NONE_MATCH" not in environ:
        return None
    if not parse_etags(environ["HTTP_IF_NONE_MATCH"]).contains_weak(etag):
        return None
    response = Response(status=304)
    response.set_etag(etag)
    response.last_modified = last_modified
    response.cache_control.no_cache = True
    return response


def conditional_environ(
    environ: dict[str, Any], etag: str, size: int, *, dated_if_range: bool = True
) -> dict[str, Any]:
    """A copy of `environ` whose Range header says what RFC 9110 means, in a form Werkzeug reads that way.

    Range is dropped when it must be ignored (a method other than GET, a unit other than bytes, several ranges,
    an empty file, or an If-None-Match that already matches, which wins over Range). Without `dated_if_range`,
    an If-Range date never matches: Last-Modified is then a weak validator (RFC 9110 8.8.2.2, 13.1.5).
    """
    env = dict(environ)
    header = env.pop("HTTP_RANGE", None)
    if header is None or size == 0 or env.get("REQUEST_METHOD", "GET").upper() != "GET":
        return env
    if "HTTP_IF_NONE_MATCH" in env and parse_etags(env["HTTP_IF_NONE_MATCH"]).contains_weak(etag):
        return env
    if_range = env.get("HTTP_IF_RANGE", "").strip()
    if if_range.startswith("W/") or (if_range and not dated_if_range and not if_range.startswith('"')):
        # If-Range needs a strong match; a weak tag or date never matches, so the whole file is sent.
        env["HTTP_IF_RANGE"] = '"-"'
    normalised = normalise_range(header, size)
    if normalised is not None:
        env["HTTP_RANGE"] = normalised
    return env


def normalise_range(header: str, size: int) -> str | None:
    """One byte range in canonical form, None to ignore the header, or an unparsable value meaning 416.

    `bytes=-5000` of a 1,000-byte file becomes `bytes=-1000` (the whole file as a 206), `bytes=10-99999`
    becomes `bytes=10-999`. Never raises, whatever the header and however long its numbers.
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [part.strip() for part in spec.split(",") if part.strip()]
    if len(specs) > 1:
        return None  # several ranges: the whole file with 200 serves every one of them
    match = _RANGE_SPEC.match(specs[0]) if specs else None
    if match is None:
        return _UNPARSABLE_RANGE
    first_digits, last_digits = match.groups()
    if not first_digits:
        suffix = _position(last_digits)
        if not suffix or size <= 0:
            return _UNPARSABLE_RANGE  # "bytes=-" or "bytes=-0", or any suffix of an empty file: unsatisfiable
        return f"bytes=-{min(suffix, size)}"
    first = _position(first_digits)
    if not last_digits:
        return f"bytes={first}-"
    last = _position(last_digits)
    if last < first:
        return _UNPARSABLE_RANGE
    return f"bytes={first}-{min(last, max(first, size - 1))}"


def _position(digits: str) -> int:
    """A byte position from its ASCII digits, capped at _BEYOND_ANY_FILE: never converts a huge number whole."""
    significant = digits.lstrip("0")
    if len(significant) > len(str(_BEYOND_ANY_FILE)):
        return _BEYOND_ANY_FILE
    return min(int(significant or "0"), _BEYOND_ANY_FILE)


def nginx_delivery(environ: dict[str, Any], *, size: int, mtime: int) -> Delivery:
    """What nginx will answer for a file of `size` bytes and `mtime` it sends itself, by its rules: 304 to a
    matching If-None-Match; the one range asked for when If-Range (if any) matches its ETag or Last-Modified;
    416 to a range it cannot satisfy; else the file."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    whole = Delivery(method, 200, 0, size, size, True)
    etag = nginx_etag(size=size, mtime=mtime)
    if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains_weak(etag.strip('"')):
        return Delivery(method, 304, 0, 0, size, True)
    header, if_range = environ.get("HTTP_RANGE"), environ.get("HTTP_IF_RANGE", "").strip()
    if not header or method != "GET" or (if_range and if_range not in (etag, http_date(mtime))):
        return whole
    normalised = normalise_range(header, size)
    if normalised is None:
        return whole
    parsed = parse_range_header(normalised)
    span = parsed.range_for_length(size) if parsed is not None else None
    if span is None:
        return Delivery(method, 416, 0, 0, size, False)
    return Delivery(method, 206, span[0], span[1], size, True)


def nginx_etag(*, size: int, mtime: int) -> str:
    """The ETag nginx sends for a file (ngx_http_set_etag: hex mtime, hex size)."""
    return f'"{mtime:x}-{size:x}"'


def redirect_delivery(environ: dict[str, Any], size: int) -> Delivery:
    """The Delivery a redirect stands for, for the close callbacks of phase 1 (`finished_file` counts): the
    whole file for a GET from the first byte, nothing for a HEAD or a later range."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    if method == "GET" and _starts_at_zero(environ.get("HTTP_RANGE"), size):
        return Delivery(method, 200, 0, size, size, True)
    return Delivery(method, 302, 0, 0, size, False)


def _starts_at_zero(header: str | None, size: int) -> bool:
    if not header:
        return True
    normalised = normalise_range(header, size)
    return normalised is None or normalised.startswith("bytes=0-") or normalised == f"bytes=-{size}"
