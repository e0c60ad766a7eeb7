"""What a gallery page shows: an album's totals and one page of its photos.

Read with SQL aggregates and LIMIT/OFFSET, never by loading the whole album: a 5,000-photo album costs the
same per page as a 5-photo one. No Flask request here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select

from ..errors import NotFound
from ..extensions import db
from ..models import Photo, ShareLink

# Tiles keep their photo's shape within these bounds; panoramas and tall strips are cropped to them.
MIN_TILE_RATIO, MAX_TILE_RATIO = 0.5, 2.5


@dataclass(frozen=True)
class AlbumTotals:
    photo_count: int
    total_bytes: int
    large_bytes: int = 0  # of the web-size JPEGs made so far (an older photo's is made on its first download)


@dataclass(frozen=True)
class SizeChoice:
    """One size a download is offered in (the gallery's `size_choice` macro): its URL and its bytes."""

    size: str
    url: str
    nbytes: int


@dataclass(frozen=True)
class PhotoPage:
    photos: list[Photo]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def offset(self) -> int:
        """How many photos come before this page: tile numbers continue from here."""
        return (self.number - 1) * self.per_page

    @property
    def shown_until(self) -> int:
        return min(self.total, self.offset + len(self.photos))


# Built once (each gallery page runs it): building a statement and its cache key costs more than running it.
_TOTALS = select(
    func.count(Photo.id), func.coalesce(func.sum(Photo.size), 0), func.coalesce(func.sum(Photo.large_size), 0)
).where(Photo.album_id == bindparam("album_id"))


def album_totals(album_id: int) -> AlbumTotals:
    count, total, large = db.session.execute(_TOTALS, {"album_id": album_id}).one()
    return AlbumTotals(int(count), int(total), int(large))


def photo_page(album_id: int, number: int, per_page: int, total: int) -> PhotoPage:
    """Photos `number` (1-based) of the album in album order; NotFound past the last page."""
    per_page = max(1, per_page)
    pages = max(1, math.ceil(total / per_page))
    if number < 1 or number > pages:
        raise NotFound(f"This album has no page {number}; it has {pages}.")
    photos = db.session.execute(
        db.select(Photo)
        .where(Photo.album_id == album_id)
        .order_by(Photo.position, Photo.id)
        .limit(per_page)
        .offset((number - 1) * per_page)
    ).scalars().all()
    return PhotoPage(list(photos), number, per_page, total)


def share_photo(link: ShareLink, photo_id: int) -> Photo:
    """The photo, only when it belongs to the link's album: a token never opens another album's photos."""
    photo = db.session.get(Photo, photo_id)
    if photo is None or photo.album_id != link.album_id:
        raise NotFound(_("This photo is not in the shared album."))
    return photo


def rendition_box(photo: Photo, long_side: int) -> tuple[int, int]:
    """Width and height of the photo scaled down (never up) to `long_side`: what a thumbnail or view measures."""
    width, height = max(1, photo.width), max(1, photo.height)
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def tile_ratio(photo: Photo) -> float:
    """The tile's width / height in hundredths: each value has its class in static/css/tile-ratios.css."""
    ratio = max(1, photo.width) / max(1, photo.height)
    return round(min(MAX_TILE_RATIO, max(MIN_TILE_RATIO, ratio)), 2)


def tile_ratio_class(photo: Photo) -> str:
    """`tile-r133` for a 4:3 tile: the shape comes from a stylesheet class, because the Content-Security-Policy
    (style-src 'self') refuses `style="--r: …"` attributes. Hundredths crop at most 1% of a photo."""
    return f"tile-r{round(tile_ratio(photo) * 100)}"


