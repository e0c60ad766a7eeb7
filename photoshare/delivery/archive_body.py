"""The body of a "Download all" whose temp archive is still being built: its bytes as soon as they can go out.

Under gunicorn (its plain-TCP client socket in the environ) every byte goes out with sendfile(2), never through
Python buffers (copying 1 MiB chunks would cap a download at a few hundred MB/s):

- bytes the builder has written are sent from the temp archive;
- a photo not in place yet whose own file is a regular local file of its planned size is sent from that
  file, its local header from the layout: the same bytes the builder will copy (archive_stream.copy_entry
  copies the file as it is), so no download waits for the build, and the build (at idle CPU priority,
  archive_stream.Build.background) hardly slows one. Anything else (a photo in a bucket, missing, of another
  size, not a regular file) waits for the builder, which fails the build on a bad photo: the response is cut
  short, never sent wrong bytes.

Elsewhere (TLS in gunicorn, other servers, tests) chunks of up to 1 MiB of the archive are yielded as they are
written. Either way the first chunk is empty: gunicorn sends the headers with it, and the first bytes of a range
may not be written yet.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import stat
import time
from collections.abc import Iterator, Sequence

from .. import archive_stream
from .sendfile import ResponseFile

STREAM_CHUNK = 1024 * 1024
SEND_WAIT = 60.0  # seconds a send waits for a client that reads nothing


class HeadersFirst:
    """The body of a growing archive, sent by iteration (see the module's docstring), moving the window's
    position so that its Delivery says what went out. close() closes the window.

    `paths`: each photo's local file (None: not on this machine's disk), for the photos not in place yet."""

    def __init__(
        self,
        body: ResponseFile,
        growing: archive_stream.GrowingArchive,
        stop: int,
        peer: socket.socket | None = None,
        paths: Sequence[str | None] | None = None,
    ) -> None:
        self._body, self._growing, self._stop, self._paths = body, growing, stop, paths
        self._peer = peer if isinstance(peer, socket.socket) and not isinstance(peer, ssl.SSLSocket) else None
        self._orphan_check = 0.0

    def __iter__(self) -> Iterator[bytes]:
        yield b""
        if self._peer is not None:
            self._send_directly(self._peer)
        while (position := self._body.tell()) < self._stop:
            self._growing.seek(position)
            chunk = self._growing.read(min(STREAM_CHUNK, self._stop - position))
            if not chunk:
                break
            self._body.seek(position + len(chunk))
            yield chunk
        self._body.read()  # asked past the end: the window went out whole (ResponseFile's rule)

    def close(self) -> None:
        self._body.close()

    def _send_directly(self, peer: socket.socket) -> None:
        """sendfile(2) every byte of the window: from the archive where written, else from the photo's own file
        where it can, else once the builder wrote it (waits; raises BuildFailed)."""
        while (position := self._body.tell()) < self._stop:
            written = min(self._growing.written_until(position), self._stop)
            if written > position:
                self._sendfile(peer, self._growing.archive_fd, position, written - position)
            elif not self._send_photo(peer, position):
                self._growing.ready_until(position)

    def _send_photo(self, peer: socket.socket, position: int) -> bool:
        """Send the piece (local header and photo) at `position` from the photo's own file, up to the window's
        end; False when that file is not a regular local file of the photo's planned size."""
        layout = self._growing.layout
        index = layout.piece_at(position)
        path = None if index is None or self._paths is None else self._paths[index]
        if index is None or path is None or (fd := _open_regular(path, layout.sizes[index])) is None:
            return False
        self._check_builder()
        try:
            data_at = layout.data_offsets[index]
            if position < data_at:
                header = layout.headers[index][position - layout.header_offset(index):]
                header = header[: self._stop - position]
                peer.sendall(header, socket.MSG_MORE)  # goes out with the photo's first bytes
                self._body.seek(position + len(header))
                position += len(header)
            end = min(data_at + layout.sizes[index], self._stop)
            if position < end:
                self._sendfile(peer, fd, position - data_at, end - position)
        finally:
            os.close(fd)
        return True

    def _sendfile(self, peer: socket.socket, fd: int, offset: int, count: int) -> None:
        """sendfile(2) `count` bytes of `fd` from `offset` to the client, moving the window's position."""
        out = peer.fileno()
        while count > 0:
            try:
                sent = os.sendfile(out, fd, offset, count)
            except BlockingIOError:  # a socket with a timeout is non-blocking underneath
                select.select([], [out], [], SEND_WAIT)
                continue
            if sent == 0:
                raise ConnectionError("the file ended before its planned size")
            offset, count = offset + sent, count - sent
            self._body.seek(self._body.tell() + sent)

    def _check_builder(self) -> None:
        """Now and then, finish a build whose builder was killed: a response that never waits would not."""
        now = time.monotonic()
        if now - self._orphan_check >= archive_stream.BUILDER_CHECK:
            self._orphan_check = now
            self._growing.take_over_if_orphaned()


def _open_regular(path: str, size: int) -> int | None:
    """A descriptor of the regular file at `path` when it has `size` bytes, else None. Never opens anything
    else: a FIFO or a device is for the builder alone to read."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: swapped for a FIFO since, it cannot hang
    except OSError:
        return None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_size != size:
        os.close(fd)
        return None
    return fd
