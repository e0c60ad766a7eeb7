"""Download jobs in the database, changed only by conditional updates so that racing workers never clash.

Every change says which state it expects (`WHERE status = ...`); the one that loses the race changes nothing
and learns it from the row count. No `request` here.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..i18n import N_
from ..models import DownloadJob, utcnow

QUEUED, PROCESSING, READY, FAILED = "queued", "processing", "ready", "failed"
ACTIVE = (QUEUED, PROCESSING, READY)

# A job's error is stored in English (many visitors of any language may join one job) and translated when a
# visitor is shown it (`translated_error`).
INTERRUPTED = N_("The preparation was interrupted. Please try again.")
ALBUM_CHANGED = N_("The album changed while your download was being prepared. Please prepare it again.")
EXPIRED = N_("This download has expired. Please prepare it again.")
BUSY = N_("The server is busy preparing this album. Please try again in a minute.")
GENERIC = N_("Something went wrong while preparing your download. Please try again.")
RESEND_AFTER_STALE_PERIODS = 5
DISK_FULL = N_("The server ran out of disk space while preparing your download. Please try again later.")
UNAVAILABLE = N_("Downloads cannot be prepared right now. Please try again in a minute.")
UNREADABLE_PHOTO = N_(
    "The photo “%(name)s” could not be read, so the album cannot be packed right now. Please let the album's owner know."
)
_UNREADABLE_PHOTO = re.compile(re.escape(UNREADABLE_PHOTO).replace(re.escape("%(name)s"), "(?P<name>.*)"), re.DOTALL)


def translated_error(message: str) -> str:
    """A stored job error in the language of this request (an unknown one, as it is)."""
    unreadable = _UNREADABLE_PHOTO.fullmatch(message)
    if unreadable:
        return gettext(UNREADABLE_PHOTO, name=unreadable["name"])
    return gettext(message)


def active_key(album_id: int, version: str) -> str:
    return f"{album_id}:{version}"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def get(job_id: str) -> DownloadJob | None:
    if not job_id or len(job_id) > 32 or "\x00" in job_id:  # PostgreSQL refuses NUL in text: a 500, not a 404
        return None
    return db.session.get(DownloadJob, job_id, populate_existing=True)


def find_active(album_id: int, version: str) -> DownloadJob | None:
    query = db.select(DownloadJob).where(DownloadJob.active_key == active_key(album_id, version))
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def create_or_join(
    album_id: int, version: str, *, ready_size: int | None = None, plan_ref: str = "", variant: str = "original"
) -> tuple[DownloadJob, bool]:
    """The archive version's active job, or a new one (ready at once when `ready_size` is given); `version` is
    that of the album's plan `plan_ref` (plans.py: "" the whole album) in `variant` (sizes.Variant.key), so each
    plan in each variant is a job of its own.

    Returns (job, created). The unique `active_key` decides between concurrent callers in any process: one
    insert wins, the others read the winner's row.
    """
    for _attempt in range(5):
        job = find_active(album_id, version)
        if job is not None:
            return job, False
        job = DownloadJob(
            id=uuid.uuid4().hex,
            album_id=album_id,
            album_version=version,
            plan_ref=plan_ref,
            variant=variant,
            active_key=active_key(album_id, version),
            status=READY if ready_size is not None else QUEUED,
            archive_size=ready_size or 0,
            finished_at=utcnow() if ready_size is not None else None,
        )
        db.session.add(job)
        try:
            db.session.commit()
            return job, True
        except IntegrityError:
            db.session.rollback()
    raise RuntimeError(f"could not create or find the job of album {album_id} version {version}")


def _update(job_id: str, expect: tuple[str, ...], **values: object) -> bool:
    """Apply `values` when the job is in one of the `expect` states; True when it was."""
    result = db.session.execute(
        db.update(DownloadJob).where(DownloadJob.id == job_id, DownloadJob.status.in_(expect)).values(**values)
    )
    db.session.commit()
    return result.rowcount == 1


def claim(job_id: str) -> bool:
    """Take a queued job for this process; False when another worker (or a failure) got there first."""
    now = utcnow()
    return _update(job_id, (QUEUED,), status=PROCESSING, worker=worker_name(), heartbeat_at=now, bytes_done=0)


def start(job_id: str, bytes_total: int) -> bool:
    return _update(job_id, (PROCESSING,), bytes_total=bytes_total, heartbeat_at=utcnow())


def report(job_id: str, bytes_done: int) -> bool:
    """Record progress and the heartbeat; False when the job was failed or retired meanwhile (stop building)."""
    return _update(job_id, (PROCESSING,), bytes_done=bytes_done, heartbeat_at=utcnow())


def beat(job_id: str) -> bool:
    return _update(job_id, (QUEUED, PROCESSING), heartbeat_at=utcnow())


def finish(job_id: str, archive_size: int) -> bool:
    now = utcnow()
    return _update(job_id, (PROCESSING,), status=READY, archive_size=archive_size, finished_at=now, heartbeat_at=now)


def fail(job_id: str, message: str, expect: tuple[str, ...] = (QUEUED, PROCESSING)) -> bool:
    """End the job with a visitor-readable `message`; a later prepare then starts a new job."""
    return _update(job_id, expect, status=FAILED, error=message[:500], active_key=None, finished_at=utcnow())


def retire_stale(job: DownloadJob) -> bool:
    """Fail `job` if it is still exactly the stale state that was read (heartbeat unchanged since)."""
    result = db.session.execute(
        db.update(DownloadJob)
        .where(
            DownloadJob.id == job.id,
            DownloadJob.status == PROCESSING,
            DownloadJob.heartbeat_at == job.heartbeat_at,
        )
        .values(status=FAILED, error=INTERRUPTED, active_key=None, finished_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1


def retire_version(album_id: int, version: str, message: str, statuses: tuple[str, ...] = ACTIVE) -> int:
    """Fail the album version's active job (album changed, archive expired); returns how many were."""
    result = db.session.execute(
        db.update(DownloadJob)
        .where(DownloadJob.active_key == active_key(album_id, version), DownloadJob.status.in_(statuses))
        .values(status=FAILED, error=message, active_key=None, finished_at=utcnow())
    )
    db.session.commit()
    return result.rowcount


def retire_album(album_id: int, keep_versions: Collection[str], message: str) -> int:
    """Fail every active job of the album except those of `keep_versions` (plans.live_versions: the album's
    current version and those of its current parts and selections)."""
    query = db.update(DownloadJob).where(DownloadJob.album_id == album_id, DownloadJob.active_key.is_not(None))
    if keep_versions:
        query = query.where(DownloadJob.album_version.not_in(list(keep_versions)))
    result = db.session.execute(query.values(status=FAILED, error=message, active_key=None, finished_at=utcnow()))
    db.session.commit()
    return result.rowcount


def stale_before() -> datetime:
    return utcnow() - timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])


def is_stale(job: DownloadJob) -> bool:
    """A processing job whose worker stopped beating: killed, or hung past JOB_STALE_SECONDS."""
    return job.status == PROCESSING and (job.heartbeat_at is None or job.heartbeat_at < stale_before())


def stale_jobs() -> list[DownloadJob]:
    query = db.select(DownloadJob).where(DownloadJob.status == PROCESSING, DownloadJob.heartbeat_at < stale_before())
    return list(db.session.execute(query).scalars())


def resend_before() -> datetime:
    """Queued jobs untouched since then are re-sent: a long queue is normal, a lost message is not."""
    return utcnow() - timedelta(seconds=RESEND_AFTER_STALE_PERIODS * current_app.config["JOB_STALE_SECONDS"])


def waiting_too_long(job: DownloadJob) -> bool:
    return job.status == QUEUED and (job.heartbeat_at or job.created_at) < resend_before()


def waiting_jobs() -> list[DownloadJob]:
    """Queued jobs nobody took for a while: their message or pool slot may have died with a process."""
    last_touch = db.func.coalesce(DownloadJob.heartbeat_at, DownloadJob.created_at)
    query = db.select(DownloadJob).where(DownloadJob.status == QUEUED, last_touch < resend_before())
    return list(db.session.execute(query).scalars())


def take_resend(job: DownloadJob) -> bool:
    """Claim the right to re-send a waiting job (one process wins per period); stamps its heartbeat."""
    unchanged = DownloadJob.heartbeat_at.is_(None) if job.heartbeat_at is None else DownloadJob.heartbeat_at == job.heartbeat_at
    result = db.session.execute(
        db.update(DownloadJob)
        .where(DownloadJob.id == job.id, DownloadJob.status == QUEUED, unchanged)
        .values(heartbeat_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1


def processing_ids() -> set[str]:
    query = db.select(DownloadJob.id).where(DownloadJob.status == PROCESSING)
    return set(db.session.execute(query).scalars())


def delete_finished_before(moment: datetime) -> int:
    """Forget jobs that ended before `moment` (their archives are long gone)."""
    result = db.session.execute(
        db.delete(DownloadJob).where(DownloadJob.active_key.is_(None), DownloadJob.finished_at < moment)
    )
    db.session.commit()
    return result.rowcount


def percent(job: DownloadJob) -> int:
    """0-100 from bytes copied; 100 only once the archive is really in place."""
    if job.status == READY:
        return 100
    if not job.bytes_total:
        return 0
    return min(99, job.bytes_done * 100 // job.bytes_total)


def ready_versions(album_ids: set[int]) -> set[tuple[int, str]]:
    """(album id, version) of every ready job of these albums: a prepared archive of a variant (web size,
    location removed) is current while its job is ready; an album change retires it (retire_album)."""
    if not album_ids:
        return set()
    query = db.select(DownloadJob.album_id, DownloadJob.album_version).where(
        DownloadJob.album_id.in_(album_ids), DownloadJob.status == READY)
    return {(album_id, version) for album_id, version in db.session.execute(query).all()}
