"""Turn a file into a download response that phones and download managers can resume.

Werkzeug decides what to answer (`make_conditional`: If-None-Match, If-Modified-Since, If-Range, Range) on a
copy of the request whose Range header was first put right, because Werkzeug 416s where RFC 9110 says
otherwise (several ranges, a suffix longer than the file, units other than bytes). The body is our own
window on the file:

- it starts with a seek, never by reading and discarding the bytes before a range;
- it goes out through the server's `wsgi.file_wrapper`, so gunicorn sends it with sendfile(2) from the current
  position for Content-Length bytes (PEP 3333); other servers read it in 64 KiB chunks; nothing ever reads a
  whole file;
- its close() runs the caller's cleanup. Servers call close() on every body (full send, 206, HEAD, 304,
  disconnect), whereas `call_on_close` never runs under gunicorn once `direct_passthrough` is set;
- a send that reached the file's last byte is only `complete` once the client acknowledged every byte
  (received.py): gunicorn's sendfile returns when the bytes are queued in the kernel, not when they arrived.

No share links and no business rules here: callers hand over a file, its validators and a cleanup callback.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote

from werkzeug.exceptions import PreconditionFailed
from werkzeug.http import parse_etags
from werkzeug.wrappers import Response
from werkzeug.wsgi import FileWrapper

from . import received
from .logs import FILE_BODY
from .names import photo_name

log = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
# A Range header Werkzeug cannot parse: it answers 416 with `Content-Range: bytes */SIZE`, but only when it
# would have honoured the range at all (a stale If-Range turns any Range, even a broken one, into a 200).
_UNPARSABLE_RANGE = "bytes=invalid"
# RFC 9110 digits are ASCII only: `\d` would also take "٣" (Arabic-Indic three), which int() reads as 3.
_RANGE_SPEC = re.compile(r"^([0-9]*)-([0-9]*)$")
# Positions at or past this are past the end of any file we serve; a longer number is read as this one, never
# converted whole (Python refuses int() of more than 4,300 digits, and a 10^4000 offset means "past the end").
_BEYOND_ANY_FILE = 1 << 63
_FALLBACK_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\%;]')


@dataclass(frozen=True)
class Delivery:
    """What a response sent, handed to `on_close`: enough to tell a finished download from a partial one."""

    method: str
    status: int
    start: int
    stop: int  # exclusive
    size: int
    complete: bool  # every byte of [start, stop) went out (and, at the file's end, the client acknowledged it)

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


class ResponseFile:
    """A window [start, stop) on an open binary file; close() closes it and calls `on_close` exactly once.

    Offers what servers look for: read() for iteration, fileno()/seek()/tell() for sendfile. read() never
    returns more than CHUNK_SIZE bytes, nor anything past `stop`.
    """

    def __init__(
        self, file: IO[bytes], on_close: OnClose | None, method: str, peer: socket.socket | None = None
    ) -> None:
        """`peer`: the client's socket when the server exposes it (gunicorn), to confirm a finished send."""
        self._file, self._on_close, self._method, self._peer = file, on_close, method, peer
        self._start = self._stop = self._size = self._pos = self._reads = 0
        self._status, self._eof, self.closed = 0, False, False

    def select(self, start: int, stop: int, size: int, status: int) -> None:
        """Serve bytes [start, stop) of a `size`-byte file as `status`; seeks, never reads, to get there."""
        self._start, self._stop, self._size, self._status = start, stop, size, status
        self.seek(start)

    def read(self, size: int = -1) -> bytes:
        remaining = self._stop - self._pos
        if remaining <= 0:
            self._eof = True  # asked again after the last chunk: that chunk was written out
            return b""
        wanted = CHUNK_SIZE if size is None or size < 0 else size
        data = self._file.read(min(wanted, remaining, CHUNK_SIZE))
        self._reads += 1
        self._pos += len(data)
        if not data:
            self._eof = True
        return data

    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = self._file.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    @property
    def sent(self) -> int:
        """Bytes of the window that went out so far, by sendfile (which seeks past them) or by read()."""
        return max(0, self._pos - self._start)

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # sendfile moves the position by what it sent; iteration proves completion by asking past the end.
        complete = self._pos >= self._stop and (self._eof or self._reads == 0)
        try:
            self._file.close()
        finally:
            if self._on_close is not None:
                delivery = Delivery(self._method, self._status, self._start, self._stop, self._size, complete)
                try:
                    self._on_close(self._confirmed(delivery))
                except Exception:  # a server calling close() must never see our cleanup fail
                    log.exception("download cleanup failed")

    def _confirmed(self, delivery: Delivery) -> Delivery:
        """A finished download only once the client acknowledged its last byte (waits, bounded, for that)."""
        if not delivery.finished_file or self._peer is None or received.all_acknowledged(self._peer):
            return delivery
        return replace(delivery, complete=False)


def serve_file(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    environ: dict[str, Any],
    download_name: str,
    mimetype: str,
    etag: str,
    last_modified: datetime,
    size: int | None = None,
    on_close: OnClose | None = None,
    as_attachment: bool = True,
    dated_if_range: bool = True,
) -> Response:
    """The response for a file: 200, 206, 304 or 416 (raised), with Accept-Ranges, a strong ETag, Last-Modified
    and Content-Disposition.

    `source` is a path or a seekable binary file (which this function then owns). `etag` is the unquoted strong
    validator; it must change whenever the bytes do. `on_close(Delivery)` runs exactly once, when the server
    closes the body, or before this function raises. `dated_if_range=False` when the bytes can change twice
    within one second of `last_modified` (an album's archive): an If-Range date then never resumes a range.

    With SENDFILE_BACKEND=x-accel and a file nginx can open, the answer is an X-Accel-Redirect (accel.py).
    """
    from .accel import handoff_response  # here: accel builds on this module

    handed_over = handoff_response(source, environ=environ, download_name=download_name, mimetype=mimetype,
                                   etag=etag, on_close=on_close, as_attachment=as_attachment)
    if handed_over is not None:
        return handed_over
    file = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source
    method = environ.get("REQUEST_METHOD", "GET").upper()
    body = ResponseFile(file, on_close, method, peer=environ.get("gunicorn.socket"))
    try:
        if size is None:
            size = os.fstat(file.fileno()).st_size
        response = Response(mimetype=mimetype, direct_passthrough=True)
        response.headers["Content-Disposition"] = content_disposition(download_name, as_attachment)
        response.set_etag(etag)
        response.last_modified = last_modified
        response.cache_control.no_cache = True  # revalidate every time; the ETag keeps that cheap
        response.content_length = size
        conditional = conditional_environ(environ, etag, size, dated_if_range=dated_if_range)
        response.make_conditional(conditional, accept_ranges=True, complete_length=size)
        if response.status_code == 412:
            raise PreconditionFailed("The file has changed since you last fetched it.")
        if response.status_code == 206 and response.content_range is not None:
            body.select(response.content_range.start or 0, response.content_range.stop or size, size, 206)
        else:
            body.select(0, size, size, response.status_code)
    except BaseException:
        body.close()
        raise
    wrapper = environ.get("wsgi.file_wrapper") or FileWrapper
    response.response = wrapper(body, CHUNK_SIZE)
    environ[FILE_BODY] = body  # for the access log's byte count
    return response


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


def content_disposition(name: str, as_attachment: bool = True) -> str:
    """`attachment; filename="ascii"; filename*=UTF-8''…` (RFC 6266): every browser gets a usable name.

    `filename*` carries the name exactly as names.photo_name keeps it (quotes, `;`, emoji and all), so no
    folder, control character (a header break) or bidi control ever reaches a header, whoever calls this.
    """
    kind = "attachment" if as_attachment else "inline"
    name = photo_name(name, fallback="download")
    fallback = ascii_filename(name)
    value = f'{kind}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='!#$&+-.^_`|~')}"
    return value


def ascii_filename(name: str) -> str:
    """A plain-ASCII stand-in for `name` for old clients: accents dropped, other characters as `_`."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    simple = re.sub(r"_+", "_", _FALLBACK_UNSAFE.sub("_", stripped)).strip()
    stem, dot, ext = simple.rpartition(".")
    if not dot:
        stem, ext = simple, ""
    if not stem.strip("_. "):
        stem = "download"
    return f"{stem}.{ext}" if ext else stem
