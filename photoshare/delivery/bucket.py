"""The ZIP cache in the object store (STORAGE_BACKEND=s3/r2): prepared archives at `zips/album-<id>-<version>.zip`.

On local disk (cache.py) an archive lives while it is used (its atime) and a shared `flock` protects one being
sent. In a bucket neither exists: the store sends the bytes to whoever holds a presigned URL, and the app never
learns when that ends. So time does the lock's job:

- an archive is *fresh* for ZIP_CACHE_TTL_HOURS after it was written: only then does a job count as ready on
  it, and only then are new signed links (and presigned URLs for "Download all") handed out for it;
- a presigned URL for an archive never outlives the signed link it was made for (at most 24 hours,
  `links.LINK_MAX_AGE`), nor the archive's keeping time below;
- so an archive is *kept* until ZIP_CACHE_TTL_HOURS + 24 h after it was written, and only then does the
  sweeper delete it: every link and URL that could point at it has expired. Outdated versions (the album
  changed) wait the same time: their links answer 410 at once, but a download already handed to the store
  goes on. The bucket's lifecycle rule (deploy/s3-lifecycle.json, 2 days) is the backstop.

Rebuilding a version overwrites the same key with the same bytes (archives are byte-stable), so a download
resumed across a rebuild still fits together. ZIP_CACHE_MAX_GB applies to the local cache only. No `request`.

An archive is as private as the originals it holds: stored `private, no-cache` with no public ACL (s3.py), never
given a CDN address (the edge refuses `zips/`, deploy/cdn.md), reached only by a presigned URL made after the
share's or the signed link's checks. Looking one up is a HEAD on the store, bounded like every store request
(S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT, S3_MAX_ATTEMPTS): a hung store makes it a 503, never a wait.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from ..storage import StoredObject, get_storage
from . import links

PREFIX = "zips/"
KEY = re.compile(r"^zips/album-(\d+)-([0-9A-Za-z]+)\.zip$")
HEARTBEAT_SECONDS = 1.0


def in_bucket() -> bool:
    """Whether prepared archives live in the object store (the store keeps no file on this machine)."""
    return get_storage().local_path(archive_key(0, "probe")) is None


def archive_key(album_id: int, version: str) -> str:
    return f"{PREFIX}album-{album_id}-{version}.zip"


def ttl_seconds() -> float:
    return float(current_app.config["ZIP_CACHE_TTL_HOURS"]) * 3600


@dataclass(frozen=True)
class StoredArchive:
    """A prepared archive in the bucket. `url_seconds` is how long a presigned URL for it may live here: what
    the signed link has left, or a whole link's lifetime for "Download all", never past `kept_until`."""

    album_id: int
    version: str
    key: str
    size: int
    written_at: float
    url_seconds: int = 0

    @property
    def fresh_until(self) -> float:
        return self.written_at + ttl_seconds()

    @property
    def kept_until(self) -> float:
        return self.fresh_until + links.LINK_MAX_AGE

    def is_fresh(self, now: float | None = None) -> bool:
        return (now or time.time()) < self.fresh_until

    def for_link(self, seconds_left: int, now: float | None = None) -> StoredArchive | None:
        """This archive with its URL lifetime set, or None when no URL may be made for it any more."""
        seconds = min(seconds_left, int(self.kept_until - (now or time.time())))
        if seconds < 1:
            return None
        return StoredArchive(self.album_id, self.version, self.key, self.size, self.written_at, seconds)


def lookup(album_id: int, version: str) -> StoredArchive | None:
    """The archive of this album version in the bucket, fresh or not; None when absent."""
    key = archive_key(album_id, version)
    try:
        found = get_storage().stat(key)
    except FileNotFoundError:
        return None
    return StoredArchive(album_id, version, key, found.size, found.modified)


def find_fresh(album_id: int, version: str) -> StoredArchive | None:
    """The archive while new links may point at it; with a URL lifetime of a whole link's."""
    found = lookup(album_id, version)
    if found is None or not found.is_fresh():
        return None
    return found.for_link(links.LINK_MAX_AGE)


def for_grant(grant: links.Grant) -> StoredArchive | None:
    """The archive a signed link names, while its presigned URL can still be made (see the module docstring)."""
    found = lookup(grant.album_id, grant.version)
    return found.for_link(grant.seconds_left()) if found is not None else None


def presigned_url(archive: StoredArchive, *, download_name: str, method: str) -> str:
    url = get_storage().presigned_url(
        archive.key,
        expires_in=max(1, archive.url_seconds or int(current_app.config["SIGNED_URL_TTL_SECONDS"])),
        download_name=download_name,
        content_type="application/zip",
        method=method,
    )
    assert url is not None  # a bucket always signs
    return url


def upload(album_id: int, version: str, source: Path, keep_alive: Callable[[], object]) -> int:
    """Copy the built archive into the bucket (multipart, streamed from disk), calling `keep_alive` every
    second meanwhile: a large upload must not look like a dead job. Raises StorageError when the store fails."""
    storage, key = get_storage(), archive_key(album_id, version)
    with source.open("rb") as file, ThreadPoolExecutor(max_workers=1, thread_name_prefix="zip-upload") as pool:
        future = pool.submit(storage.save, key, file)
        while True:
            try:
                return future.result(timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                keep_alive()


def removable(now: float | None = None) -> Iterator[tuple[int, str, StoredObject]]:
    """(album id, version, object) of every archive past its keeping time: nothing can point at it any more."""
    now = now or time.time()
    limit = ttl_seconds() + links.LINK_MAX_AGE
    for item in get_storage().objects(PREFIX):
        match = KEY.match(item.key)
        if match and item.modified + limit <= now:
            yield int(match.group(1)), match.group(2), item


def remove(key: str) -> None:
    get_storage().delete(key)
