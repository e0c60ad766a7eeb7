"""The ZIP cache: ready archives on disk, one file per album version, and the locks that keep them safe.

A reader holds a shared `flock` on the file for as long as it serves it; whoever deletes a cached archive
first takes an exclusive lock without waiting, so a ZIP being downloaded right now is never removed, and a
reader that lost the race sees the file unlinked and treats it as absent. No `request` here.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from flask import current_app

from ..models import Album

ARCHIVE_NAME = re.compile(r"^album-(\d+)-([0-9A-Za-z]+)\.zip$")
PARTIAL_NAME = re.compile(r"^\.partial-([0-9a-f]{32})\.zip$")


def cache_dir() -> Path:
    path = Path(current_app.config["ZIP_CACHE_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def archive_path(album_id: int, version: str) -> Path:
    return cache_dir() / f"album-{album_id}-{version}.zip"


def partial_path(job_id: str) -> Path:
    """Where a job writes before the atomic rename: named by job, so a dead job's leftovers can be found."""
    return cache_dir() / f".partial-{job_id}.zip"


@dataclass
class CachedArchive:
    """A cached archive open for serving. The shared lock lives on `file`'s open file description, so it
    lasts exactly as long as the file is open: hand `file` to `delivery.send_file` (which closes it when
    the response closes), or call `release` if it is not served after all (idempotent)."""

    path: Path
    size: int
    file: BinaryIO = field(repr=False)

    def release(self) -> None:
        self.file.close()


def open_cached(album_id: int, version: str) -> CachedArchive | None:
    """The ready archive of this album version, open and locked against removal; None if absent."""
    path = archive_path(album_id, version)
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_SH)  # waits only while a remover holds it, which is a moment
        stat = os.fstat(file.fileno())
        if stat.st_nlink == 0:  # removed between our open and our lock
            file.close()
            return None
        touch(path)
    except BaseException:
        file.close()
        raise
    return CachedArchive(path=path, size=stat.st_size, file=file)


def cached_archive(album: Album) -> CachedArchive | None:
    """For the synchronous "Download all": the cached ZIP of the album's current version, if there is one."""
    return open_cached(album.id, album.version)


def has_archive(album_id: int, version: str) -> bool:
    return archive_path(album_id, version).is_file()


def touch(path: Path) -> None:
    """Mark the archive as used now: the TTL and the size budget count from the last use, kept in the atime.
    The mtime is left alone: nginx makes its ETag from it when it serves the file (accel.py)."""
    try:
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))
    except OSError:
        pass


def remove_if_idle(path: Path) -> int | None:
    """Delete the archive unless someone is serving it; returns the bytes freed, or None when it is in use."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        size = os.fstat(fd).st_size
        path.unlink(missing_ok=True)
        return size
    finally:
        os.close(fd)


def album_archives(album_id: int) -> list[tuple[str, Path]]:
    """(version, path) of every cached archive of the album."""
    found = []
    for path in cache_dir().glob(f"album-{album_id}-*.zip"):
        match = ARCHIVE_NAME.match(path.name)
        if match and int(match.group(1)) == album_id:
            found.append((match.group(2), path))
    return found


def invalidate(album_id: int, keep_versions: Collection[str]) -> list[Path]:
    """Remove the album's archives of every version but `keep_versions` (those of the album's current plans);
    returns those still in use (the sweeper takes them later: they are never served again)."""
    busy = []
    for version, path in album_archives(album_id):
        if version not in keep_versions and remove_if_idle(path) is None:
            busy.append(path)
    return busy


@dataclass
class CacheEntry:
    album_id: int
    version: str
    path: Path
    size: int
    used_at: float


def entries() -> list[CacheEntry]:
    found = []
    for path in cache_dir().iterdir():
        match = ARCHIVE_NAME.match(path.name)
        if not match:
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        used_at = max(stat.st_atime, stat.st_mtime)  # see touch()
        found.append(CacheEntry(int(match.group(1)), match.group(2), path, stat.st_size, used_at))
    return found


def partials() -> list[tuple[str, Path, float]]:
    """(job id, path, modified time) of every archive still being written, or left by a dead job."""
    found = []
    for path in cache_dir().iterdir():
        match = PARTIAL_NAME.match(path.name)
        if match:
            try:
                found.append((match.group(1), path, path.stat().st_mtime))
            except FileNotFoundError:
                continue
    return found


def expires_before(now: float | None = None) -> float:
    return (now or time.time()) - current_app.config["ZIP_CACHE_TTL_HOURS"] * 3600
