"""What the share API and pages ask of background preparation: prepare, status, and the prepared download.

Takes share links and ids, never `request`. Every read first settles the job's true state (a dead worker's
job is failed, a swept archive's job is retired), so no visitor waits on a job that cannot finish.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import delivery, plans
from ..access import find_share, require_downloads
from ..albums import EMPTY_VERSION, EmptyAlbum
from ..delivery import cache, links
from ..errors import AppError, NotFound
from ..extensions import db
from ..images import InvalidImage
from ..models import Album, DownloadJob, ShareLink
from ..plans import ArchivePlan
from ..sizes import LARGE, ORIGINAL, Variant
from . import notify, store
from .current import get_runner
from .sweep import fail_if_stuck, resend_if_orphaned

log = logging.getLogger(__name__)


class JobNotFound(NotFound):
    error = "job_not_found"
    message = _l("There is no such download preparation for this album. Please prepare the download again.")


class JobsUnavailable(AppError):
    status, error = 503, "jobs_unavailable"
    message = _l(store.UNAVAILABLE)

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


def prepare(link: ShareLink, *, plan: ArchivePlan | None = None, email: str | None = None) -> JobView:
    """Join the job of the plan's version (default: the whole album's originals; a plan in another variant,
    web size or location removed, is a version of its own) or start one; ready at once when its archive is
    already cached.

    Raises JobsUnavailable (503) when the job cannot be handed to a worker (broker down).
    """
    album = link.album
    if album.version == EMPTY_VERSION:
        raise EmptyAlbum()
    plan = plan or plans.album_plan(album)
    version = plan.version
    key = plan.variant.key
    if plan.variant.size == ORIGINAL and plan.variant.strip_location and version == plans.resolve(album, plan.ref).version:
        key = ORIGINAL  # no photo of it has a location: the very same bytes as the originals, one job
    runner = get_runner()
    runner.ensure_started()
    for _attempt in range(3):
        size = delivery.prepared_size(album.id, version)
        job, created = store.create_or_join(album.id, version, ready_size=size, plan_ref=plan.ref,
                                            variant=key)
        if _settle(job):
            break
    else:
        raise JobsUnavailable()
    if created and job.status == store.QUEUED:
        try:
            runner.dispatch_build(job.id)
        except Exception as exc:  # noqa: BLE001 (broker unreachable: no job may wait forever on a message never sent)
            log.error("could not queue job %s: %s", job.id, exc)
            store.fail(job.id, store.UNAVAILABLE)
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
        grant = links.Grant(album_id=job.album_id, version=job.album_version, share_id=link.id,
                            plan_ref=job.plan_ref, variant=job.variant)
        result.download_url = links.url(grant)
        result.expires_at = links.expires_at().isoformat(timespec="seconds")
        cache.touch(cache.archive_path(job.album_id, job.album_version))
    elif job.status == store.FAILED:
        result.error = store.translated_error(job.error or store.GENERIC)
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


def open_prepared(token: str) -> tuple[ShareLink, ArchivePlan, delivery.Prepared]:
    """The share, archive plan and locked cached archive (or the archive in the bucket, with a URL lifetime within
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
    plan = share_plan(album, share, grant)
    if plan is None:
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
    return share, plan, cached


def share_variants(share: ShareLink) -> list[Variant]:
    """The variants this share may download now: each size it allows, with its location rule."""
    sizes = [LARGE] if share.web_size_only else [ORIGINAL, LARGE]
    return [Variant(size, strip_location=share.strip_location) for size in sizes]


def share_plan(album: Album, share: ShareLink, grant: links.Grant) -> ArchivePlan | None:
    """The plan a signed link names (its ref, in its variant) when this share may still download exactly that
    version: None when the album changed, the selection or part is gone, or the share's rules (web size only,
    location removal) no longer give those bytes."""
    allowed = share_variants(share)
    named = Variant.from_key(grant.variant)
    try:
        for variant in sorted(allowed, key=lambda v: v != named):  # the link's own variant first
            plan = plans.resolve(album, grant.plan_ref, variant)
            if plan.version == grant.version:
                return plan
    except (AppError, FileNotFoundError, InvalidImage):  # a selection made before the album changed, a part
        return None  # the album no longer has, a photo whose file in that size cannot be made now
    return None
