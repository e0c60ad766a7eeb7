"""Archive plans: which of an album's photos one download holds — the whole album, a visitor's selection, or
one part of either — as a subset of the album's own archive entries.

Every plan starts from `albums.archive_plan(album)` (one way to turn photos into entries, whatever options
that grows) and keeps a subset of it in album order, so an entry's name is the one it has in "Download all"
(parts unpacked into one folder never collide). A plan's `version` is `archive_digest` of its entries: it names
the bytes, so it keys the ETag, the temp archive, the ZIP cache and the prepare job exactly as an album
version does, and the delivery seam needs nothing else.

A selection's id is a digest of the album id, the album version and the set of photo ids (order and repeats
of the request do not matter); its photo ids are kept in the `selections` table. Once the album changes, the
selection answers 410: its photos may be gone. Parts split a plan larger than ARCHIVE_PART_MB: photos in
order, never split, each part a plain ZIP (no ZIP64) unless one photo alone is too big for that.
No `request` here.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func

from . import plan_files
from .albums import ORIGINAL_VARIANT, archive_plan_ids, keep_plan, plan_file
from .archive import ArchiveEntry, archive_digest, cached_layout, remember_layout
from .errors import AppError, NotFound
from .extensions import db
from .models import Album, Photo, Selection
from .sizes import LARGE, Variant
from .zip_layout import ZIP64_LIMIT, ZIP_FILECOUNT_LIMIT

SELECTION_ID = re.compile(r"^[0-9a-f]{32}$")
REF = re.compile(r"^(?:s([0-9a-f]{32}))?(?:p([1-9][0-9]{0,5}))?$")
# A plain ZIP's fixed bytes per entry beside its name (twice): local header 30, central record 46; and the end.
ENTRY_OVERHEAD, END_RECORD = 30 + 46, 22
# Album plans kept per process, keyed by the album's version and update time and the variant: a download
# manager's 8 ranges, resumes and the parts' listing plan a 5,000-photo album once, not each time.
PLANS_KEPT = 32
_PLANS: OrderedDict[str, _Known] = OrderedDict()
_PLANS_LOCK = threading.Lock()


class BadSelection(AppError):
    status, error = 400, "bad_selection"
    message = _l("Choose at least one photo of this album.")


class SelectionNotFound(NotFound):
    error = "selection_not_found"
    message = _l("There is no such selection for this album. Please select the photos again.")


class SelectionOutdated(AppError):
    status, error = 410, "selection_outdated"
    message = _l("The album has changed since these photos were selected. Please select them again.")


class PartNotFound(NotFound):
    error = "part_not_found"
    message = _l("This album has no such part. Reload the album to see its parts.")


@dataclass(frozen=True)
class ArchivePlan:
    """One download's entries and what names them: `ref` ("" the album, `s<id>` a selection, `p<n>` a part,
    `s<id>p<n>`) is what a prepare job and a signed link keep to find the plan again."""

    album: Album
    entries: tuple[ArchiveEntry, ...]
    selection_id: str | None = None
    part: int | None = None
    parts: int | None = None
    # Which file of each photo it holds (sizes.py): its own entries, so its own version, ETag and cache file.
    # `ref` does not name it: a job row keeps it in `variant`, a signed link in Grant.variant.
    variant: Variant = ORIGINAL_VARIANT
    known_version: str | None = field(default=None, compare=False, repr=False)  # archive_digest(entries), if known

    @cached_property
    def version(self) -> str:
        return self.known_version or archive_digest(self.entries)

    @property
    def ref(self) -> str:
        return (f"s{self.selection_id}" if self.selection_id else "") + (f"p{self.part}" if self.part else "")

    @property
    def album_id(self) -> int:
        return self.album.id

    @property
    def last_modified(self) -> datetime:
        return self.album.updated_at

    @property
    def photo_count(self) -> int:
        return len(self.entries)

    @property
    def photo_bytes(self) -> int:
        return sum(entry.size for entry in self.entries)

    @property
    def size(self) -> int:
        """The archive's exact size (its Content-Length)."""
        return cached_layout(self.version, self.entries).total


@dataclass(frozen=True)
class _Known:
    """An album's plan in one variant as this process last made it."""

    photo_ids: tuple[int, ...]
    entries: tuple[ArchiveEntry, ...]
    version: str


def album_plan(album: Album, variant: Variant = ORIGINAL_VARIANT) -> ArchivePlan:
    """The whole album in `variant` (the photos' large or location-free files are made first where missing)."""
    known = _known(album, variant)
    return ArchivePlan(album, known.entries, variant=variant, known_version=known.version)


def _known(album: Album, variant: Variant) -> _Known:
    """The album's entries in `variant`, planned once per album version: kept in this process (bounded) and on
    disk for the others (plan_files.py, with the layout). The key holds the update time too, which every change
    of the album's photos sets (albums.refresh_version)."""
    files = _variant_files(album, variant)
    key = plan_file(album, variant, files)
    with _PLANS_LOCK:  # gthread: requests of one worker share this
        known = _PLANS.get(key)
        if known is not None:
            _PLANS.move_to_end(key)
            return known
    kept = plan_files.load(Path(current_app.config["PLAN_DIR"]), key)
    if kept is not None:
        remember_layout(kept.version, kept.layout)
        known = _Known(kept.photo_ids, kept.entries, kept.version)
    else:
        ids, entries = archive_plan_ids(album, variant)
        known = _Known(tuple(ids), tuple(entries), archive_digest(entries))
        if variant != ORIGINAL_VARIANT:  # planning made older photos' files: kept under what they are now
            files = _variant_files(album, variant)
            key = plan_file(album, variant, files)
        keep_plan(album, variant, files, known.photo_ids, known.entries, known.version)
    with _PLANS_LOCK:
        _PLANS[key] = known
        while len(_PLANS) > PLANS_KEPT:
            _PLANS.popitem(last=False)
    return known


def _variant_files(album: Album, variant: Variant) -> tuple[int, ...]:
    """A fingerprint of the files a variant takes beyond the originals (web-size JPEGs, location-free copies):
    an older photo gets them on its first such download without the album's version changing, so a plan kept
    from before must not be used after. One aggregate query; nothing for the originals."""
    if variant == ORIGINAL_VARIANT:
        return ()
    if variant.size == LARGE:
        measured = [Photo.large_size, Photo.large_crc32]
    else:
        measured = [Photo.clean_size, Photo.clean_crc32]
    located = func.sum(case((Photo.has_location.is_(True), 1), else_=0))
    row = db.session.execute(
        db.select(func.count(Photo.has_location), located,
                  *(func.count(column) for column in measured),
                  *(func.coalesce(func.sum(column), 0) for column in measured))
        .where(Photo.album_id == album.id)
    ).one()
    return tuple(int(value or 0) for value in row)


def part_limit() -> int:
    """Bytes a part may hold: ARCHIVE_PART_MB, never so many that the ZIP would need ZIP64 records."""
    return min(int(float(current_app.config["ARCHIVE_PART_MB"]) * 1024 * 1024), ZIP64_LIMIT)


def split(plan: ArchivePlan, limit: int | None = None) -> list[ArchivePlan]:
    """The plan's parts in order: as many photos as fit in `limit` bytes of plain ZIP (headers, central
    directory and end record counted exactly) and 65,535 entries; a photo never split, one too big alone gets
    a part of its own. A plan that fits is one part."""
    limit = part_limit() if limit is None else limit
    groups: list[list[ArchiveEntry]] = []
    current: list[ArchiveEntry] = []
    total = END_RECORD
    for entry in plan.entries:
        cost = ENTRY_OVERHEAD + 2 * len(entry.name.encode()) + entry.size
        giant = entry.size * 1.05 > ZIP64_LIMIT  # zipfile's rule: this entry carries ZIP64 fields anyway
        if current and (giant or total + cost > limit or len(current) >= ZIP_FILECOUNT_LIMIT):
            groups.append(current)
            current, total = [], END_RECORD
        current.append(entry)
        total += cost
        if giant:
            groups.append(current)
            current, total = [], END_RECORD
    if current:
        groups.append(current)
    if len(groups) == 1:  # the plan itself, its version known
        return [ArchivePlan(plan.album, plan.entries, plan.selection_id, 1, 1, plan.variant, plan.version)]
    return [ArchivePlan(plan.album, tuple(group), plan.selection_id, number, len(groups), plan.variant)
            for number, group in enumerate(groups, start=1)]


def parts_of(plan: ArchivePlan) -> list[ArchivePlan]:
    """The parts offered beside the whole archive: none when it fits in one, or when ARCHIVE_PART_MB is 0."""
    if float(current_app.config["ARCHIVE_PART_MB"]) <= 0:
        return []
    parts = split(plan)
    return parts if len(parts) > 1 else []


def part_of(plan: ArchivePlan, number: int) -> ArchivePlan:
    """Part `number` (from 1) of the plan; PartNotFound (404) when there is no such part."""
    parts = parts_of(plan)
    if not 1 <= number <= len(parts):
        raise PartNotFound()
    return parts[number - 1]


def selection_id(album: Album, photo_ids: Sequence[int]) -> str:
    """The same set of photos of the same album version, the same id: order and repeats do not count."""
    key = f"{album.id}:{album.version}:{','.join(str(i) for i in sorted(set(photo_ids)))}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def make_selection(
    album: Album, photo_ids: object, variant: Variant = ORIGINAL_VARIANT
) -> tuple[ArchivePlan, bool]:
    """The selection of these photos (stored when new): (its plan, whether it was created now).

    BadSelection (400) for anything but a non-empty list of distinct ids of this album's photos, before anything
    is stored or built."""
    ids = _checked_ids(album, photo_ids)
    key = selection_id(album, ids)
    row = db.session.get(Selection, key)
    created = row is None
    if created:
        ordered = [photo.id for photo in album.photos if photo.id in ids]
        db.session.add(Selection(id=key, album_id=album.id, album_version=album.version,
                                 photo_ids=",".join(map(str, ordered)), photo_count=len(ordered)))
        db.session.commit()
    return _selection_plan(album, set(ids), key, variant), created


def selection_plan(album: Album, key: str, variant: Variant = ORIGINAL_VARIANT) -> ArchivePlan:
    """The stored selection `key` of this album: SelectionNotFound (404), SelectionOutdated (410) once the album
    changed."""
    row = db.session.get(Selection, key) if SELECTION_ID.match(key or "") else None
    if row is None or row.album_id != album.id:
        raise SelectionNotFound()
    if row.album_version != album.version:
        raise SelectionOutdated()
    return _selection_plan(album, {int(i) for i in row.photo_ids.split(",")}, key, variant)


def resolve(album: Album, ref: str, variant: Variant = ORIGINAL_VARIANT) -> ArchivePlan:
    """The plan a job or a signed link names by its `ref` and `variant`; the errors of `selection_plan` and
    `part_of`."""
    match = REF.match(ref or "")
    if match is None:
        raise PartNotFound()
    key, part = match.groups()
    plan = selection_plan(album, key, variant) if key else album_plan(album, variant)
    return part_of(plan, int(part)) if part else plan


def live_versions(album: Album, variants: Iterable[Variant] = (ORIGINAL_VARIANT,)) -> set[str]:
    """The version of every plan that can be asked for now (the album, its parts, its current selections and
    theirs, in each of `variants`): what the ZIP cache and the jobs keep when the album changes or the sweeper
    passes."""
    return {plan.version for variant in set(variants) for plan in _current_plans(album, variant)}


def _current_plans(album: Album, variant: Variant) -> Iterator[ArchivePlan]:
    whole = album_plan(album, variant)
    rows = db.session.execute(
        db.select(Selection).where(Selection.album_id == album.id, Selection.album_version == album.version)
    ).scalars()
    ids = [({int(i) for i in r.photo_ids.split(",")}, r.id) for r in rows]
    for plan in [whole, *(_selection_plan(album, chosen, key, variant) for chosen, key in ids)]:
        yield plan
        yield from parts_of(plan)


def _selection_plan(album: Album, ids: set[int], key: str, variant: Variant = ORIGINAL_VARIANT) -> ArchivePlan:
    """The selected photos' entries as they are in the album's archive in `variant` (so their names are the
    ones "Download all" in that size gives them: `IMG_1.png` is `IMG_1.jpg` at web size)."""
    known = _known(album, variant)
    chosen = tuple(entry for photo_id, entry in zip(known.photo_ids, known.entries, strict=True) if photo_id in ids)
    return ArchivePlan(album, chosen, selection_id=key, variant=variant)


def _checked_ids(album: Album, photo_ids: object) -> list[int]:
    if not isinstance(photo_ids, list) or not photo_ids:
        raise BadSelection(_l("Send the photos as a non-empty list: {\"photo_ids\": [1, 2, 3]}."))
    if len(photo_ids) > len(album.photos):
        raise BadSelection(_l("That is more photos than this album holds."))
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in photo_ids):
        raise BadSelection(_l("Photo ids are whole numbers."))
    if len(set(photo_ids)) != len(photo_ids):
        raise BadSelection(_l("A photo appears more than once in the selection."))
    unknown = set(photo_ids) - {photo.id for photo in album.photos}
    if unknown:
        raise BadSelection(_l("Some of these photos are not in this album. Reload it and select again."))
    return list(photo_ids)
