"""Changes to albums and photos, in one place, so that every change keeps the album's version true.

Used by the owner pages and the CLI alike; never touches `request`.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zlib
from pathlib import PurePosixPath
from typing import BinaryIO

from blinker import Namespace
from flask import current_app

from .archive import ArchiveEntry, archive_digest, plan_archive
from .errors import NotFound
from .extensions import db
from .images import EXTENSIONS, InvalidImage, inspect_image, make_thumbnail
from .models import Album, Photo, User, utcnow
from .names import album_title, photo_name
from .storage import get_storage

_signals = Namespace()
# Sent after a change to an album's archive is committed, with album_id= and old_version=: caches listen.
album_changed = _signals.signal("album-changed")
EMPTY_VERSION = "empty"
HASH_CHUNK = 1024 * 1024


class UploadTooLarge(InvalidImage):
    pass


class EmptyAlbum(NotFound):
    """Nothing to put in an archive: "Download all" and prepare-download both answer this 404."""

    error, message = "empty_album", "This album has no photos to download yet."


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
    keys = [key for photo in album.photos for key in (photo_key(photo), thumbnail_key(photo), view_key(photo))]
    db.session.delete(album)
    db.session.commit()
    _delete_keys(keys)
    album_changed.send(current_app._get_current_object(), album_id=album_id, old_version=old_version)


def add_photo(album: Album, filename: str, source: BinaryIO, *, commit: bool = True) -> Photo:
    """Check that `source` is a real image, store it under an app-made name, and add it to the album.

    Raises InvalidImage (with a message for the uploader) and stores nothing when the file is not a readable
    image or is over the size limit. Reads the file in chunks; never holds it whole in memory.
    """
    size, sha256, crc32 = _digest(source)
    limit = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    if size > limit:
        raise UploadTooLarge(f"larger than the {current_app.config['MAX_UPLOAD_MB']} MB limit")
    if size == 0:
        raise InvalidImage("the file is empty")
    source.seek(0)
    info = inspect_image(source)
    photo = Photo(
        position=_next_position(album),
        original_filename=photo_name(filename, fallback="photo" + EXTENSIONS[info.content_type]),
        stored_name=uuid.uuid4().hex + EXTENSIONS[info.content_type],
        size=size,
        sha256=sha256,
        crc32=crc32,
        content_type=info.content_type,
        width=info.width,
        height=info.height,
        taken_at=info.taken_at,
        uploaded_at=utcnow().replace(microsecond=0),
    )
    storage = get_storage()
    source.seek(0)
    storage.save(photo_key(photo), source)
    try:
        source.seek(0)
        storage.save(thumbnail_key(photo), io.BytesIO(make_thumbnail(source, current_app.config["THUMBNAIL_SIZE"])))
        album.photos.append(photo)
        if commit:
            refresh_version(album)
    except BaseException:
        if photo in album.photos:
            db.session.rollback()
        _delete_keys([photo_key(photo), thumbnail_key(photo)])
        raise
    return photo


def rename_photo(photo: Photo, filename: str) -> None:
    """Name the photo `filename` as given (see names.photo_name); a name with nothing left keeps the old one."""
    photo.original_filename = photo_name(filename, fallback=photo.original_filename)
    refresh_version(photo.album)


def delete_photo(photo: Photo) -> None:
    album = photo.album
    keys = [photo_key(photo), thumbnail_key(photo), view_key(photo)]
    album.photos.remove(photo)
    db.session.delete(photo)
    refresh_version(album)
    _delete_keys(keys)


def refresh_version(album: Album) -> None:
    """Recompute the album's version from its archive plan, commit, and tell caches when it changed."""
    old_version = album.version
    entries = archive_plan(album)
    album.version = archive_digest(entries) if entries else EMPTY_VERSION
    album.updated_at = utcnow()
    db.session.commit()
    if album.version != old_version:
        album_changed.send(current_app._get_current_object(), album_id=album.id, old_version=old_version)


def archive_plan(album: Album) -> list[ArchiveEntry]:
    """The entries of the album's "Download all" archive, in album order."""
    return plan_archive(
        [(p.original_filename, photo_key(p), p.size, p.sha256, p.archive_time, p.crc32) for p in album.photos]
    )


def photo_key(photo: Photo) -> str:
    return f"originals/{photo.stored_name}"


def thumbnail_key(photo: Photo) -> str:
    return f"thumbs/{PurePosixPath(photo.stored_name).stem}.jpg"


def ensure_thumbnail(photo: Photo) -> str:
    """The thumbnail's key, remaking it from the original if it went missing."""
    storage, key = get_storage(), thumbnail_key(photo)
    if not storage.exists(key):
        with storage.open(photo_key(photo)) as original:
            storage.save(key, io.BytesIO(make_thumbnail(original, current_app.config["THUMBNAIL_SIZE"])))
    return key


def view_key(photo: Photo) -> str:
    return f"views/{PurePosixPath(photo.stored_name).stem}.jpg"


def ensure_view(photo: Photo) -> str:
    """The key of the photo's large view (VIEW_SIZE on its long side), made from the original on first use.

    Concurrent first requests may both render it; storage writes are atomic renames, so either copy wins whole.
    """
    storage, key = get_storage(), view_key(photo)
    if not storage.exists(key):
        with storage.open(photo_key(photo)) as original:
            storage.save(key, io.BytesIO(make_thumbnail(original, current_app.config["VIEW_SIZE"], quality=85)))
    return key


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
