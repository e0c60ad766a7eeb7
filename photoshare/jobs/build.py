"""The job itself: build one album version's archive into the ZIP cache, reporting progress as it goes.

The same function runs in a Celery worker and in the embedded pool. It takes a job id, runs inside an app
context, and leaves either a complete archive under its final name or nothing at all. With s3/r2 it reads the
originals from the store, writes the archive to a partial file on local disk (the ZIP writer seeks), then
uploads it in multipart parts to `zips/` (bucket.py); the bytes are those a local build makes.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable

from flask import current_app

from .. import plans
from ..archive import ArchiveSourceError, write_archive
from ..delivery import bucket, cache
from ..errors import AppError
from ..extensions import db
from ..images import InvalidImage
from ..models import Album
from ..sizes import Variant
from ..storage import StorageError, get_storage
from . import notify, store
from .current import get_runner

log = logging.getLogger(__name__)
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


class Cancelled(Exception):
    """The job was failed or retired while this worker built it (album changed, declared stuck)."""


def run_build(job_id: str) -> None:
    """Build the archive of queued job `job_id`; does nothing when another worker already took it."""
    if not store.claim(job_id):
        return
    job = store.get(job_id)
    album = db.session.get(Album, job.album_id, populate_existing=True) if job else None
    plan = _plan(album, job.plan_ref, job.variant) if job is not None and album is not None else None
    if job is None or plan is None or plan.version != job.album_version:
        store.fail(job_id, store.ALBUM_CHANGED)
        return
    stale = current_app.config["JOB_STALE_SECONDS"]
    lock = get_runner().build_lock(album.id, job.album_version)
    # Another build of this version can only be a job declared dead that is still winding down: wait for it.
    if not lock.acquire(timeout=2 * stale, on_wait=lambda: store.beat(job_id)):
        store.fail(job_id, store.BUSY)
        return
    try:
        _build_locked(job_id, plan, lock.extend)
    finally:
        lock.release()
    job = store.get(job_id)
    if job is not None and job.status == store.READY:
        notify.send_for_job(job_id)


def _plan(album: Album, ref: str, variant: str) -> plans.ArchivePlan | None:
    """The plan a job builds (the album, a selection, a part, in its variant), or None when the album no longer
    has it (or a photo's file in that variant cannot be made: it fails as the album changed)."""
    try:
        return plans.resolve(album, ref, Variant.from_key(variant))
    except (AppError, FileNotFoundError, InvalidImage, StorageError):
        return None


def _build_locked(job_id: str, plan: plans.ArchivePlan, keep_lock: Callable[[], None]) -> None:
    album, version = plan.album, plan.version
    in_bucket = bucket.in_bucket()
    target = cache.archive_path(album.id, version)
    try:
        existing = bucket.find_fresh(album.id, version) if in_bucket else None
    except StorageError as exc:
        log.warning("job %s failed: %s", job_id, exc)
        store.fail(job_id, store.GENERIC)
        return
    if existing is not None or (not in_bucket and target.is_file()):
        # A build that was declared dead finished after all: no need to build again.
        store.finish(job_id, existing.size if existing is not None else target.stat().st_size)
        return
    entries = list(plan.entries)
    if not store.start(job_id, sum(entry.size for entry in entries)):
        return
    partial = cache.partial_path(job_id)
    reporter = _Reporter(job_id, sum(entry.size for entry in entries), keep_lock)
    started = time.monotonic()
    try:
        with partial.open("xb") as out:
            size = write_archive(entries, out, open_source=get_storage().open, progress=reporter)
            out.flush()
            os.fsync(out.fileno())
        if not store.report(job_id, reporter.total):  # still ours: nobody failed it while we finished
            raise Cancelled()
        if in_bucket:
            bucket.upload(album.id, version, partial, keep_alive=lambda: (store.beat(job_id), keep_lock()))
        else:
            os.replace(partial, target)
    except Cancelled:
        log.info("job %s cancelled while building album %s", job_id, album.id)
        return
    except ArchiveSourceError as exc:
        log.warning("job %s failed: %s", job_id, exc)
        store.fail(job_id, _unreadable_photo(exc.entry_name))
        return
    except StorageError as exc:  # the store is down or refused: the visitor tries again later
        log.warning("job %s failed: %s", job_id, exc)
        store.fail(job_id, store.GENERIC)
        return
    except Exception as exc:  # any failure ends the job with words a visitor understands, never a trace
        if _disk_full(exc):
            log.error("job %s failed: the ZIP cache disk is full (%s)", job_id, exc)
            store.fail(job_id, store.DISK_FULL)
        else:
            log.exception("job %s failed while building album %s", job_id, album.id)
            store.fail(job_id, store.GENERIC)
        return
    finally:
        partial.unlink(missing_ok=True)
    log.info("job %s built album %s (%d bytes) in %.1f s", job_id, album.id, size, time.monotonic() - started)
    if not store.finish(job_id, size):
        _drop_if_outdated(album.id, version, plan.variant)


class _Reporter:
    """Progress in bytes copied, written at least every second or every 5 %, whichever comes first.

    Each report is also the heartbeat; a report that finds the job no longer processing stops the build.
    """

    def __init__(self, job_id: str, total: int, on_beat: Callable[[], None]) -> None:
        self.job_id, self.total, self.on_beat = job_id, total, on_beat
        self.step = max(1, total // 20)
        self.last_bytes, self.last_time = 0, time.monotonic()

    def __call__(self, copied: int) -> None:
        now = time.monotonic()
        if copied - self.last_bytes < self.step and now - self.last_time < 1.0:
            return
        self.last_bytes, self.last_time = copied, now
        if not store.report(self.job_id, copied):
            raise Cancelled()
        self.on_beat()


def _drop_if_outdated(album_id: int, version: str, variant: Variant) -> None:
    """The album changed while we renamed the archive into place: an old version must not linger."""
    album = db.session.get(Album, album_id, populate_existing=True)
    if album is None or version not in _live_versions(album, variant):
        # In a bucket nothing can tell whether it is in use: the sweeper removes it in time (bucket.py).
        cache.remove_if_idle(cache.archive_path(album_id, version))


def _live_versions(album: Album, variant: Variant) -> set[str]:
    try:
        return plans.live_versions(album, {plans.ORIGINAL_VARIANT, variant})
    except (FileNotFoundError, InvalidImage, StorageError):
        return set()


def _unreadable_photo(name: str) -> str:
    return store.UNREADABLE_PHOTO % {"name": name}


def _disk_full(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
