"""What the owner reads of activity: totals, downloads per day, the most downloaded photos, pages of events.

Every figure adds the live events to the daily totals that older events were folded into (store.fold_before),
so a chart or total never drops when the sweeper folds. Folded days keep no kinds, photos or visitors'
details: a filter by kind reads live events only. No Flask request here; scopes are plain values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import case, func

from ..errors import AppError, NotFound
from ..extensions import db
from ..models import ActivityDay, ActivityEvent, Photo
from .events import KINDS, VISIT

EVENTS_PER_PAGE = 50
CHART_DAYS, MAX_CHART_DAYS = 30, 366


class BadFilter(AppError):
    status, error = 400, "bad_filter"


@dataclass(frozen=True)
class Scope:
    """Which activity: an album's, or one of its links'; optionally one kind and a range of UTC days."""

    album_id: int
    share_id: int | None = None
    kind: str | None = None
    first_day: date | None = None
    last_day: date | None = None

    def event_filter(self) -> list[object]:
        conditions: list[object] = [ActivityEvent.album_id == self.album_id]
        if self.share_id is not None:
            conditions.append(ActivityEvent.share_id == self.share_id)
        if self.kind:
            conditions.append(ActivityEvent.kind == self.kind)
        if self.first_day:
            conditions.append(ActivityEvent.at >= datetime.combine(self.first_day, time.min))
        if self.last_day:
            conditions.append(ActivityEvent.at < datetime.combine(self.last_day + timedelta(days=1), time.min))
        return conditions

    def day_filter(self) -> list[object] | None:
        """Conditions on the folded days, or None when the scope cannot include them (a kind filter)."""
        if self.kind:
            return None
        conditions: list[object] = [ActivityDay.album_id == self.album_id]
        if self.share_id is not None:
            conditions.append(ActivityDay.share_id == self.share_id)
        if self.first_day:
            conditions.append(ActivityDay.day >= self.first_day)
        if self.last_day:
            conditions.append(ActivityDay.day <= self.last_day)
        return conditions


def scope_from_query(album_id: int, link_ids: set[int], query: Mapping[str, str]) -> Scope:
    """The scope a filter form asks for (`link`, `kind`, `from`, `to`, all optional); BadFilter (400) for a
    value that is not one, NotFound for a link of another album (as for a link that does not exist)."""
    share_id = None
    if query.get("link"):
        if not query["link"].isdigit() or int(query["link"]) not in link_ids:
            raise NotFound(_("There is no such share link for this album."))
        share_id = int(query["link"])
    kind = query.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise BadFilter(_("Choose a kind of activity from the list."))
    first, last = _day(query.get("from")), _day(query.get("to"))
    if first and last and first > last:
        raise BadFilter(_("The first day of the range comes after its last day."))
    return Scope(album_id, share_id, kind, first, last)


def chart_window(scope: Scope, today: date) -> tuple[date, date]:
    """The days the chart shows: the filter's range, else the last 30 days; at most a year (its last one)."""
    last = scope.last_day or today
    first = scope.first_day or last - timedelta(days=CHART_DAYS - 1)
    return max(first, last - timedelta(days=MAX_CHART_DAYS - 1)), last


def _day(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadFilter(_("Enter dates as YYYY-MM-DD.")) from None


@dataclass(frozen=True)
class Totals:
    visits: int
    visitors: int
    downloads: int
    bytes: int


@dataclass(frozen=True)
class TopPhoto:
    photo_id: int
    filename: str | None  # None once the photo was deleted
    downloads: int


@dataclass(frozen=True)
class EventPage:
    events: list[ActivityEvent]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


_IS_DOWNLOAD = (ActivityEvent.kind != VISIT) & ActivityEvent.finished


def totals(scope: Scope) -> Totals:
    """Visits, distinct visitors, finished downloads and bytes sent; a resumed or split download is one."""
    visits, visitors, downloads, sent = db.session.execute(
        db.select(
            func.coalesce(func.sum(case((ActivityEvent.kind == VISIT, 1), else_=0)), 0),
            func.count(func.distinct(ActivityEvent.visitor)),
            func.coalesce(func.sum(case((_IS_DOWNLOAD, 1), else_=0)), 0),
            func.coalesce(func.sum(ActivityEvent.bytes), 0),
        ).where(*scope.event_filter())
    ).one()
    folded = scope.day_filter()
    if folded is not None:
        days = db.session.execute(
            db.select(
                func.coalesce(func.sum(ActivityDay.visits), 0), func.coalesce(func.sum(ActivityDay.visitors), 0),
                func.coalesce(func.sum(ActivityDay.downloads), 0), func.coalesce(func.sum(ActivityDay.bytes), 0),
            ).where(*folded)
        ).one()
        visits, visitors, downloads, sent = (a + b for a, b in zip((visits, visitors, downloads, sent), days, strict=True))
    return Totals(int(visits), int(visitors), int(downloads), int(sent))


def downloads_per_day(scope: Scope, first_day: date, last_day: date) -> list[tuple[date, int]]:
    """Finished downloads of each UTC day from `first_day` to `last_day`, days without any included (0)."""
    window = Scope(scope.album_id, scope.share_id, scope.kind, first_day, last_day)
    counts: dict[date, int] = {}
    day = func.date(ActivityEvent.at)
    for on, count in db.session.execute(
        db.select(day, func.count()).where(*window.event_filter(), _IS_DOWNLOAD).group_by(day)
    ):
        counts[_as_date(on)] = counts.get(_as_date(on), 0) + int(count)
    folded = window.day_filter()
    if folded is not None:
        for on, count in db.session.execute(
            db.select(ActivityDay.day, func.sum(ActivityDay.downloads)).where(*folded).group_by(ActivityDay.day)
        ):
            counts[on] = counts.get(on, 0) + int(count or 0)
    span = (last_day - first_day).days + 1
    return [(first_day + timedelta(days=i), counts.get(first_day + timedelta(days=i), 0)) for i in range(span)]


def top_photos(scope: Scope, limit: int = 10) -> list[TopPhoto]:
    """The photos downloaded (finished) most often, most first; live events only."""
    count = func.count().label("downloads")
    rows = db.session.execute(
        db.select(ActivityEvent.photo_id, Photo.original_filename, count)
        .outerjoin(Photo, Photo.id == ActivityEvent.photo_id)
        .where(*scope.event_filter(), _IS_DOWNLOAD, ActivityEvent.photo_id.is_not(None))
        .group_by(ActivityEvent.photo_id, Photo.original_filename)
        .order_by(count.desc(), ActivityEvent.photo_id)
        .limit(limit)
    ).all()
    return [TopPhoto(int(photo_id), name, int(downloads)) for photo_id, name, downloads in rows]


def event_page(scope: Scope, number: int, per_page: int = EVENTS_PER_PAGE) -> EventPage:
    """Page `number` (1-based, clamped) of the scope's events, newest first."""
    total = db.session.execute(db.select(func.count()).select_from(ActivityEvent).where(*scope.event_filter())).scalar_one()
    pages = max(1, math.ceil(total / per_page))
    number = min(max(1, number), pages)
    events = db.session.execute(
        db.select(ActivityEvent).where(*scope.event_filter())
        .order_by(ActivityEvent.at.desc(), ActivityEvent.id.desc()).limit(per_page).offset((number - 1) * per_page)
    ).scalars().all()
    return EventPage(list(events), number, per_page, int(total))


def iter_events(scope: Scope) -> Iterator[ActivityEvent]:
    """Every event of the scope, oldest first, read in chunks (a CSV export of any size)."""
    yield from db.session.execute(
        db.select(ActivityEvent).where(*scope.event_filter()).order_by(ActivityEvent.at, ActivityEvent.id)
        .execution_options(yield_per=500)
    ).scalars()


def event_json(event: ActivityEvent) -> dict[str, object]:
    """The fields `share-activity --json` prints per event."""
    return {"at": event.at.isoformat() + "Z", "kind": event.kind, "photo_id": event.photo_id, "part": event.part,
            "size": event.size, "bytes": event.bytes, "finished": event.finished}


CSV_COLUMNS = ("at", "link", "kind", "photo_id", "part", "size", "bytes", "finished", "browser", "os", "network",
               "email", "visitor")


def csv_row(event: ActivityEvent) -> list[object]:
    """One CSV line; text a visitor chose (the e-mail) or sent (User-Agent families) can never start a formula."""
    return [event.at.isoformat() + "Z", event.share_id, event.kind, event.photo_id or "", event.part or "",
            event.size or "", event.bytes, "yes" if event.finished else "no", _cell(event.browser),
            _cell(event.os), event.network or "", _cell(event.email), event.visitor or ""]


def _cell(text: str | None) -> str:
    """Spreadsheets run a cell starting with = + - @ (or a tab / carriage return) as a formula: quote it."""
    if not text:
        return ""
    return "'" + text if text[0] in "=+-@\t\r" else text


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
