"""Gunicorn sends the file: a download response that phones and download managers can resume.

Werkzeug decides what to answer (`make_conditional`: If-None-Match, If-Modified-Since, If-Range, Range) on a
copy of the request whose Range header was first put right (ranges.py), because Werkzeug 416s where RFC 9110
says otherwise (several ranges, a suffix longer than the file, units other than bytes). The body is our own
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
import socket
from dataclasses import replace
from datetime import datetime
from typing import IO, Any

from flask_babel import gettext as _
from werkzeug.exceptions import PreconditionFailed
from werkzeug.wrappers import Response
from werkzeug.wsgi import FileWrapper

from .. import received
from ..logs import FILE_BODY
from ..names import content_disposition
from .ranges import Delivery, OnClose, conditional_environ

log = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024



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
                delivery = Delivery(self._method, self._status, self._start, self._stop, self._size, complete,
                                    sent=self.sent if self._method == "GET" else 0)
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
    Always sent by the app: the seam (delivery.send_file) decides when nginx sends it instead (accel.py).
    """
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
            raise PreconditionFailed(_("The file has changed since you last fetched it."))
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
