"""A temp archive that is read while it is written, in any order, by any thread or gunicorn worker.

Every byte's place is known from the plan (zip_layout.py), so the builder writes the central directory first,
then each photo with its local header into their places (one pwrite and one kernel copy each: nothing done
per photo before the first byte of a 5,000-photo album can go out), and readers may start anywhere at once. What is
written is told by a small progress record beside the archive, `album-<version>.map`, read and written with
pread/pwrite so that threads and processes see the same thing (it lives in LOCK_DIR, beside the locks):

    byte 0            state: 0 preparing, 1 central directory written, 2 complete, 3 failed
    bytes 1-8         1 + the index of the photo that could not be read (0: none), on failure
    N bytes           1 when photo i and its local header are in place
    N bytes           1 when a reader waits for photo i: the builder fills those first, in turn

A reader that reaches bytes not yet written polls the record (milliseconds) and never returns them. The builder
holds `album-<version>.build` (flock) for as long as it runs; a reader that waits and finds that lock free
while the archive is neither complete nor failed knows the builder was killed, and builds the rest itself
(photos already in place are kept). The builder also holds the archive's shared lock like a response, so it
finishes a build whose readers left for a moment; see archive_files.py for the lock protocol. No Flask here.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import io
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .archive import ArchiveEntry, ArchiveSourceError, copy_entry
from .lockfiles import is_current
from .zip_layout import Layout

log = logging.getLogger(__name__)

PREPARING, FIXED, COMPLETE, FAILED = 0, 1, 2, 3
HEADER = 9
# Seconds a waiting reader sleeps, doubling between the two: a reader as fast as the builder waits for each
# photo in turn, so a long sleep would halve a download's speed.
POLL_FIRST, POLL_MAX = 0.0005, 0.005
BUILDER_CHECK = 0.25  # seconds a reader waits before checking that the builder is still alive
WANTED_CHECK = 0.005  # seconds between the builder's looks at what readers wait for
RUN_SCAN = 4096  # photos a reader looks ahead for written ones at a time
STALL_LIMIT = 300.0  # seconds a reader waits for one piece before giving up (a builder stuck on a dead disk)


class BuildFailed(OSError):
    """The archive could not be built; a reader never returns bytes of it that were not written."""

    def __init__(self, entry_name: str | None) -> None:
        super().__init__(errno.EIO, f"the archive could not be built (photo {entry_name!r})")
        self.entry_name = entry_name


@dataclass(frozen=True)
class Files:
    """The paths of one album version's temp archive."""

    archive: Path
    record: Path
    build_lock: Path
    lock: Path


@dataclass
class Build:
    """What a builder needs; readers keep it to take over from a killed builder."""

    entries: Sequence[ArchiveEntry]
    layout: Layout
    files: Files
    open_source: Callable[[str], io.BufferedIOBase]
    hold: Callable[[], Callable[[], None]]  # a lock keeping the files while the builder runs; returns its release
    on_complete: Callable[[Path], None] | None = None
    # Checks the photos not checked before the first byte (all on disk, of their planned size), beside the
    # copying; returns the index of the first bad one, or None. A bad one fails the build at once, not when
    # the copying reaches it, so the visitor's download is cut early and the next request gets a clear error.
    check_rest: Callable[[], int | None] | None = None
    # Readers send photos not yet in place from their own files (delivery/archive_body.py), so no download
    # waits for this build: it runs at idle CPU priority, on what the downloads leave of the machine.
    background: bool = False


class Record:
    """The progress record of an archive with `count` photos, on an open file descriptor."""

    def __init__(self, fd: int, count: int) -> None:
        self.fd, self.count = fd, count

    def state(self) -> int:
        data = os.pread(self.fd, 1, 0)
        return data[0] if data else PREPARING

    def failed_entry(self) -> int | None:
        (index,) = struct.unpack("<Q", os.pread(self.fd, 8, 1).ljust(8, b"\0"))
        return index - 1 if index else None

    def failure(self, entries: Sequence[ArchiveEntry]) -> BuildFailed | None:
        """The failure this record tells of (naming the photo of `entries` that could not be read), or None."""
        if self.state() != FAILED:
            return None
        index = self.failed_entry()
        return BuildFailed(entries[index].name if index is not None else None)

    def fail(self, index: int | None) -> None:
        os.pwrite(self.fd, struct.pack("<BQ", FAILED, 0 if index is None else index + 1), 0)

    def set_state(self, state: int) -> None:
        os.pwrite(self.fd, bytes([state]), 0)

    def is_done(self, index: int) -> bool:
        return os.pread(self.fd, 1, HEADER + index) == b"\x01"

    def done(self) -> bytearray:
        return bytearray(os.pread(self.fd, self.count, HEADER).ljust(self.count, b"\0"))

    def done_from(self, index: int, count: int) -> bytes:
        """The done flags of up to `count` photos from `index`."""
        return os.pread(self.fd, min(count, self.count - index), HEADER + index)

    def mark_done(self, index: int) -> None:
        os.pwrite(self.fd, b"\x01", HEADER + index)

    def want(self, index: int) -> None:
        os.pwrite(self.fd, b"\x01", HEADER + self.count + index)

    def wanted(self) -> bytes:
        return os.pread(self.fd, self.count, HEADER + self.count)

    def reset(self) -> None:
        os.ftruncate(self.fd, 0)
        os.ftruncate(self.fd, HEADER + 2 * self.count)


def build_failed(path: Path) -> bool:
    """Whether the record at `path` says the build failed (False when there is none)."""
    try:
        with open(path, "rb") as record:
            return record.read(1) == bytes([FAILED])
    except FileNotFoundError:
        return False


def open_record(path: Path, count: int) -> Record | None:
    try:
        return Record(os.open(path, os.O_RDWR), count)
    except FileNotFoundError:
        return None


def try_build_lock(path: Path) -> int | None:
    """An fd holding the build lock, or None while a builder (any process) holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def prepare(build: Build, record_path: Path, build_fd: int) -> None:
    """As the holder of the build lock: reserve the archive's space and write its central directory (unless a
    killed builder got that far), then copy the photos and their headers in a thread that releases `build_fd`
    when it ends.

    Raises OSError (ENOSPC: the disk cannot hold the archive) before any response starts."""
    count, layout = len(build.entries), build.layout
    release = build.hold()  # the builder is a user of the files too: a download manager's reconnects find them
    archive_fd = os.open(build.files.archive, os.O_RDWR | os.O_CREAT, 0o666)  # umask applies: nginx reads it
    record_fd = os.open(record_path, os.O_RDWR | os.O_CREAT, 0o600)
    record = Record(record_fd, count)
    try:
        if record.state() in (PREPARING, FAILED) or os.fstat(record_fd).st_size != HEADER + 2 * count:
            record.reset()
            _reserve(archive_fd, layout.total)
            os.pwrite(archive_fd, layout.central, layout.central_offset)
            record.set_state(FIXED)
    except BaseException:
        for fd in (archive_fd, record_fd, build_fd):
            os.close(fd)
        release()
        raise
    if record.state() == COMPLETE:
        for fd in (archive_fd, record_fd, build_fd):
            os.close(fd)
        release()
        return
    thread = threading.Thread(target=_run, args=(build, archive_fd, record, build_fd, release), daemon=True,
                              name=f"archive-{build.files.archive.name}")
    thread.start()


def _reserve(fd: int, size: int) -> None:
    """Check the disk can take the whole archive now: a full disk is a 507 before the response, not a cut
    download. Sizes the file without allocating it (posix_fallocate of gigabytes can stall the first byte)."""
    status = os.fstatvfs(fd)
    if status.f_bavail * status.f_frsize < size:
        raise OSError(errno.ENOSPC, f"{size} bytes needed for the archive, {status.f_bavail * status.f_frsize} free")
    os.ftruncate(fd, size)


def _run(build: Build, archive_fd: int, record: Record, build_fd: int, release: Callable[[], None]) -> None:
    """Copy every photo not yet in place, those readers wait for first; mark the record complete or failed.
    Runs to the end even when every response left (a download manager reconnects; nothing is built twice),
    then lets go of the files: removed unless a response still uses them."""
    started, index, complete = time.monotonic(), None, False
    if build.background:
        _lower_priority()
    checker = _start_checker(build, record)
    try:
        done = record.done()
        wanted: list[int] = []
        last, checked = -1, 0.0
        while True:
            if time.monotonic() - checked > WANTED_CHECK:
                if not is_current(archive_fd, build.files.archive):
                    log.info("archive %s was removed: build stopped", build.files.archive.name)
                    return
                if record.state() == FAILED:  # the checker found a bad photo
                    return
                flags = record.wanted()
                wanted = [i for i in range(len(flags)) if flags[i] and not done[i]] if any(flags) else []
                checked = time.monotonic()
            index = _next(wanted, done, last)
            if index is None:
                break
            entry, layout = build.entries[index], build.layout
            os.pwrite(archive_fd, layout.headers[index], layout.header_offset(index))
            copy_entry(entry, archive_fd, layout.data_offsets[index], build.open_source)
            done[index] = 1
            record.mark_done(index)
            last = index
            if index in wanted:
                wanted.remove(index)
        if checker is not None:
            checker.join()  # long done (stats against gigabytes of copying); its verdict comes first
            if record.state() == FAILED:
                return
        record.set_state(COMPLETE)
        complete = True
        log.info("built archive %s: %d photos, %d bytes in %.2fs", build.files.archive.name, len(build.entries),
                 build.layout.total, time.monotonic() - started)
    except Exception as exc:  # noqa: BLE001 - a thread's failure must reach the waiting readers, logged here
        source_error = isinstance(exc, ArchiveSourceError)
        log.error("archive %s not built: %s", build.files.archive.name, exc)  # before the readers learn of it
        record.fail(index if source_error else None)
        return
    finally:
        if checker is not None:
            checker.join()  # it writes to the record: never after its descriptor is closed (and maybe reused)
        if complete:
            _on_complete(build)  # before `release`: the files may go with it when every response has left
        os.close(archive_fd)
        os.close(record.fd)
        os.close(build_fd)  # releases the build lock
        release()


def _lower_priority() -> None:
    """Run this thread (Linux schedules threads alone) only when a core would otherwise idle (SCHED_IDLE):
    at nice 19 it still took a share of a core from the download it is built beside, and its copying (in the
    kernel, 8 MiB a call) then delayed the download's sends."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:  # not allowed here: the build runs at the process's priority
        log.warning("archive builder: could not lower its CPU priority", exc_info=True)


def _start_checker(build: Build, record: Record) -> threading.Thread | None:
    """Run `build.check_rest` in a thread beside the copying; a bad photo marks the record failed."""
    if build.check_rest is None:
        return None
    check = build.check_rest

    def run() -> None:
        try:
            bad = check()
        except Exception:  # a checker that cannot check fails the build, never passes it
            log.exception("archive %s: the photos could not be checked", build.files.archive.name)
            record.fail(None)
            return
        if bad is not None:
            record.fail(bad)

    thread = threading.Thread(target=run, daemon=True, name=f"check-{build.files.archive.name}")
    thread.start()
    return thread


def _on_complete(build: Build) -> None:
    if build.on_complete is None:
        return
    try:
        build.on_complete(build.files.archive)
    except Exception:
        log.exception("archive %s built, but its completion hook failed", build.files.archive.name)


def _next(wanted: list[int], done: bytearray, last: int) -> int | None:
    """The photo to copy next: the first waited-for one after the last copied (so parallel ranges take turns),
    else the next one in order."""
    waiting = [i for i in wanted if not done[i]]
    if waiting:
        later = [i for i in waiting if i > last]
        return min(later) if later else min(waiting)
    following = done.find(0, last + 1)
    if following == -1:
        following = done.find(0)
    return None if following == -1 else following



class GrowingArchive(io.RawIOBase):
    """A read-only window on the temp archive that never returns a byte before it is written: read() waits
    for it. No fileno(), so servers iterate (sendfile would send holes of a file still being written)."""

    def __init__(self, build: Build, archive_fd: int, record: Record) -> None:
        super().__init__()
        self._build, self._fd, self._record, self._pos = build, archive_fd, record, 0
        self._complete = False

    @property
    def size(self) -> int:
        return self._build.layout.total

    @property
    def layout(self) -> Layout:
        return self._build.layout

    def failed(self) -> bool:
        """Whether the build failed (a reader that got bytes before that never got wrong ones)."""
        return not self.closed and self._record.state() == FAILED

    def complete_now(self) -> bool:
        """Whether the whole archive is written (then it may be sent as a plain file)."""
        self._complete = self._complete or self._record.state() == COMPLETE
        return self._complete

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a growing archive is read, never sent with sendfile")

    def read(self, size: int | None = -1) -> bytes:
        if self._pos >= self.size:
            return b""
        end = self._ready_until(self._pos)
        if size is not None and size >= 0:
            end = min(end, self._pos + size)
        data = os.pread(self._fd, end - self._pos, self._pos)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            os.close(self._record.fd)
        super().close()

    @property
    def archive_fd(self) -> int:
        """The archive's descriptor, for sendfile(2) of bytes `ready_until` says are written (never beyond)."""
        return self._fd

    def ready_until(self, offset: int) -> int:
        """Where the written bytes from `offset` end, waiting until there is at least one (raises BuildFailed)."""
        return self.size if offset >= self.size else self._ready_until(offset)

    def written_until(self, offset: int) -> int:
        """Where the written bytes from `offset` end, without waiting: `offset` itself when none is written yet
        (raises BuildFailed)."""
        if offset >= self.size or self._complete:
            return self.size
        end = self._look(functools.partial(self._written_end, self._build.layout.piece_at(offset)))
        return offset if end is None else end

    def _ready_until(self, offset: int) -> int:
        """Where the written bytes from `offset` end, waiting until there is at least one."""
        layout = self._build.layout
        if self._complete:
            return layout.total
        index = layout.piece_at(offset)
        if index is not None and not self._record.is_done(index):
            self._record.want(index)
        return self._wait(functools.partial(self._written_end, index))

    def _written_end(self, index: int | None, state: int) -> int | None:
        """Where the written bytes from piece `index` (None: the central directory) end, or None while it is not
        written; `state` is the record's."""
        if index is None:
            return self._build.layout.total if state >= FIXED else None
        return self._run_end(index) if self._record.is_done(index) else None

    def _run_end(self, index: int) -> int:
        """Where the written bytes from piece `index` (written) end: past the pieces written after it too, so a
        reader as fast as the builder sends many photos per look at the record, not one."""
        layout = self._build.layout
        flags = self._record.done_from(index, RUN_SCAN)
        last = index + len(flags) - len(flags.lstrip(b"\x01")) - 1
        if last == len(layout.sizes) - 1:
            return layout.total  # the central directory was written first
        return layout.data_offsets[last] + layout.sizes[last]

    def wait_complete(self) -> None:
        """Return once the whole archive is written; raises BuildFailed."""
        self._wait(lambda state: None)

    def _wait(self, ready: Callable[[int], int | None]) -> int:
        """Poll the record until `ready(state)` gives a position, or the archive is complete (its end)."""
        delay, waited, deadline = POLL_FIRST, 0.0, time.monotonic() + STALL_LIMIT
        while True:
            position = self._look(ready)
            if position is not None:
                return position
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, POLL_MAX)
            if waited >= BUILDER_CHECK:
                waited = 0.0
                self.take_over_if_orphaned()
                if time.monotonic() > deadline and self._record.state() != COMPLETE:
                    log.error("archive %s: no progress in %.0f s, response ended", self._build.files.archive.name,
                              STALL_LIMIT)
                    raise BuildFailed(None)

    def _look(self, ready: Callable[[int], int | None]) -> int | None:
        """One look at the record: the archive's end once it is complete, else `ready(state)`; raises BuildFailed."""
        state = self._record.state()
        if state == COMPLETE:
            self._complete = True
            return self._build.layout.total
        if state == FAILED:
            raise self._record.failure(self._build.entries) or BuildFailed(None)
        return ready(state)

    def take_over_if_orphaned(self) -> None:
        """Build the rest here when the builder died (its lock is free, the archive neither done nor failed)."""
        build_fd = try_build_lock(self._build.files.build_lock)
        if build_fd is None:
            return
        if self._record.state() in (COMPLETE, FAILED):
            os.close(build_fd)
            return
        log.warning("archive %s: its builder is gone, building the rest here", self._build.files.archive.name)
        prepare(self._build, self._build.files.record, build_fd)


def failure(build: Build) -> BuildFailed | None:
    """The failure the record tells of, or None: a build that failed, its builder maybe still winding down (its
    checker found a bad photo while the copying waits on a slow one)."""
    record = open_record(build.files.record, len(build.entries))
    if record is None:
        return None
    try:
        return record.failure(build.entries)
    finally:
        os.close(record.fd)


def open_growing(build: Build) -> GrowingArchive | None:
    """A reader of the archive once its central directory is written; None before (or when it vanished)."""
    record = open_record(build.files.record, len(build.entries))
    if record is None:
        return None
    if record.state() not in (FIXED, COMPLETE):
        os.close(record.fd)
        return None
    try:
        archive_fd = os.open(build.files.archive, os.O_RDONLY)
    except FileNotFoundError:
        os.close(record.fd)
        return None
    return GrowingArchive(build, archive_fd, record)
