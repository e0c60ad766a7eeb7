"""Which file of a photo a visitor receives: the original or the large JPEG ("web size"), with or without the
place where it was taken.

A download is a `Variant` of the album (size, location removed or not), and each photo then has one `Source`:
its key, size, sha256 and CRC-32, download name and type. Single photos and every archive take their files
from `source_of` alone, so a variant means the same bytes wherever it is sent, and an archive's layout (which
needs every size and CRC before any byte) is known from the database:

- `large`: `large/<rendition_name>.jpg`, made with the thumbnail and view from the same decode (images.render),
  EXIF orientation applied, ICC profile kept, no EXIF at all (so never a position); `IMG_1.png` is then
  downloaded as `IMG_1.jpg` (archives de-duplicate names after that change);
- location removed: the original with its GPS and XMP place fields blanked (location.py), made once per photo
  and kept at `clean/<sha256 of the original><ext>` (content-addressed: two uploads of one file share it). A
  photo without a location has none and is sent as it is, same bytes, same ETag.

No Flask here: callers pass the storage and where temp files go.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from . import location
from .models import Photo
from .storage import Storage

ORIGINAL, LARGE = "original", "large"
SIZES = (ORIGINAL, LARGE)
SPOOL_BYTES = 8 * 1024 * 1024  # a cleaned copy up to this size is made in memory, larger ones in a temp file


@dataclass(frozen=True)
class Variant:
    """What a download of the album holds: photos at `size`, with their location removed or not."""

    size: str = ORIGINAL
    strip_location: bool = False

    @property
    def key(self) -> str:
        """The variant's name in a job row: "original", "large" or "original-clean" (web size has no location)."""
        return LARGE if self.size == LARGE else ORIGINAL + ("-clean" if self.strip_location else "")

    @classmethod
    def from_key(cls, key: str) -> Variant:
        size, _, clean = key.partition("-")
        return cls(LARGE if size == LARGE else ORIGINAL, strip_location=bool(clean) or size == LARGE)

    @property
    def query(self) -> dict[str, str]:
        """The download URL's parameters that name this size (the location follows the share itself)."""
        return {} if self.size == ORIGINAL else {"size": self.size}


@dataclass(frozen=True)
class Source:
    """The file a visitor receives for one photo in one variant."""

    key: str
    size: int
    sha256: str
    crc32: int
    filename: str
    content_type: str


def large_key(photo: Photo) -> str:
    return f"large/{photo.rendition_name}.jpg"


def clean_key(photo: Photo) -> str:
    """Content-addressed: the original's sha256 names its location-free copy."""
    return f"clean/{photo.sha256}{PurePosixPath(photo.stored_name).suffix}"


def large_name(filename: str) -> str:
    """The download name of the large JPEG: a JPEG keeps its name, `IMG_1.png` becomes `IMG_1.jpg`."""
    path = PurePosixPath(filename)
    return filename if path.suffix.lower() in (".jpg", ".jpeg") else f"{path.stem or 'photo'}.jpg"


def is_ready(photo: Photo, variant: Variant) -> bool:
    """Whether `source_of` can answer from the database alone (else the file is made first, once)."""
    if variant.size == LARGE:
        return photo.large_sha256 is not None
    return not variant.strip_location or photo.has_location is not None


def source_of(photo: Photo, variant: Variant, original_key: str) -> Source:
    """The photo's file in `variant` (see the module docstring); `is_ready` must be true."""
    if variant.size == LARGE:
        if photo.large_sha256 is None or photo.large_size is None or photo.large_crc32 is None:
            raise ValueError(f"photo {photo.id} has no large rendition yet")
        return Source(large_key(photo), photo.large_size, photo.large_sha256, photo.large_crc32,
                      large_name(photo.original_filename), "image/jpeg")
    if variant.strip_location and photo.has_location:
        if photo.clean_sha256 is None or photo.clean_size is None or photo.clean_crc32 is None:
            raise ValueError(f"photo {photo.id} has no location-free copy yet")
        return Source(clean_key(photo), photo.clean_size, photo.clean_sha256, photo.clean_crc32,
                      photo.original_filename, photo.content_type)
    if variant.strip_location and photo.has_location is None:
        raise ValueError(f"photo {photo.id} was not checked for a location yet")
    return Source(original_key, photo.size, photo.sha256, photo.crc32, photo.original_filename, photo.content_type)


def record_large(photo: Photo, written: location.Written) -> None:
    photo.large_size, photo.large_sha256, photo.large_crc32 = written.size, written.sha256, written.crc32


def digest(source: BinaryIO) -> location.Written:
    """Size, sha256 and CRC-32 of a file, read in 1 MiB pieces."""
    return location.write_patched(source, [], _Discard())


def make_clean(storage: Storage, photo: Photo, original: BinaryIO, temp_dir: str) -> None:
    """Check the original for a location and, when it has one, store its location-free copy (unless an
    identical upload's copy is there already); sets the photo's has_location and clean_* (not committed)."""
    patches = location.location_patches(original)
    photo.has_location = bool(patches)
    if not patches:
        photo.clean_size = photo.clean_sha256 = photo.clean_crc32 = None
        return
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=temp_dir) as copy:
        written = location.write_patched(original, patches, copy)
        key = clean_key(photo)
        if not storage.exists(key):
            copy.seek(0)
            storage.save(key, copy)  # type: ignore[arg-type]
    photo.clean_size, photo.clean_sha256, photo.clean_crc32 = written.size, written.sha256, written.crc32


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)
