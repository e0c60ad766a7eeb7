"""What the share API and pages ask of background preparation: prepare, status, and the prepared download.

Takes share links and ids, never `request`. Every read first settles the job's true state (a dead worker's
job is failed, a swept archive's job is retired), so no visitor waits on a job that cannot finish.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app

from .. import delivery
from ..access import find_share, require_downloads
from ..albums import EMPTY_VERSION, ORIGINAL_VARIANT, EmptyAlbum, variant_version
from ..delivery import cache, links
from ..errors import AppError, NotFound
from ..extensions import db
from ..images import InvalidImage
from ..models import Album, DownloadJob, ShareLink
from ..sizes import LARGE, ORIGINAL, Variant
from . import notify, store
from .current import get_runner
from .sweep import fail_if_stuck, resend_if_orphaned

log = logging.getLogger(__name__)


class JobNotFound(NotFound):
    error = "job_not_found"
    message = "There is no such download preparation for this album. Please prepare the download again."


class JobsUnavailable(AppError):
    status, error = 503, "jobs_unavailable"
    message = "Downloads cannot be prepared right now. Please try again in a minute."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "30"})


@dataclass
class JobView:
    """A job as one share's visitor sees it: the link in it is signed for that share."""

    job_id: str
    status: str
    progress: int
    download_url: str | None = None
    expires_at: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"job_id": self.job_id, "status": self.status, "progress": self.progress}
        if self.download_url:
            data["download_url"] = self.download_url
            data["expires_at"] = self.expires_at
        if self.error:
            data["error"] = self.error
        return data


def needs_preparation(photo_count: int, total_bytes: int) -> bool:
    """Whether "Download all" should go through the preparing page (above PREPARE_THRESHOLD[_MB]; 0 is never)."""
    cfg = current_app.config
    photos, megabytes = cfg["PREPARE_THRESHOLD"], cfg["PREPARE_THRESHOLD_MB"]
    return bool(photos and photo_count > photos) or bool(megabytes and total_bytes > megabytes * 1024 * 1024)


def prepare(link: ShareLink, *, email: str | None = None, variant: Variant = ORIGINAL_VARIANT) -> JobView:
    """Join the job of the album version in `variant` (web size, location removed: a version of its own, the
    digest of its plan) or start one; ready at once when its archive is already cached.

    Raises JobsUnavailable (503) when the job cannot be handed to a worker (broker down).
    """
    album = link.album
    if album.version == EMPTY_VERSION:
        raise EmptyAlbum()
    version = variant_version(album, variant)
    key = ORIGINAL_VARIANT.key if version == album.version else variant.key  # the very same bytes: one job
    runner = get_runner()
    runner.ensure_started()
    for _attempt in range(3):
        size = delivery.prepared_size(album.id, version)
        job, created = store.create_or_join(album.id, version, ready_size=size, variant=key)
        if _settle(job):
            break
    else:
        raise JobsUnavailable()
    if created and job.status == store.QUEUED:
        try:
            runner.dispatch_build(job.id)
        except Exception as exc:  # noqa: BLE001 (broker unreachable: no job may wait forever on a message never sent)
            log.error("could not queue job %s: %s", job.id, exc)
            store.fail(job.id, JobsUnavailable.message)
            raise JobsUnavailable() from None
    if email and notify.add_notice(job, link, email):
        job = store.get(job.id) or job
        if job.status == store.READY:
            runner.dispatch_notices(job.id)
    return view(job, link)


def status(link: ShareLink, job_id: str) -> JobView:
    """The job as this share sees it; 404 for an unknown id or a job of another album."""
    job = store.get(job_id)
    if job is None or job.album_id != link.album_id:
        raise JobNotFound()
    get_runner().ensure_started()
    _settle(job)
    return view(store.get(job_id) or job, link)


def view(job: DownloadJob, link: ShareLink) -> JobView:
    result = JobView(job_id=job.id, status=job.status, progress=store.percent(job))
    if job.status == store.READY:
        grant = links.Grant(album_id=job.album_id, version=job.album_version, share_id=link.id)
        result.download_url = links.url(grant)
        result.expires_at = links.expires_at().isoformat(timespec="seconds")
        cache.touch(cache.archive_path(job.album_id, job.album_version))
    elif job.status == store.FAILED:
        result.error = job.error or store.GENERIC
    return result


def _settle(job: DownloadJob) -> bool:
    """Bring the job's stored state in line with the facts; True when it can still be joined."""
    if job.status == store.PROCESSING and store.is_stale(job):
        fail_if_stuck(job)
        return False
    if job.status == store.READY and not delivery.has_prepared(job.album_id, job.album_version):
        store.retire_version(job.album_id, job.album_version, store.EXPIRED, statuses=(store.READY,))
        return False
    if job.status == store.QUEUED:
        resend_if_orphaned(job)
    return job.status != store.FAILED


def open_prepared(token: str) -> tuple[ShareLink, Album, delivery.Prepared]:
    """The share, album and locked cached archive (or the archive in the bucket, with a URL lifetime within
    the link's) a signed download link names.

    LinkInvalid (404) when tampered or not this album's; LinkGone (410) when older than 24 hours, when the
    album changed since, or when the archive was swept; ShareGone (410) when the share was revoked or expired.
    """
    grant = links.load(token)
    get_runner().ensure_started()  # the sweeper keeps the cache this link points into
    share = db.session.get(ShareLink, grant.share_id)
    if share is None:
        raise links.LinkInvalid()
    share = find_share(share.token)
    require_downloads(share)
    album = share.album
    if album.id != grant.album_id:
        raise links.LinkInvalid()
    if grant.version not in share_versions(album, share):
        raise links.LinkGone(
            "The album has changed since this link was made, so it no longer matches. Prepare the download again "
            "to get every photo as it is now.",
            error="album_changed",
            share_id=share.id,
        )
    cached = delivery.open_for_link(grant)
    if cached is None:
        raise links.LinkGone(
            "This download is no longer kept on the server. Prepare it again; it only takes a moment.",
            error="archive_expired",
            share_id=share.id,
        )
    return share, album, cached


def share_versions(album: Album, share: ShareLink) -> set[str]:
    """The versions of the album's archives this share may download now (each size it allows, its location
    rule): a signed link to any other version is outdated, or was made for another share's files."""
    sizes = [LARGE] if share.web_size_only else [ORIGINAL, LARGE]
    versions = set()
    for size in sizes:
        try:
            versions.add(variant_version(album, Variant(size, strip_location=share.strip_location)))
        except (FileNotFoundError, InvalidImage):  # that size cannot be made now: no link to it is current
            continue
    return versions
