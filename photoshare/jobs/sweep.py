"""Housekeeping for jobs and the ZIP cache: run by Celery beat, the embedded sweeper thread, and
`flask --app wsgi cleanup`. Safe to run from several processes at once; never removes a ZIP being served.
Also removes the synchronous "Download all" temp archives a killed worker left (`archive_files.remove_stale`).
With s3/r2 the prepared ZIPs are in the bucket: removed once no link or presigned URL can reach them (bucket.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from .. import activity, plans
from ..delivery import bucket, cache
from ..delivery.archive_files import remove_stale
from ..extensions import db
from ..models import Album, DownloadJob, DownloadNotice, Selection, utcnow
from ..storage import StorageError
from . import store
from .current import get_runner

log = logging.getLogger(__name__)
JOB_HISTORY = timedelta(days=7)
LOCK_FILE_AGE = 24 * 3600


@dataclass
class SweepReport:
    stuck: int = 0
    revived: int = 0
    expired: int = 0
    outdated: int = 0
    evicted: int = 0
    in_use: int = 0
    partials: int = 0
    temp_files: int = 0
    freed: int = 0
    activity_folded: int = 0

    def summary(self) -> str:
        return (
            f"stuck jobs failed: {self.stuck}, queued jobs re-sent: {self.revived}, "
            f"archives removed: {self.expired} expired, {self.outdated} outdated, {self.evicted} over budget "
            f"({self.freed / 1e6:.1f} MB), kept because in use: {self.in_use}, partial files removed: {self.partials}, "
            f"abandoned download-all temp files removed: {self.temp_files}, "
            f"activity events folded into daily totals: {self.activity_folded}"
        )


def fail_if_stuck(job: DownloadJob) -> bool:
    """Fail a job whose worker stopped beating and remove its partial file; True when this call did it."""
    if not store.is_stale(job) or not store.retire_stale(job):
        return False
    cache.partial_path(job.id).unlink(missing_ok=True)
    log.warning("job %s (album %s) had no heartbeat since %s: marked failed", job.id, job.album_id, job.heartbeat_at)
    return True


def sweep(*, revive: bool = True, now: float | None = None) -> SweepReport:
    """One pass: stuck jobs, orphaned queued jobs (when `revive`), leftover partials, cached archives.
    `now` (a Unix time) judges the bucket's archives as at that moment, e.g. a day ahead in tests."""
    report = SweepReport()
    report.stuck = sum(fail_if_stuck(job) for job in store.stale_jobs())
    if revive:
        report.revived = _revive_waiting()
    leftovers = cache.partials()  # listed before the live jobs are read, so a job starting now is not hit
    live = store.processing_ids()
    for job_id, path, _mtime in leftovers:
        if job_id not in live:
            path.unlink(missing_ok=True)
            report.partials += 1
    _sweep_archives(report)
    if bucket.in_bucket():
        _sweep_bucket(report, now)
    report.temp_files = remove_temp_leftovers(current_app.config)
    report.activity_folded = _fold_activity()
    _forget_old_jobs()
    _forget_outdated_selections()
    _remove_idle_lock_files()
    if report.stuck or report.expired or report.outdated or report.evicted or report.partials or report.temp_files:
        log.info("sweep: %s", report.summary())
    return report


def _fold_activity() -> int:
    """Events older than ACTIVITY_RETENTION_DAYS become daily totals (activity.fold_old); with Redis, the
    events still in its list are written first, so the job system also drains what no web process did."""
    try:
        return activity.fold_old()
    except SQLAlchemyError as exc:  # the next sweep tries again; the events stay meanwhile
        db.session.rollback()
        log.warning("could not fold old activity: %s", exc)
        return 0


def remove_temp_leftovers(config: Mapping[str, Any]) -> int:
    """Remove the "Download all" temp archives and lock files a killed process left in TEMP_DIR and LOCK_DIR;
    never one a live response holds (archive_files' locks). Cheap on an idle, empty folder: run at every app
    start and by every process's sweeper thread, whatever the mode."""
    removed = remove_stale(config["TEMP_DIR"], config["LOCK_DIR"])
    if removed:
        log.info("removed %d abandoned download-all temp file(s) from %s", removed, config["TEMP_DIR"])
    return removed


def _revive_waiting() -> int:
    return sum(resend_if_orphaned(job) for job in store.waiting_jobs())


def resend_if_orphaned(job: DownloadJob) -> bool:
    """Queued jobs nobody took for 5 heartbeat periods are sent again, once per period, by one process: the
    broker may have lost the message, or the process holding it in its pool died. A duplicate is harmless
    (the claim is atomic)."""
    if not store.waiting_too_long(job) or not store.take_resend(job):
        return False
    try:
        get_runner().dispatch_build(job.id)
    except Exception as exc:  # noqa: BLE001 (broker down: the next pass tries again)
        log.warning("could not re-send queued job %s: %s", job.id, exc)
        return False
    log.info("re-sent job %s, queued since %s", job.id, job.created_at)
    return True


def _sweep_archives(report: SweepReport) -> None:
    entries = cache.entries()
    ids = {entry.album_id for entry in entries}
    current = _live_versions(ids)
    variants = store.ready_versions(ids)  # web size, location removed: their own versions, kept while ready
    cutoff, kept = cache.expires_before(), []
    for entry in entries:
        if entry.version not in current.get(entry.album_id, ()) and (entry.album_id, entry.version) not in variants:
            reason = "outdated"
        elif entry.used_at < cutoff:
            reason = "expired"
        else:
            kept.append(entry)
            continue
        if _remove(entry, report):
            setattr(report, reason, getattr(report, reason) + 1)
        else:
            kept.append(entry)
    budget = current_app.config["ZIP_CACHE_MAX_GB"] * 1024**3
    total = sum(entry.size for entry in kept)
    for entry in sorted(kept, key=lambda e: e.used_at):  # least recently used first
        if total <= budget:
            break
        if _remove(entry, report):
            total -= entry.size
            report.evicted += 1


def _live_versions(album_ids: set[int]) -> dict[int, set[str]]:
    """Per album, the versions of its current plans (the album, its parts, its selections): the others are
    outdated."""
    if not album_ids:
        return {}
    albums = db.session.execute(db.select(Album).where(Album.id.in_(album_ids))).scalars()
    return {album.id: plans.live_versions(album) for album in albums}


def _sweep_bucket(report: SweepReport, now: float | None) -> None:
    """Archives in the bucket past their keeping time; a ready job on one that is still fresh cannot exist
    (fresh < kept), and one on an expired archive is retired by the next status read anyway."""
    for album_id, version, item in list(bucket.removable(now)):
        album = db.session.get(Album, album_id)
        reason = "expired" if album is not None and album.version == version else "outdated"
        store.retire_version(album_id, version, store.EXPIRED, statuses=(store.READY,))
        bucket.remove(item.key)
        report.freed += item.size
        setattr(report, reason, getattr(report, reason) + 1)


def _remove(entry: cache.CacheEntry, report: SweepReport) -> bool:
    freed = cache.remove_if_idle(entry.path)
    if freed is None:
        report.in_use += 1
        return False
    report.freed += freed
    store.retire_version(entry.album_id, entry.version, store.EXPIRED, statuses=(store.READY,))
    return True


def _forget_old_jobs() -> None:
    cutoff = utcnow() - JOB_HISTORY
    old = db.select(DownloadJob.id).where(DownloadJob.active_key.is_(None), DownloadJob.finished_at < cutoff)
    db.session.execute(db.delete(DownloadNotice).where(DownloadNotice.job_id.in_(old)))
    store.delete_finished_before(cutoff)


def _forget_outdated_selections() -> None:
    """Selections of an album version that is no longer the album's (or of a deleted album) answer 410 or 404
    whatever happens: their rows go. The visitor's browser keeps the photo ids and simply selects again."""
    current = db.select(Album.id).where(Album.id == Selection.album_id, Album.version == Selection.album_version)
    db.session.execute(db.delete(Selection).where(~current.exists()))
    db.session.commit()


def _remove_idle_lock_files() -> None:
    """Build-lock files of long-finished builds; one being held is left alone."""
    import fcntl

    lock_dir = Path(current_app.config["LOCK_DIR"])
    now = time.time()
    for path in lock_dir.glob("build-*.lock"):
        try:
            if now - path.stat().st_mtime < LOCK_FILE_AGE:
                continue
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
        except BlockingIOError:
            pass
        finally:
            os.close(fd)


@click.command("cleanup")
@with_appcontext
def cleanup_command() -> None:
    """Sweep now: fail stuck jobs, remove expired, outdated and over-budget ZIPs and leftover partial files."""
    try:
        report = sweep(revive=get_runner().mode == "celery")
    except (SQLAlchemyError, OSError, StorageError) as exc:
        raise click.ClickException(f"cleanup failed: {exc}") from None
    click.echo(report.summary())
