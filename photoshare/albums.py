"""Changes to albums and photos, in one place, so that every change keeps the album's version true.

Used by the owner pages and the CLI alike; never touches `request`.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from blinker import Namespace
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect as sa_inspect

from . import plan_files
from .archive import ArchiveEntry, archive_digest, cached_layout, plan_archive
from .decoding import decode_budget
from .errors import NotFound
from .extensions import db
from .images import EXTENSIONS, InvalidImage, Rendition, render
from .models import ActivityDay, ActivityEvent, Album, Photo, User, utcnow
from .names import album_title, photo_name
from .renditions import Limits, Target, make_missing, one_maker
from .sizes import (
    LARGE,
    SPOOL_BYTES,
    Variant,
    clean_key,
    digest,
    is_ready,
    large_key,
    make_clean,
    record_large,
    source_of,
)
from .storage import Storage, get_storage

_signals = Namespace()
# Sent after a change to an album's archive is committed, with album_id= and old_version=: caches listen.
album_changed = _signals.signal("album-changed")
EMPTY_VERSION = "empty"
ORIGINAL_VARIANT = Variant()
HASH_CHUNK = 1024 * 1024
RENDITION_WAIT_SECONDS = 60  # a visitor waits this long for another request's making of a missing view


class UploadTooLarge(InvalidImage):
    pass


class EmptyAlbum(NotFound):
    """Nothing to put in an archive: "Download all" and prepare-download both answer this 404."""

    error, message = "empty_album", _l("This album has no photos to download yet.")


def create_album(owner: User, title: str) -> Album:
    album = Album(owner=owner, title=_clean_title(title))
    db.session.add(album)
    db.session.commit()
    return album


def rename_album(album: Album, title: str) -> None:
    album.title = _clean_title(title)
    album.updated_at = utcnow()
    db.session.commit()


def delete_album(album: Album) -> None:
    """Remove the album, its photos' files and thumbnails, and (through the signal) its cached archives."""
    album_id, old_version = album.id, album.version
    keys = [key for photo in album.photos for key in photo_keys(photo)]
    db.session.delete(album)
    for table in (ActivityEvent, ActivityDay):  # visitors' activity goes with the album it was about
        db.session.execute(db.delete(table).where(table.album_id == album_id))
    db.session.commit()
    _delete_keys(keys)
    plan_files.forget_album(Path(current_app.config["PLAN_DIR"]), album_id)
    album_changed.send(current_app._get_current_object(), album_id=album_id, old_version=old_version)


def add_photo(album: Album, filename: str, source: BinaryIO, *, commit: bool = True) -> Photo:
    """Check that `source` is a real image, store it under an app-made name with its large view and thumbnail
    (made from one decode, in the process's decode budget), and add it to the album.

    Raises InvalidImage (with a message for the uploader) and stores nothing when the file is not a readable
    image or is over the size or pixel limit. Reads the file in chunks; never holds it whole in memory.
    """
    size, sha256, crc32 = _digest(source)
    limit = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    if size > limit:
        raise UploadTooLarge(_("larger than the %(num)d MB limit", num=current_app.config["MAX_UPLOAD_MB"]))
    if size == 0:
        raise InvalidImage(_("the file is empty"))
    source.seek(0)
    limits = rendition_limits()
    info, (view, thumbnail, large) = render(source, _renditions(), max_pixels=limits.max_pixels,
                                            budget=limits.budget)
    photo = Photo(
        position=_next_position(album),
        original_filename=photo_name(filename, fallback="photo" + EXTENSIONS[info.content_type]),
        stored_name=uuid.uuid4().hex + EXTENSIONS[info.content_type],
        rendition_name=secrets.token_hex(16),
        size=size,
        sha256=sha256,
        crc32=crc32,
        content_type=info.content_type,
        width=info.width,
        height=info.height,
        taken_at=info.taken_at,
        uploaded_at=utcnow().replace(microsecond=0),
    )
    record_large(photo, digest(io.BytesIO(large)))
    storage = get_storage()
    try:
        source.seek(0)
        storage.save(photo_key(photo), source)
        storage.save(view_key(photo), io.BytesIO(view))
        storage.save(thumbnail_key(photo), io.BytesIO(thumbnail))
        storage.save(large_key(photo), io.BytesIO(large))
        make_clean(storage, photo, source, current_app.config["TEMP_DIR"])
        album.photos.append(photo)
        if commit:
            refresh_version(album)
    except BaseException:
        if photo in album.photos:
            db.session.rollback()
        _delete_keys(photo_keys(photo))
        raise
    return photo


def rename_photo(photo: Photo, filename: str) -> None:
    """Name the photo `filename` as given (see names.photo_name); a name with nothing left keeps the old one."""
    photo.original_filename = photo_name(filename, fallback=photo.original_filename)
    refresh_version(photo.album)


def delete_photo(photo: Photo) -> None:
    album = photo.album
    keys = photo_keys(photo)
    album.photos.remove(photo)
    db.session.delete(photo)
    refresh_version(album)
    _delete_keys(keys)


def refresh_version(album: Album) -> None:
    """Recompute the album's version from its archive plan, commit, keep the plan and its layout for every
    process (plan_files.py: a first "Download all" then plans nothing), and tell caches when it changed."""
    old_version = album.version
    db.session.flush()  # photos added with commit=False get their ids, which the kept plan holds
    ids, entries = archive_plan_ids(album)
    album.version = archive_digest(entries) if entries else EMPTY_VERSION
    album.updated_at = utcnow()
    db.session.commit()
    keep_plan(album, ORIGINAL_VARIANT, (), ids, entries, album.version)
    if album.version != old_version:
        album_changed.send(current_app._get_current_object(), album_id=album.id, old_version=old_version)


def plan_file(album: Album, variant: Variant, files: tuple[int, ...]) -> str:
    """The name its kept plan has (plan_files.py): what keys a plan in each process's memory too. `files` is
    plans._variant_files: () for the originals."""
    return plan_files.file_name(album.id, variant, (album.version, album.updated_at, files))


def keep_plan(album: Album, variant: Variant, files: tuple[int, ...], ids: list[int] | tuple[int, ...],
              entries: list[ArchiveEntry] | tuple[ArchiveEntry, ...], version: str) -> None:
    """Write the plan and its layout (computed here if this process has not) for every other process; nothing
    for an empty plan, or one with an entry whose CRC-32 is not known yet (the layout needs every one)."""
    if not entries or any(entry.crc32 is None for entry in entries):
        return
    kept = plan_files.KeptPlan(tuple(ids), tuple(entries), version, cached_layout(version, entries))
    plan_files.save(Path(current_app.config["PLAN_DIR"]), plan_file(album, variant, files), kept)


def archive_plan(album: Album, variant: Variant = ORIGINAL_VARIANT) -> list[ArchiveEntry]:
    """The entries of the album's "Download all" archive in `variant` (size, location removed), in album
    order; the photos' large or location-free files are made first where an older photo lacks them."""
    return plan_archive(_plan_rows(album, variant)[1])


def archive_plan_ids(album: Album, variant: Variant = ORIGINAL_VARIANT) -> tuple[list[int], list[ArchiveEntry]]:
    """`archive_plan` and the id of each entry's photo, in the same order."""
    ids, rows = _plan_rows(album, variant)
    return ids, plan_archive(rows)


def _plan_rows(album: Album, variant: Variant) -> tuple[list[int], list[tuple]]:
    """(photo ids, plan_archive's rows). The originals of an album whose photos are not loaded come from one
    column-only query: no ORM object for each of 5,000 photos before a download's first byte."""
    if variant == ORIGINAL_VARIANT and "photos" in sa_inspect(album).unloaded:
        rows = db.session.execute(
            db.select(Photo.id, Photo.original_filename, Photo.stored_name, Photo.size, Photo.sha256,
                      Photo.taken_at, Photo.uploaded_at, Photo.crc32)
            .where(Photo.album_id == album.id).order_by(Photo.position, Photo.id)
        ).all()
        return [r.id for r in rows], [(r.original_filename, original_key(r.stored_name), r.size, r.sha256,
                                       r.taken_at or r.uploaded_at, r.crc32) for r in rows]
    photos = ready(album.photos, variant)
    sources = [(p, source_of(p, variant, photo_key(p))) for p in photos]
    return [p.id for p in photos], [(s.filename, s.key, s.size, s.sha256, p.archive_time, s.crc32)
                                    for p, s in sources]


def variant_version(album: Album, variant: Variant) -> str:
    """The version (archive digest) of the album's archive in `variant`: the album's own when that archive
    is the very same bytes (originals, or no photo with a location to remove)."""
    if variant == ORIGINAL_VARIANT or album.version == EMPTY_VERSION:
        return album.version
    return archive_digest(archive_plan(album, variant))


def ready(photos: list[Photo], variant: Variant) -> list[Photo]:
    """`photos`, each with its file in `variant` made and recorded (older photos: once, under the per-photo
    lock, so parallel requests wait for one maker). Raises what `ensure_renditions` raises.

    Each made file is committed at once (a worker waiting for that photo's lock then finds it), but the commits
    leave the other loaded photos as they are: expiring all 5,000 of an album at each of 5,000 commits made an
    older album's first location-free download take minutes."""
    pending = [photo for photo in photos if not is_ready(photo, variant)]
    if not pending:
        return photos
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        for photo in pending:
            if variant.size == LARGE:
                ensure_renditions(photo)
            else:
                ensure_clean(photo)
    finally:
        session.expire_on_commit = expire_on_commit
    return photos


def ensure_clean(photo: Photo, storage: Storage | None = None) -> None:
    """Check an older photo for a location and make its location-free copy, once across workers."""
    lock = Path(current_app.config["LOCK_DIR"]) / f"clean-{photo.rendition_name}.lock"
    with one_maker(lock, RENDITION_WAIT_SECONDS):
        db.session.refresh(photo)
        if photo.has_location is None:
            storage = storage or get_storage()
            with storage.open(photo_key(photo)) as original, _seekable(original) as seekable:
                make_clean(storage, photo, seekable, current_app.config["TEMP_DIR"])
            db.session.commit()


def photo_key(photo: Photo) -> str:
    return original_key(photo.stored_name)


def original_key(stored_name: str) -> str:
    return f"originals/{stored_name}"


def thumbnail_key(photo: Photo) -> str:
    """Named by the photo's own random rendition name: public on a CDN, it tells nothing of `photo_key`."""
    return f"thumbs/{photo.rendition_name}.jpg"


def view_key(photo: Photo) -> str:
    return f"views/{photo.rendition_name}.jpg"


def legacy_keys(photo: Photo) -> list[str]:
    """Where the thumbnail and view of a photo added before rendition names were kept (the original's stem)."""
    stem = PurePosixPath(photo.stored_name).stem
    return [f"thumbs/{stem}.jpg", f"views/{stem}.jpg"]


def photo_keys(photo: Photo) -> list[str]:
    """Every key a photo may own: what deleting it removes (its location-free copy only when no other photo
    has the same original)."""
    shared = db.session.execute(
        db.select(Photo.id).where(Photo.sha256 == photo.sha256, Photo.id != photo.id).limit(1)
    ).first()
    clean = [clean_key(photo)] if photo.has_location and shared is None else []
    return [photo_key(photo), thumbnail_key(photo), view_key(photo), large_key(photo), *clean, *legacy_keys(photo)]


def rendition_limits() -> Limits:
    config = current_app.config
    return Limits(config["MAX_IMAGE_PIXELS"], decode_budget(config["IMAGE_DECODE_MB"] * 1024 * 1024))


def ensure_thumbnail(photo: Photo) -> str:
    """The thumbnail's key; an older photo without one gets it (and its view) made, see `ensure_renditions`."""
    return _ensured(photo, thumbnail_key(photo))


def ensure_view(photo: Photo) -> str:
    """The key of the photo's large view (VIEW_SIZE on its long side); see `ensure_renditions`."""
    return _ensured(photo, view_key(photo))


def _ensured(photo: Photo, key: str) -> str:
    """`key`, made with its sibling when missing. A visitor's request asks the store about this one key only
    (one HEAD on S3, not one per rendition): the sibling is checked when it is itself asked for."""
    if not get_storage().exists(key):
        ensure_renditions(photo)
    return key


def ensure_renditions(photo: Photo, storage: Storage | None = None) -> bool:
    """Make the photo's view and thumbnail if either is missing (photos added before they were made at
    once): one decode, by one request at a time across workers, then the old-named copies are removed.
    True when this call made them.

    Raises FileNotFoundError (original gone), InvalidImage, and RenditionBusy (503) after waiting
    RENDITION_WAIT_SECONDS for another request's making.
    """
    view, thumbnail, large = _renditions()
    storage = storage or get_storage()
    made = make_missing(
        storage,
        photo_key(photo),
        [Target(view_key(photo), view), Target(thumbnail_key(photo), thumbnail), Target(large_key(photo), large)],
        rendition_limits(),
        lock=Path(current_app.config["LOCK_DIR"]) / f"rendition-{photo.rendition_name}.lock",
        wait=RENDITION_WAIT_SECONDS,
        stale_keys=legacy_keys(photo),
    )
    if made or photo.large_sha256 is None:  # the large JPEG's size and CRC, for archives' layouts
        with storage.open(large_key(photo)) as stored:
            record_large(photo, digest(stored))
        db.session.commit()
    return made


def make_missing_renditions(storage: Storage, echo: Callable[[str], None]) -> int:
    """Make every photo's missing thumbnail, view and large download in `storage`, and check it for a
    location (making its location-free copy), one photo at a time; a photo whose original cannot be read is
    reported through `echo` (its visitors get a 404). Returns how many got renditions made."""
    made = 0
    for photo in db.session.execute(db.select(Photo).order_by(Photo.id)).scalars():
        try:
            made += ensure_renditions(photo, storage)
            if photo.has_location is None:
                ensure_clean(photo, storage)
        except (FileNotFoundError, InvalidImage) as exc:
            echo(f"photo {photo.id} ({photo.original_filename}): no thumbnail or view made ({exc})")
    return made


def _renditions() -> tuple[Rendition, Rendition, Rendition]:
    """The large view, the thumbnail and the large download, in that order: one decode makes them all (the
    largest first, each smaller one from it)."""
    config = current_app.config
    return (Rendition(config["VIEW_SIZE"], quality=85), Rendition(config["THUMBNAIL_SIZE"]),
            Rendition(config["LARGE_SIZE"], quality=88, keep_profile=True))


def _seekable(stream: BinaryIO) -> BinaryIO:
    """A store's stream may not seek; the location walker does (it reads headers, skips pixel data)."""
    try:
        stream.seek(0)
        return stream
    except (AttributeError, OSError, ValueError):
        copy = tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=current_app.config["TEMP_DIR"])
        shutil.copyfileobj(stream, copy)
        return copy  # type: ignore[return-value]


def _digest(source: BinaryIO) -> tuple[int, str, int]:
    sha, crc, size = hashlib.sha256(), 0, 0
    source.seek(0)
    while chunk := source.read(HASH_CHUNK):
        sha.update(chunk)
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    return size, sha.hexdigest(), crc


def _next_position(album: Album) -> int:
    return max((p.position for p in album.photos), default=-1) + 1


def _clean_title(title: str) -> str:
    title = album_title(title or "")
    if not title:
        raise ValueError("an album needs a title")
    return title


def _delete_keys(keys: list[str]) -> None:
    storage = get_storage()
    for key in keys:
        storage.delete(key)
