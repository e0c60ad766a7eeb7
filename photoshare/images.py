"""Pillow at the edges: is this upload really an image, what does EXIF say, and its thumbnail."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

# Formats we accept, checked on the content (never the extension), and the type each is served with.
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "HEIF": "image/heic",
    "MPO": "image/jpeg",  # phones' multi-picture JPEGs
}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif", "image/heic": ".heic"}
_EXIF_IFD = 0x8769
_DATE_TIME_ORIGINAL = 36867
_DATE_TIME = 306
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}


class InvalidImage(ValueError):
    """The upload is not an image we can read; the message is for the person who uploaded it."""


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int  # as displayed, EXIF orientation applied
    height: int
    taken_at: datetime | None


def inspect_image(source: BinaryIO) -> ImageInfo:
    """Decode the whole image once (catching truncated and corrupt files) and read its metadata."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                fmt = image.format or ""
                if fmt not in CONTENT_TYPES:
                    raise InvalidImage(f"{fmt or 'this'} files are not supported; upload JPEG, PNG, WebP or GIF")
                image.load()
                exif = image.getexif()
                width, height = image.size
    except InvalidImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("not an image, or an image format we cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidImage("the image is damaged or incomplete") from None
    if exif.get(0x0112) in _SWAPPED_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(CONTENT_TYPES[fmt], width, height, _taken_at(exif))


def _taken_at(exif: Image.Exif) -> datetime | None:
    raw = exif.get_ifd(_EXIF_IFD).get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def make_thumbnail(source: BinaryIO, size: int, *, quality: int = 82) -> bytes:
    """A JPEG no larger than `size` on its long side, EXIF orientation applied (small: a few dozen KiB)."""
    with Image.open(source) as image:
        image.draft("RGB", (size * 2, size * 2))  # JPEG decodes at a fraction of full size: much faster
        image = ImageOps.exif_transpose(image)
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGBA")
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image, mask=image.getchannel("A"))
            image = background
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
        return out.getvalue()
