"""Temporary "Download all" archives: built once per album version, shared, removed by the last reader.

An archive lives in TEMP_DIR as `album-<version>.zip` only while responses need it. Two lock files in
LOCK_DIR (outside TEMP_DIR, so an idle temp folder is empty) coordinate threads and gunicorn workers alike
with flock(2), which locks per open file:

- `album-<version>.lock`: every response holds it shared from the moment it asks for the archive until its
  body closes, so nobody removes an archive that someone is building, waiting for or sending;
- `album-<version>.build`: held exclusively by the one builder (a thread of one worker) while it writes the
  archive in place, its progress in `album-<version>.map` beside it (archive_stream.py). Responses start at once with
  the exact size (the layout comes from the plan) and read the archive while it is written, sending photos
  not in place yet from their own files where they can (archive_body.py), else waiting for them; so 8
  parallel ranges from a download manager cost one build and none waits for another;
- the response that closes last gets `.lock` exclusively without waiting, and removes the archive, its record
  and both lock files; the builder holds `.lock` shared too, until its build ends. An archive opened before its
  removal stays readable to the responses still sending it.

A failed build marks its record failed (waiting responses end cut short, never with wrong bytes) and its files
go with the last response; nothing is left in TEMP_DIR whatever happens, short of a killed process, which
`remove_stale` (safe at any time) cleans up after, or whose build a waiting response finishes.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import io
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.http import parse_range_header
from werkzeug.wrappers import Response

from .. import archive_stream
from ..archive import ArchiveEntry, ArchiveSourceError, archive_digest, cached_layout, with_crcs
from ..errors import AppError
from ..lockfiles import is_current
from ..logs import FILE_BODY
from ..zip_layout import Layout
from .archive_body import HeadersFirst
from .ranges import Delivery, OnClose, normalise_range, not_modified
from .sendfile import serve_file

log = logging.getLogger(__name__)

NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
CHECK_STEP = 64  # photos checked between looks at the clock
FAILED_MEMORY = 600.0  # seconds a failed build makes this process check every photo before the first byte
_failed_lately: dict[str, float] = {}  # archive name -> when this process saw its build fail


class ArchiveUnavailable(AppError):
    status, error = 500, "archive_failed"
    message = _l("The archive could not be made. Please try again later.")


class StorageFull(AppError):
    status, error = 507, "storage_full"
    message = _l("The server ran out of disk space while preparing this archive. Please try again later.")


@dataclass
class SharedArchive:
    """An open archive and the shared lock that keeps it on disk; `release()` once, when done with it."""

    file: IO[bytes] | archive_stream.GrowingArchive  # growing: read while it is built, waits for its bytes
    size: int
    path: Path
    lock_path: Path
    _lock_fd: int = field(repr=False)
    _released: bool = field(default=False, repr=False)
    linger: float = 0.0  # seconds the files stay after the last user left (ARCHIVE_LINGER_SECONDS)
    paths: Sequence[str | None] | None = None  # each photo's local file (None: not on this disk), if asked

    def release(self) -> None:
        """Close the file; the last response using this version removes it and its lock files (after `linger`
        seconds without a new user)."""
        if self._released:
            return
        self._released = True
        if isinstance(self.file, archive_stream.GrowingArchive) and self.file.failed():
            _remember_failure(self.path)
        self.file.close()
        _leave(self._lock_fd, self.lock_path, self.path, self.linger)


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
    local_paths: Callable[[Sequence[str]], Sequence[str | None]] | None = None,
    on_complete: Callable[[Path], None] | None = None,
    etag_of: Callable[[str, int], str] | None = None,
    version: str | None = None,
    linger: float = 0.0,
    check_seconds: float | None = None,
) -> Response:
    """The archive of `entries` as a download response (see downloads.serve_file) that starts at once with its
    exact size, read while it is built (see `open_streaming`). A photo missing or changed on disk (checked
    through `local_paths` before the first byte) is a clear error response; one that fails later cuts the
    response short, never sends wrong bytes. The ETag comes from the plan, so it names the bytes whichever
    process built them: `etag_of(version, size)`, by default `zip-<version>`. `on_complete(path)` runs once the
    archive is whole (e.g. to put it in the ZIP cache). `version`: the entries' archive_digest, when known.
    `linger`: seconds the archive stays after its last response closed, for the next connection of a download
    manager or a resume to find it built (see `open_streaming`). `check_seconds`: see `open_streaming`."""
    version = version or archive_digest(entries)
    size = _layout(version, entries, open_source).total
    etag = archive_etag(version) if etag_of is None else etag_of(version, size)
    cached = not_modified(environ, etag, last_modified)
    if cached is not None:
        return cached
    if _needs_no_bytes(environ, size):  # a HEAD, or a range past the end (416): the size says it all
        return serve_file(io.BytesIO(), environ=environ, download_name=download_name, mimetype="application/zip",
                          etag=etag, last_modified=last_modified, size=size, on_close=on_close, dated_if_range=False)
    shared = open_streaming(entries, version=version, temp_dir=temp_dir, lock_dir=lock_dir, open_source=open_source,
                            local_paths=local_paths, on_complete=on_complete, linger=linger,
                            check_seconds=check_seconds)

    def close(delivery: Delivery) -> None:
        shared.release()
        if on_close is not None:
            on_close(delivery)

    response = serve_file(
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
    body = environ.get(FILE_BODY)
    if isinstance(shared.file, archive_stream.GrowingArchive) and body is not None and response.response is not None:
        span = response.content_range if response.status_code == 206 else None
        stop = span.stop if span is not None and span.stop is not None else shared.size
        response.response = HeadersFirst(body, shared.file, stop, environ.get("gunicorn.socket"), shared.paths)
    return response


def open_shared(
    entries: Sequence[ArchiveEntry],
    *,
    version: str,
    temp_dir: str | os.PathLike[str],
    lock_dir: str | os.PathLike[str],
    open_source: Callable[[str], BinaryIO],
) -> SharedArchive:
    """The whole archive for `version`, built now unless another response (any worker) has it or is building
    it; returns once it is complete, as a plain file (for a hard link into the ZIP cache).

    Raises ArchiveUnavailable (a photo could not be read) or StorageFull; either way nothing is left behind.
    """
    shared = open_streaming(entries, version=version, temp_dir=temp_dir, lock_dir=lock_dir, open_source=open_source)
    try:
        growing = shared.file
        if isinstance(growing, archive_stream.GrowingArchive):
            growing.wait_complete()
            shared.file = open(shared.path, "rb")
            growing.close()
    except archive_stream.BuildFailed as exc:
        shared.release()
        raise _unavailable(exc.entry_name) from _unreadable(exc)
    except BaseException:
        shared.release()
        raise
    return shared


def open_streaming(
    entries: Sequence[ArchiveEntry],
    *,
    version: str,
    temp_dir: str | os.PathLike[str],
    lock_dir: str | os.PathLike[str],
    open_source: Callable[[str], BinaryIO],
    local_paths: Callable[[Sequence[str]], Sequence[str | None]] | None = None,
    on_complete: Callable[[Path], None] | None = None,
    linger: float = 0.0,
    check_seconds: float | None = None,
) -> SharedArchive:
    """The archive for `version`, open for reading at once: a plain file when complete, else a GrowingArchive
    whose reads wait for the builder (started here when nobody, in any worker, builds it). Its size is exact.
    Once its last user (a response, the builder) leaves, the archive stays `linger` seconds more unless its
    build failed, so that aria2c's reconnections and a resume reuse it instead of building it again; then
    it goes (and a killed process's leftovers go with `remove_stale`).

    Raises ArchiveUnavailable (a photo missing or of another size, checked through `local_paths` when this call
    starts the build) or StorageFull; either way nothing is left behind. With `check_seconds`, the check
    before the first byte stops after that long (a cold disk reads an inode per photo: about 70 ms for
    5,000) and the builder checks the rest beside its copying: a bad photo there cuts the download short
    at once, and for FAILED_MEMORY seconds this process checks every photo of that version first again,
    so a retry gets the clear error.
    """
    path = Path(temp_dir) / f"album-{version}.zip"
    lock_path = Path(lock_dir) / f"album-{version}.lock"
    # Held from here on: while anyone holds it, nobody removes the archive, even one not built yet.
    fd = _locked(lock_path, fcntl.LOCK_SH)
    try:
        entries = with_crcs(entries, open_source)
        paths = None if local_paths is None else local_paths([entry.storage_key for entry in entries])
        files = _version_files(path, lock_path)
        build = archive_stream.Build(entries, _layout(version, entries, open_source), files, open_source,
                                     hold=lambda: _hold(lock_path, path, linger), on_complete=on_complete,
                                     background=paths is not None and None not in paths)
        file = _join_or_build(build, paths, check_seconds)
    except archive_stream.BuildFailed as exc:
        _remember_failure(path)
        _leave(fd, lock_path, path)
        raise _unavailable(exc.entry_name) from _unreadable(exc)
    except BaseException:
        _leave(fd, lock_path, path)
        raise
    return SharedArchive(file, build.layout.total, path, lock_path, fd, linger=linger, paths=paths)


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
            removed += _remove_version(_version_files(path, lock_path))
        finally:
            os.close(fd)
    return removed


def _join_or_build(
    build: archive_stream.Build,
    paths: Sequence[str | None] | None,
    check_seconds: float | None = None,
) -> IO[bytes] | archive_stream.GrowingArchive:
    """A reader of the archive; when no builder runs (any worker), become it: check the photos, reserve the
    space, write the central directory, start copying. Waits only while another worker prepares (milliseconds);
    raises BuildFailed when the build already failed while its builder still runs."""
    delay = archive_stream.POLL_FIRST
    while True:
        growing = archive_stream.open_growing(build)
        if growing is not None:
            if growing.complete_now():
                growing.close()
                return open(build.files.archive, "rb")
            return growing
        build_fd = archive_stream.try_build_lock(build.files.build_lock)
        if build_fd is not None:
            _start(build, build_fd, paths, check_seconds)
            continue
        failed = archive_stream.failure(build)
        if failed is not None:  # the builder still runs, but its build failed: the clear error, not a wait
            raise failed
        time.sleep(delay)
        delay = min(delay * 2, archive_stream.POLL_MAX)


def _start(
    build: archive_stream.Build,
    build_fd: int,
    paths: Sequence[str | None] | None,
    check_seconds: float | None,
) -> None:
    """As the holder of the build lock: check the local photos' sizes (those `check_seconds` leaves unchecked
    go to the builder), then start the build."""
    try:
        if paths is not None:
            if check_seconds is not None and _failed_lately_here(build.files.archive):
                check_seconds = None
            build.check_rest = _check_sources(build.entries, paths, check_seconds)
        archive_stream.prepare(build, build.files.record, build_fd)
    except ArchiveUnavailable:
        os.close(build_fd)
        raise
    except OSError as exc:  # prepare closed build_fd
        if exc.errno in NO_SPACE:
            log.error("archive %s not built: disk full in %s", build.files.archive.name, build.files.archive.parent)
            raise StorageFull() from exc
        raise


def _check_sources(
    entries: Sequence[ArchiveEntry],
    paths: Sequence[str | None],
    seconds: float | None = None,
) -> Callable[[], int | None] | None:
    """Every photo on this machine's disk is there with its planned size: one stat each, before any byte, for
    up to `seconds` (None: all). Raises ArchiveUnavailable; returns the check of the photos left (the
    index of the first bad one, or None), or None when none is left."""
    deadline = None if seconds is None else time.monotonic() + seconds
    for start in range(0, len(entries), CHECK_STEP):
        if deadline is not None and time.monotonic() >= deadline:
            return functools.partial(_first_bad, entries, paths, start)
        bad = _first_problem(entries, paths, start, start + CHECK_STEP)
        if bad is not None:
            raise _unavailable(entries[bad[0]].name) from bad[1]
    return None


def _first_bad(entries: Sequence[ArchiveEntry], paths: Sequence[str | None], start: int) -> int | None:
    """The index of the first photo from `start` missing or of another size on disk (logged), or None."""
    bad = _first_problem(entries, paths, start, len(entries))
    return None if bad is None else bad[0]


def _first_problem(
    entries: Sequence[ArchiveEntry], paths: Sequence[str | None], start: int, stop: int
) -> tuple[int, ArchiveSourceError] | None:
    """The first photo in `start:stop` missing or of another size on disk: its index and why (logged)."""
    for index in range(start, min(stop, len(entries))):
        problem = _source_problem(entries[index], paths[index])
        if problem is not None:
            log.error("archive not built: %s", problem)
            return index, problem
    return None


def _source_problem(entry: ArchiveEntry, path: str | None) -> ArchiveSourceError | None:
    """Why the photo at `path` (None: not a local file, not checked) cannot go in the archive, if it cannot."""
    if path is None:
        return None
    try:
        status = os.stat(path)
    except OSError as exc:
        return ArchiveSourceError(entry.name, exc)
    if stat.S_ISREG(status.st_mode) and status.st_size != entry.size:
        return ArchiveSourceError(entry.name, ValueError(f"{status.st_size} bytes on disk, {entry.size} expected"))
    return None


def _remember_failure(archive: Path) -> None:
    """This process saw the build of `archive` fail: check all its photos first for a while (see
    open_streaming)."""
    now = time.monotonic()
    for name, when in list(_failed_lately.items()):
        if now - when > FAILED_MEMORY:
            _failed_lately.pop(name, None)
    _failed_lately[archive.name] = now


def _failed_lately_here(archive: Path) -> bool:
    when = _failed_lately.get(archive.name)
    return when is not None and time.monotonic() - when <= FAILED_MEMORY


def _unreadable(failed: archive_stream.BuildFailed) -> ArchiveSourceError:
    """A failed build as the cause of the visitor's error, however the request met it: the photo not read."""
    return ArchiveSourceError(failed.entry_name or "?", failed)


def _unavailable(entry_name: str | None) -> ArchiveUnavailable:
    if entry_name is None:
        return ArchiveUnavailable()
    return ArchiveUnavailable(
        _(
            "The photo “%(name)s” could not be read on the server, so the archive was not made. "
            "Please let the album owner know.",
            name=entry_name,
        )
    )


def _layout(version: str, entries: Sequence[ArchiveEntry], open_source: Callable[[str], BinaryIO]) -> Layout:
    """The archive's layout, once per version in this process: the version names the bytes, so their layout."""
    return cached_layout(version, entries, lambda known: with_crcs(known, open_source))


def _needs_no_bytes(environ: dict[str, Any], size: int) -> bool:
    """A HEAD, or a GET whose one range starts past the end (and no If-Range could turn it into a 200)."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    if method == "HEAD":
        return True
    header = environ.get("HTTP_RANGE")
    if method != "GET" or not header or "HTTP_IF_RANGE" in environ:
        return False
    normalised = normalise_range(header, size)
    parsed = parse_range_header(normalised) if normalised is not None else None
    return normalised is not None and (parsed is None or parsed.range_for_length(size) is None)


def _hold(lock_path: Path, path: Path, linger: float = 0.0) -> Callable[[], None]:
    """Take a shared lock on the archive as a response does (for its builder); returns its release."""
    fd = _locked(lock_path, fcntl.LOCK_SH)
    return lambda: _leave(fd, lock_path, path, linger)


def _leave(fd: int, lock_path: Path, path: Path, linger: float = 0.0) -> None:
    """Drop our shared lock; if nobody else holds one, remove the archive and the lock files first, or, with
    `linger`, once that many seconds pass without a new user (a failed build goes at once)."""
    if linger > 0:
        os.utime(fd)  # the last use, which `_expire` measures from
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)  # others still use it; the last of them removes it
        return
    try:
        if not is_current(fd, lock_path):
            return
        files = _version_files(path, lock_path)
        failed = archive_stream.build_failed(files.record)
        if failed:
            _remember_failure(path)
        if linger > 0 and not failed:
            timer = threading.Timer(linger, _expire, (lock_path, path, linger))
            timer.daemon = True  # an exiting process leaves the files to remove_stale (startup, sweeper)
            timer.start()
        else:
            _remove_version(files)
    finally:
        os.close(fd)


def _expire(lock_path: Path, path: Path, linger: float) -> None:
    """After `linger`: remove the archive unless someone uses it, or used it since (their leaving expires it)."""
    if not lock_path.exists():
        return  # gone already (remove_stale, or an earlier expiry)
    try:
        fd = _locked(lock_path, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # in use: its last user schedules the next expiry
    except OSError:
        log.exception("could not expire archive %s", path.name)
        return
    try:
        if time.time() - os.fstat(fd).st_mtime >= linger - 0.05:
            _remove_version(_version_files(path, lock_path))
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
        if is_current(fd, lock_path):
            return fd
        os.close(fd)



def _version_files(path: Path, lock_path: Path) -> archive_stream.Files:
    """One album version's files: the archive, and beside its lock the progress record and the build lock."""
    return archive_stream.Files(path, lock_path.with_suffix(".map"), lock_path.with_suffix(".build"), lock_path)


def _remove_version(files: archive_stream.Files) -> int:
    """Remove a version's archive and every lock file with it (only by the holder of its exclusive lock; the
    record and build lock are only ever used by holders of the lock); 1 when the archive itself was there."""
    removed = _remove(files.archive)
    for path in (files.record, files.build_lock, files.lock):
        _remove(path)
    return removed


def _remove(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
