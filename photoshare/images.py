"""Pillow at the edges: is this upload really an image, what does EXIF say, and its thumbnail and view.

Every image is opened header first: its format and pixel count are checked (MAX_IMAGE_PIXELS) before a single
pixel is decoded, and the decode itself runs inside the process's `DecodeBudget` (decoding.py), reduced while
decoding where the format allows (JPEG draft, PNG strips). Pillow's own bomb check is off: ours is per setting,
and Pillow's warned through the process-wide warnings filter, which threads cannot share safely.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError

from .decoding import DecodeBudget, decoded_size, png_strips_apply, reduce_png, reduced_png_size

Image.MAX_IMAGE_PIXELS = None  # replaced by `max_pixels` below, checked on the header's size

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
_ORIENTATION = 0x0112
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
DEFAULT_MAX_PIXELS = 150_000_000
SMOOTH_MODES = {"L", "LA", "RGB", "RGBA", "CMYK"}  # modes Pillow reduces and resizes by averaging
UNLIMITED = DecodeBudget(2**62)  # for callers outside the app (tests, scripts) that bound nothing


class InvalidImage(ValueError):
    """The upload is not an image we can read; the message is for the person who uploaded it."""


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int  # as displayed, EXIF orientation applied
    height: int
    taken_at: datetime | None


@dataclass(frozen=True)
class Rendition:
    """A JPEG to make: no larger than `size` on its long side."""

    size: int
    quality: int = 82
    keep_profile: bool = False  # carry the original's ICC colour profile (the large download: colours as shot)


def inspect_image(source: BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Format, size and EXIF date from the header alone: never decodes the pixels (`render` does)."""
    with _open(source, max_pixels) as image:
        return _info(image)


def render(
    source: BinaryIO, renditions: Sequence[Rendition], *, max_pixels: int = DEFAULT_MAX_PIXELS,
    budget: DecodeBudget = UNLIMITED,
) -> tuple[ImageInfo, list[bytes]]:
    """Decode the image ONCE, inside `budget`, and make every rendition from it (largest first, each smaller
    one from the one before). Decoding it whole also catches truncated and corrupt files: InvalidImage."""
    largest = max(r.size for r in renditions)
    with _open(source, max_pixels) as image:
        info = _info(image)
        orientation = _exif(image).get(_ORIENTATION)
        profile = image.info.get("icc_profile")
        try:
            full_size = image.size
            _draft(image, largest)
            with budget.reserve(_decode_cost(image, largest)):
                picture = _decode_reduced(source, image, largest)
                jpegs = {}
                for rendition in sorted(renditions, key=lambda r: r.size, reverse=True):
                    # Each size from the full picture's own proportions (not the larger rendition's, whose
                    # rounding would move a pixel), as the gallery's width and height attributes say.
                    box = fitted(full_size, rendition.size)
                    if box != picture.size and box[0] <= picture.width and box[1] <= picture.height:
                        picture = picture.resize(box, Image.Resampling.LANCZOS)
                    jpegs[rendition] = _jpeg(picture, orientation, rendition.quality,
                                             profile if rendition.keep_profile else None)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
            raise InvalidImage(_("the image is damaged or incomplete")) from None
    return info, [jpegs[rendition] for rendition in renditions]


def fitted(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """`size` scaled down (never up) to `long_side`, rounded as the gallery rounds (share/gallery.rendition_box)."""
    width, height = max(1, size[0]), max(1, size[1])
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def make_thumbnail(source: BinaryIO, size: int, *, quality: int = 82) -> bytes:
    """A JPEG no larger than `size` on its long side, EXIF orientation applied (small: a few dozen KiB)."""
    return render(source, [Rendition(size, quality)])[1][0]


def _open(source: BinaryIO, max_pixels: int) -> Image.Image:
    """The image with only its header read; refuses unknown formats and more than `max_pixels` pixels."""
    try:
        image = Image.open(source)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InvalidImage(_("not an image, or an image format we cannot read")) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidImage(_("the image is damaged or incomplete")) from None
    fmt = image.format or ""
    width, height = image.size
    if fmt not in CONTENT_TYPES:
        image.close()
        raise InvalidImage(
            _("%(format)s files are not supported; upload JPEG, PNG, WebP or GIF", format=fmt)
            if fmt
            else _("this kind of file is not supported; upload JPEG, PNG, WebP or GIF")
        )
    if width * height > max_pixels:
        image.close()
        raise InvalidImage(
            _(
                "the image is %(width)d × %(height)d pixels (%(size)s megapixels); the limit is %(limit)s megapixels",
                width=width, height=height, size=_megapixels(width * height), limit=_megapixels(max_pixels),
            )
        )
    return image


def _info(image: Image.Image) -> ImageInfo:
    exif = _exif(image)
    width, height = image.size
    if exif.get(_ORIENTATION) in _SWAPPED_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(CONTENT_TYPES[image.format or ""], width, height, _taken_at(exif))


def _exif(image: Image.Image) -> Image.Exif:
    """EXIF from the header; a PNG whose EXIF comes after its pixels has none (Pillow would decode to find it)."""
    if image.format == "PNG" and "exif" not in image.info:
        return Image.Exif()
    try:
        return image.getexif()
    except (OSError, SyntaxError, ValueError, EOFError):  # unreadable EXIF: as if there were none
        return Image.Exif()


def _reduce_factor(size: tuple[int, int], long_side: int) -> int:
    """Box-reduce (an exact average of whole pixels) while `long_side` remains; LANCZOS does the rest."""
    return max(1, max(size) // long_side)


def _draft(image: Image.Image, long_side: int) -> None:
    """Have a JPEG's decoder scale it down (1/2 to 1/8) while decoding: less memory, much faster."""
    if image.format in ("JPEG", "MPO"):
        image.draft("RGB" if image.mode not in ("L", "1") else "L", (2 * long_side, 2 * long_side))


def _decode_cost(image: Image.Image, long_side: int) -> int:
    """The decoded bytes `_decode_reduced` will hold: the picture as drafted (and its converted copy), or a
    PNG's reduction and strip."""
    factor = _reduce_factor(image.size, long_side)
    if png_strips_apply(image, factor):
        return reduced_png_size(image, factor)
    if image.mode not in SMOOTH_MODES:
        return decoded_size(image) + image.width * image.height * len(_smooth_mode(image))
    return decoded_size(image)


def _decode_reduced(source: BinaryIO, image: Image.Image, long_side: int) -> Image.Image:
    """The picture reduced to no less than `long_side`, in a mode Pillow can reduce and resize smoothly."""
    factor = _reduce_factor(image.size, long_side)
    if png_strips_apply(image, factor):
        return reduce_png(source, image, factor)
    image.load()
    picture = image
    if picture.mode not in SMOOTH_MODES:  # palette, 1-bit, 16-bit: the copy is counted in `_decode_cost`
        picture = picture.convert(_smooth_mode(picture))
    if factor > 1:
        picture = picture.reduce(factor)
        image.close()  # frees the full decode now, not when the file is closed
    return picture


def _smooth_mode(image: Image.Image) -> str:
    return "RGBA" if image.mode in ("PA", "LA") or "transparency" in image.info else "RGB"


def _jpeg(picture: Image.Image, orientation: int | None, quality: int, profile: bytes | None = None) -> bytes:
    """`picture` turned the way the camera was held, flattened on white, as a progressive JPEG; with the ICC
    `profile` when its pixels are still in the profile's colour space (not converted from CMYK or a palette)."""
    image = picture.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else picture
    if image.mode not in ("RGB", "L"):
        profile = None if image.mode == "CMYK" else profile
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    out = io.BytesIO()
    extra = {"icc_profile": profile} if profile else {}
    image.save(out, "JPEG", quality=quality, optimize=True, progressive=True, **extra)
    return out.getvalue()


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")


def _taken_at(exif: Image.Exif) -> datetime | None:
    raw = exif.get_ifd(_EXIF_IFD).get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
