"""photoshare.images: what an upload really is (by content), its EXIF facts, and its thumbnail."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime

import pytest
from PIL import Image

from photoshare.images import InvalidImage, Rendition, inspect_image, make_thumbnail, render
from tests.conftest import make_jpeg


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG that *claims* width x height: what a decompression bomb looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def split_jpeg(orientation: int | None) -> bytes:
    """Left half red, right half blue, so a rotation shows where the halves end up."""
    image = Image.new("RGB", (80, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 40, 40))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def test_exif_date_taken_is_read():
    info = inspect_image(io.BytesIO(make_jpeg(taken_at=datetime(2024, 5, 17, 14, 3, 9))))
    assert info.taken_at == datetime(2024, 5, 17, 14, 3, 9)
    assert info.content_type == "image/jpeg"


def test_exif_datetime_of_the_file_is_the_fallback_date():
    exif = Image.Exif()
    exif[306] = "2023:01:02 03:04:05"
    data = encode(Image.new("RGB", (8, 8)), "JPEG", exif=exif.tobytes())
    assert inspect_image(io.BytesIO(data)).taken_at == datetime(2023, 1, 2, 3, 4, 5)


@pytest.mark.parametrize("raw", ["0000:00:00 00:00:00", "yesterday", "    "])
def test_unreadable_exif_date_is_ignored_not_an_error(raw):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = raw
    data = encode(Image.new("RGB", (8, 8)), "JPEG", exif=exif.tobytes())
    assert inspect_image(io.BytesIO(data)).taken_at is None


def test_photo_without_exif_has_no_date():
    assert inspect_image(io.BytesIO(encode(Image.new("RGB", (8, 8)), "PNG"))).taken_at is None


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_rotating_orientation_swaps_width_and_height(orientation):
    info = inspect_image(io.BytesIO(make_jpeg(64, 48, orientation=orientation)))
    assert (info.width, info.height) == (48, 64)


@pytest.mark.parametrize("orientation", [None, 1, 2, 3, 4])
def test_non_rotating_orientation_keeps_width_and_height(orientation):
    info = inspect_image(io.BytesIO(make_jpeg(64, 48, orientation=orientation)))
    assert (info.width, info.height) == (64, 48)


def test_thumbnail_is_turned_the_way_the_camera_was_held():
    # Orientation 6: the stored picture must be turned 90° clockwise, so its left half ends up on top.
    thumb = Image.open(io.BytesIO(make_thumbnail(io.BytesIO(split_jpeg(6)), 480)))
    assert thumb.size == (40, 80)
    top, bottom = thumb.getpixel((20, 10)), thumb.getpixel((20, 70))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_thumbnail_without_orientation_is_not_turned():
    thumb = Image.open(io.BytesIO(make_thumbnail(io.BytesIO(split_jpeg(None)), 480)))
    assert thumb.size == (80, 40)
    assert thumb.getpixel((10, 20))[0] > 200


def test_thumbnail_is_a_jpeg_within_the_size_on_its_long_side():
    thumb = Image.open(io.BytesIO(make_thumbnail(io.BytesIO(make_jpeg(1200, 600)), 300)))
    assert thumb.format == "JPEG" and thumb.size == (300, 150)


def test_transparent_png_thumbnail_has_a_white_background():
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    thumb = Image.open(io.BytesIO(make_thumbnail(io.BytesIO(encode(image, "PNG")), 480)))
    assert thumb.mode == "RGB" and thumb.getpixel((10, 10)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif"), ("JPEG", "image/jpeg")],
)
def test_supported_formats_are_recognised_by_content(fmt, content_type):
    info = inspect_image(io.BytesIO(encode(Image.new("RGB", (30, 20), (10, 200, 30)), fmt)))
    assert (info.content_type, info.width, info.height) == (content_type, 30, 20)


def test_other_image_formats_are_refused_by_name():
    with pytest.raises(InvalidImage, match="BMP files are not supported"):
        inspect_image(io.BytesIO(encode(Image.new("RGB", (8, 8)), "BMP")))


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, I am a text file named photo.jpg\n", b"\xff\xd8\xff" + b"\0" * 100, bytes(range(256)) * 20],
    ids=["empty", "text", "jpeg-magic-then-zeros", "noise"],
)
def test_garbage_is_not_an_image(data):
    with pytest.raises(InvalidImage):
        inspect_image(io.BytesIO(data))


def test_truncated_jpeg_is_damaged():
    data = make_jpeg(200, 150, noise=1)
    with pytest.raises(InvalidImage, match="damaged or incomplete"):
        render(io.BytesIO(data[: len(data) // 2]), [Rendition(480)])


def test_decompression_bomb_is_refused_before_decoding():
    # 60000 x 60000 pixels would need ~10 GB once decoded; the file is under 100 bytes.
    data = png_header(60000, 60000)
    assert len(data) < 200
    with pytest.raises(InvalidImage, match=r"3600 megapixels\); the limit is 150 megapixels"):
        inspect_image(io.BytesIO(data))
    with pytest.raises(InvalidImage, match="the limit is 150 megapixels"):
        render(io.BytesIO(data), [Rendition(480)])


def test_pixel_limit_is_the_setting_not_pillows():
    # Pillow alone refuses above 179 megapixels and only warns above 89; the limit is ours, either way.
    assert inspect_image(io.BytesIO(png_header(12000, 12000)), max_pixels=200_000_000).width == 12000
    with pytest.raises(InvalidImage, match=r"1001 × 1000 pixels \(1 megapixels\); the limit is 1 megapixels"):
        inspect_image(io.BytesIO(png_header(1001, 1000)), max_pixels=1_000_000)
    assert inspect_image(io.BytesIO(png_header(1000, 1000)), max_pixels=1_000_000).width == 1000


def gradient_png(width: int, height: int, mode: str = "RGB") -> bytes:
    """A smooth picture: compresses to little however many pixels it has, like the 343 KB 88-megapixel PNG."""
    image = Image.linear_gradient("L").resize((width, height)).convert(mode)
    return encode(image, "PNG")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_large_png_is_reduced_in_strips_to_the_same_pixels(mode, monkeypatch):
    from photoshare import decoding

    monkeypatch.setattr(decoding, "STRIP_BYTES", 50_000)  # many strips, and a last one cut short
    data = gradient_png(1003, 707, mode)
    image = Image.open(io.BytesIO(data))
    assert decoding.png_strips_apply(image, 3)
    reduced = decoding.reduce_png(io.BytesIO(data), image, 3)
    assert reduced.tobytes() == Image.open(io.BytesIO(data)).reduce(3).tobytes()


def test_truncated_png_is_damaged_when_reduced_in_strips():
    data = gradient_png(2000, 1500)
    with pytest.raises(InvalidImage, match="damaged or incomplete"):
        render(io.BytesIO(data[: len(data) // 2]), [Rendition(300)])


def test_one_decode_makes_every_rendition_within_its_size():
    info, (view, thumb) = render(io.BytesIO(make_jpeg(1200, 600, orientation=6)), [Rendition(400), Rendition(100)])
    assert (info.width, info.height) == (600, 1200)
    assert Image.open(io.BytesIO(view)).size == (200, 400)
    assert Image.open(io.BytesIO(thumb)).size == (50, 100)


@pytest.mark.parametrize(
    ("mode", "fmt"), [("P", "GIF"), ("P", "PNG"), ("1", "PNG"), ("I;16", "PNG"), ("CMYK", "JPEG"), ("LA", "PNG")]
)
def test_large_images_of_every_mode_are_reduced_to_a_jpeg(mode, fmt):
    image = Image.new(mode, (2000, 1500), 300) if mode == "I;16" else Image.new("RGB", (2000, 1500), (200, 50, 20)).convert(mode)
    _info, (jpeg,) = render(io.BytesIO(encode(image, fmt)), [Rendition(480)])
    assert Image.open(io.BytesIO(jpeg)).size == (480, 360)
