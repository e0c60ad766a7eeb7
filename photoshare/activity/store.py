"""Writes of activity: a batch of events in one transaction, the first-download claim, and the retention fold.

Called by the recorder's writer thread (never a request's) and by the sweeper. A batch is one INSERT of many
rows plus one UPDATE per link, so 50 gallery views cost the database one short write instead of 50 that queue
for SQLite's one lock inside the requests.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from blinker import Namespace
from sqlalchemy import case, func, insert

from ..extensions import db
from ..models import ActivityDay, ActivityEvent, ShareLink, utcnow
from .events import VIEW, VISIT, Event, families

_signals = Namespace()
# Sent (sender: the app) with `share_id` once per link, when its first finished download was written; the job
# system connects to it and e-mails the owner (jobs/owner_mail.py).
first_download = _signals.signal("first-download")


# The link's counters an event may add to (Event.counters); anything else (e.g. from a tampered Redis list) is
# ignored. view_count is added to by every `visit` and `view`.
COUNTERS = frozenset({"download_started_count", "download_count", "album_downloads", "photo_downloads"})


def write_batch(events: Iterable[Event], *, keep_rows: bool = True) -> list[int]:
    """Store `events` in one transaction: rows for visits and downloads (unless `keep_rows` is False: activity
    switched off), and one UPDATE per link adding its views and its events' counters. Returns the ids of links
    whose first finished download this batch recorded (claimed atomically, so across processes each link is
    returned exactly once). Raises on a database error, leaving nothing half-written."""
    rows, added, finished = [], defaultdict[int, Counter[str]](Counter), set()
    for event in events:
        counts = added[event.share_id]
        counts.update(name for name in event.counters if name in COUNTERS)
        if event.kind in (VIEW, VISIT):
            counts["view_count"] += 1
        if event.kind == VIEW:
            continue
        if keep_rows:
            rows.append(_row(event))
        if event.kind != VISIT and event.finished:
            finished.add(event.share_id)
    try:
        if rows:
            db.session.execute(insert(ActivityEvent), rows)
        for share_id, counts in sorted(added.items()):  # in id order: two processes' writers never deadlock
            if counts:
                columns = {getattr(ShareLink, name): func.coalesce(getattr(ShareLink, name), 0) + n
                           for name, n in counts.items()}
                db.session.execute(db.update(ShareLink).where(ShareLink.id == share_id).values(columns))
        firsts = [share_id for share_id in sorted(finished) if _claim_first_download(share_id)]
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return firsts


def _row(event: Event) -> dict[str, object]:
    browser, system = families(event.user_agent)
    return {
        "at": event.at, "share_id": event.share_id, "album_id": event.album_id, "kind": event.kind,
        "photo_id": event.photo_id, "part": event.part, "size": event.size, "bytes": max(0, event.bytes),
        "finished": event.finished, "browser": browser, "os": system, "network": event.network,
        "email": event.email, "visitor": event.visitor_id,
    }


def _claim_first_download(share_id: int) -> bool:
    result = db.session.execute(
        db.update(ShareLink)
        .where(ShareLink.id == share_id, ShareLink.first_download_at.is_(None))
        .values(first_download_at=utcnow())
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class FoldReport:
    events: int
    days: int


def fold_before(cutoff: datetime) -> FoldReport:
    """Sum every event older than `cutoff` into its link's daily totals (activity_days) and delete it, in one
    transaction: totals and charts read both tables, so nothing is counted twice or lost. Days already folded
    (an earlier sweep that ran at another hour) are added to, never replaced."""
    day = func.date(ActivityEvent.at)
    # Only rows seen now are folded and deleted: a late batch written meanwhile waits for the next sweep.
    last_id = db.session.execute(db.select(func.max(ActivityEvent.id)).where(ActivityEvent.at < cutoff)).scalar()
    if last_id is None:
        return FoldReport(0, 0)
    old = (ActivityEvent.at < cutoff) & (ActivityEvent.id <= last_id)
    is_download = (ActivityEvent.kind != VISIT) & ActivityEvent.finished
    sums = db.session.execute(
        db.select(
            ActivityEvent.share_id,
            func.min(ActivityEvent.album_id),
            day,
            func.sum(case((ActivityEvent.kind == VISIT, 1), else_=0)),
            func.count(func.distinct(ActivityEvent.visitor)),
            func.sum(case((is_download, 1), else_=0)),
            func.coalesce(func.sum(ActivityEvent.bytes), 0),
        )
        .where(old)
        .group_by(ActivityEvent.share_id, day)
    ).all()
    try:
        for share_id, album_id, on, visits, visitors, downloads, sent in sums:
            on = on if not isinstance(on, str) else datetime.fromisoformat(on).date()  # SQLite's date() is text
            existing = db.session.execute(
                db.select(ActivityDay).where(ActivityDay.share_id == share_id, ActivityDay.day == on)
            ).scalar_one_or_none()
            if existing is None:
                existing = ActivityDay(share_id=share_id, album_id=album_id, day=on, visits=0, visitors=0,
                                       downloads=0, bytes=0)
                db.session.add(existing)
            existing.visits += int(visits or 0)
            existing.visitors += int(visitors or 0)
            existing.downloads += int(downloads or 0)
            existing.bytes += int(sent or 0)
        deleted = db.session.execute(db.delete(ActivityEvent).where(old)).rowcount
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return FoldReport(int(deleted or 0), len(sums))


def retention_cutoff(days: float, now: datetime | None = None) -> datetime:
    """The start of the UTC day `days` days ago: whole days are folded, never half of one."""
    moment = (now or utcnow()) - timedelta(days=days)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
