"""Temporary "Download all" archives: built once per album version, shared, removed by the last reader.

An archive lives in TEMP_DIR as `album-<version>.zip` only while responses need it. Two lock files in
LOCK_DIR (outside TEMP_DIR, so an idle temp folder is empty) coordinate threads and gunicorn workers alike
with flock(2), which locks per open file:

- `album-<version>.lock`: every response holds it shared from the moment it asks for the archive until its
  body closes, so nobody removes an archive that someone is building, waiting for or sending;
- `album-<version>.build`: held exclusively while writing `album-<version>.partial` and renaming it into
  place; whoever waited for it finds the archive made and opens it, so 8 parallel ranges from a download
  manager cost one build, and nobody ever waits for another response's download to end;
- the response that closes last gets `.lock` exclusively without waiting, and removes the archive and both
  lock files. An archive opened before its removal stays readable to the responses still sending it.

A failed build removes its partial file; nothing is left in TEMP_DIR whatever happens, short of a killed
process, which `remove_stale` (safe at any time) cleans up after.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from werkzeug.wrappers import Response

from ..archive import ArchiveEntry, ArchiveSourceError, archive_digest, write_archive
from ..errors import AppError
from .ranges import Delivery, OnClose, not_modified
from .sendfile import serve_file

log = logging.getLogger(__name__)

NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


class ArchiveUnavailable(AppError):
    status, error = 500, "archive_failed"
    message = "The archive could not be made. Please try again later."


class StorageFull(AppError):
    status, error = 507, "storage_full"
    message = "The server ran out of disk space while preparing this archive. Please try again later."


@dataclass
class SharedArchive:
    """An open archive and the shared lock that keeps it on disk; `release()` once, when done with it."""

    file: IO[bytes]
    size: int
    path: Path
    lock_path: Path
    _lock_fd: int = field(repr=False)
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        """Close the file; the last response using this version removes it and its lock files."""
        if self._released:
            return
        self._released = True
        self.file.close()
        _leave(self._lock_fd, self.lock_path, self.path)


def archive_etag(version: str) -> str:
    return f"zip-{version}"


def archive_response(
    entries: Sequence[ArchiveEntry],
    *,
    download_name: str,
    last_modified: datetime,
    environ: dict[str, Any],
    temp_dir: str | os.PathLike[str],
    lock_dir: str | os.PathLike[str],
    open_source: Callable[[str], BinaryIO],
    on_close: OnClose | None = None,
) -> Response:
    """The archive of `entries` as a download response (see downloads.serve_file), built before any byte goes
    out: a build error is a clear error response, never a truncated ZIP. The ETag comes from the plan, so it
    names the bytes whichever process built them."""
    version = archive_digest(entries)
    etag = archive_etag(version)
    cached = not_modified(environ, etag, last_modified)
    if cached is not None:
        return cached
    shared = open_shared(entries, version=version, temp_dir=temp_dir, lock_dir=lock_dir, open_source=open_source)

    def close(delivery: Delivery) -> None:
        shared.release()
        if on_close is not None:
            on_close(delivery)

    return serve_file(
        shared.file,
        environ=environ,
        download_name=download_name,
        mimetype="application/zip",
        etag=etag,
        last_modified=last_modified,
        size=shared.size,
        on_close=close,
        dated_if_range=False,  # an album can change twice within a second: only its ETag names the bytes
    )


def open_shared(
    entries: Sequence[ArchiveEntry],
    *,
    version: str,
    temp_dir: str | os.PathLike[str],
    lock_dir: str | os.PathLike[str],
    open_source: Callable[[str], BinaryIO],
) -> SharedArchive:
    """The archive for `version`, built now unless another response (any worker) has it or is building it.

    Raises ArchiveUnavailable (a photo could not be read) or StorageFull; either way nothing is left behind.
    """
    path = Path(temp_dir) / f"album-{version}.zip"
    lock_path = Path(lock_dir) / f"album-{version}.lock"
    # Held from here on: while anyone holds it, nobody removes the archive, even one not built yet.
    fd = _locked(lock_path, fcntl.LOCK_SH)
    try:
        file = _open_if_exists(path) or _build_once(entries, path, lock_path.with_suffix(".build"), open_source)
    except BaseException:
        _leave(fd, lock_path, path)
        raise
    return SharedArchive(file, os.fstat(file.fileno()).st_size, path, lock_path, fd)


def remove_stale(temp_dir: str | os.PathLike[str], lock_dir: str | os.PathLike[str]) -> int:
    """Remove archives no response is serving (left by a killed worker); returns how many files went."""
    removed = 0
    for path in sorted(Path(temp_dir).glob("album-*")):
        stem = path.name.split(".", 1)[0]
        lock_path = Path(lock_dir) / f"{stem}.lock"
        try:
            fd = _locked(lock_path, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # in use
        try:
            removed += _remove(path)
            _remove(lock_path.with_suffix(".build"))
            _remove(lock_path)
        finally:
            os.close(fd)
    return removed


def _build_once(
    entries: Sequence[ArchiveEntry], path: Path, build_lock: Path, open_source: Callable[[str], BinaryIO]
) -> IO[bytes]:
    """Build under the exclusive build lock; who waited for it finds the archive made and just opens it."""
    fd = os.open(build_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _open_if_exists(path) or _build(entries, path, open_source)
    finally:
        os.close(fd)  # releases the build lock


def _build(entries: Sequence[ArchiveEntry], path: Path, open_source: Callable[[str], BinaryIO]) -> IO[bytes]:
    """Write the archive beside its final name and rename it into place; the partial file never survives."""
    partial = path.with_suffix(".partial")
    started = time.monotonic()
    try:
        with open(partial, "wb") as out:
            size = write_archive(entries, out, open_source)
        os.replace(partial, path)
    except ArchiveSourceError as exc:
        log.error("archive %s not built: %s", path.name, exc)
        raise ArchiveUnavailable(
            f"The photo “{exc.entry_name}” could not be read on the server, so the archive was not made. "
            "Please let the album owner know."
        ) from exc
    except OSError as exc:
        if exc.errno in NO_SPACE:
            log.error("archive %s not built: disk full in %s", path.name, path.parent)
            raise StorageFull() from exc
        raise
    finally:
        _remove(partial)
    elapsed = time.monotonic() - started
    log.info("built archive %s: %d photos, %d bytes in %.2fs", path.name, len(entries), size, elapsed)
    return open(path, "rb")


def _leave(fd: int, lock_path: Path, path: Path) -> None:
    """Drop our shared lock; if nobody else holds one, remove the archive and the lock files first."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)  # others still use it; the last of them removes it
        return
    try:
        if _is_current(fd, lock_path):
            _remove(path)
            _remove(lock_path.with_suffix(".build"))  # only ever used by holders of `lock_path`
            _remove(lock_path)
    finally:
        os.close(fd)


def _locked(lock_path: Path, operation: int) -> int:
    """An fd holding `operation` on the lock file currently at `lock_path` (a closer may swap it meanwhile)."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, operation)
        except BaseException:
            os.close(fd)
            raise
        if _is_current(fd, lock_path):
            return fd
        os.close(fd)


def _is_current(fd: int, lock_path: Path) -> bool:
    """Is `fd` still the file at `lock_path`, or did the last reader remove it while we waited?"""
    try:
        on_disk = os.stat(lock_path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _open_if_exists(path: Path) -> IO[bytes] | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _remove(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
