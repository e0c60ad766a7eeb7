"""What the owner pages do, without Flask's request: ownership checks, listings, uploads, link expiry.

Every lookup takes the owner's id, so another owner's album, photo or link is indistinguishable from one
that does not exist (404 either way).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import BinaryIO

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from .. import albums
from ..errors import NotFound
from ..extensions import db
from ..images import InvalidImage
from ..models import Album, Photo, ShareLink, utcnow
from ..names import photo_name

MAX_EXPIRY = timedelta(days=3650)  # far enough for anyone; keeps date arithmetic clear of overflow
EXPIRY_UNITS = {"hours": timedelta(hours=1), "days": timedelta(days=1)}


class AlbumNotFound(NotFound):
    message = _l("There is no such album in your account.")


@dataclass(frozen=True)
class AlbumSummary:
    album: Album
    photo_count: int
    total_bytes: int
    cover_photo_id: int | None


@dataclass(frozen=True)
class UploadResult:
    """The outcome for one uploaded file; `error` is a sentence for the uploader."""

    name: str
    ok: bool
    error: str | None = None
    photo_id: int | None = None

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "ok": self.ok}
        if self.error is not None:
            data["error"] = self.error
        if self.photo_id is not None:
            data["photo_id"] = self.photo_id
        return data


def owned_album(owner_id: int, album_id: int) -> Album:
    album = db.session.execute(
        select(Album).where(Album.id == album_id, Album.owner_id == owner_id)
    ).scalar_one_or_none()
    if album is None:
        raise AlbumNotFound()
    return album


def owned_photo(owner_id: int, album_id: int, photo_id: int) -> Photo:
    album = owned_album(owner_id, album_id)
    photo = db.session.get(Photo, photo_id)
    if photo is None or photo.album_id != album.id:
        raise NotFound(_("There is no such photo in this album."))
    return photo


def owned_share(owner_id: int, album_id: int, share_id: int) -> ShareLink:
    album = owned_album(owner_id, album_id)
    link = db.session.get(ShareLink, share_id)
    if link is None or link.album_id != album.id:
        raise NotFound(_("There is no such share link for this album."))
    return link


def album_summaries(owner_id: int) -> list[AlbumSummary]:
    """The owner's albums, newest change first, with counts and a cover, in one query (no photo rows loaded)."""
    stats = (
        select(
            Photo.album_id,
            func.count(Photo.id).label("photo_count"),
            func.coalesce(func.sum(Photo.size), 0).label("total_bytes"),
        )
        .group_by(Photo.album_id)
        .subquery()
    )
    cover = (
        select(Photo.id)
        .where(Photo.album_id == Album.id)
        .order_by(Photo.position, Photo.id)
        .limit(1)
        .correlate(Album)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Album, stats.c.photo_count, stats.c.total_bytes, cover)
        .outerjoin(stats, stats.c.album_id == Album.id)
        .where(Album.owner_id == owner_id)
        .order_by(Album.updated_at.desc(), Album.id.desc())
    ).all()
    return [AlbumSummary(album, count or 0, int(size or 0), cover_id) for album, count, size, cover_id in rows]


def album_stats(album: Album) -> tuple[int, int]:
    """(photo count, total bytes), counted by the database rather than by loading every photo."""
    count, size = db.session.execute(
        select(func.count(Photo.id), func.coalesce(func.sum(Photo.size), 0)).where(Photo.album_id == album.id)
    ).one()
    return int(count), int(size)


def photo_page(album: Album, page: int, per_page: int) -> list[Photo]:
    return list(
        db.session.execute(
            select(Photo)
            .where(Photo.album_id == album.id)
            .order_by(Photo.position, Photo.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).scalars()
    )


def save_uploads(album: Album, files: Iterable[tuple[str, BinaryIO]]) -> list[UploadResult]:
    """Add each file to the album on its own: a bad file gets its own error and never stops the others.

    Each good photo is committed as soon as it is stored, so it survives a failure later in the batch. Each
    result names the file as the album would (names.photo_name): no bidi trick reaches a message either.
    """
    results = []
    for name, source in files:
        try:
            photo = albums.add_photo(album, name, source)
        except InvalidImage as exc:
            results.append(UploadResult(name=photo_name(name), ok=False, error=_sentence(str(exc))))
            continue
        results.append(UploadResult(name=photo.original_filename, ok=True, photo_id=photo.id))
    return results


def expiry_from_form(
    amount: int | None, unit: str, last_day: date | None, tz_offset_minutes: int = 0, now: datetime | None = None
) -> datetime | None:
    """When a new link stops working (naive UTC), from "in N hours/days" or "through this date".

    A date means the whole of that day in the owner's time zone (`tz_offset_minutes` as JavaScript's
    getTimezoneOffset gives it; 0 means UTC). Raises ValueError with a message for the form.
    """
    now = now or utcnow()
    if amount is not None and last_day is not None:
        raise ValueError(_("Choose either a number of hours or days, or a last day, not both."))
    if amount is not None:
        if amount < 1:
            raise ValueError(_("The link must stay open for at least 1 hour or day."))
        if unit not in EXPIRY_UNITS:
            raise ValueError(_("Choose hours or days."))
        if amount > MAX_EXPIRY // EXPIRY_UNITS[unit]:  # compared as counts: timedelta * 10^30 overflows (a 500)
            raise ValueError(_("A link can stay open for at most 10 years."))
        return now + EXPIRY_UNITS[unit] * amount
    if last_day is None:
        return None
    if last_day > (now + MAX_EXPIRY).date():  # before any arithmetic: 9999-12-31 plus a day overflows (a 500)
        raise ValueError(_("A link can stay open for at most 10 years."))
    if abs(tz_offset_minutes) > 16 * 60:
        tz_offset_minutes = 0
    expires_at = datetime.combine(last_day + timedelta(days=1), datetime.min.time()) + timedelta(
        minutes=tz_offset_minutes
    )
    if expires_at <= now:
        raise ValueError(_("The last day is in the past."))
    if expires_at - now > MAX_EXPIRY:
        raise ValueError(_("A link can stay open for at most 10 years."))
    return expires_at


def _sentence(message: str) -> str:
    message = message.strip() or _("this file could not be added")
    return message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")
