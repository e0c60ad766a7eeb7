"""Location removed: the GPS position and XMP place names leave the file, nothing else does (location.py)."""

from __future__ import annotations

import io
from xml.etree import ElementTree

import pytest
from PIL import Image

from photoshare import location
from tests.conftest import make_jpeg
from tests.location_support import (
    exif_of,
    gps_of,
    has_place_words,
    jpeg_scan_data,
    located_image,
    pixels,
    png_chunks,
)


def cleaned(data: bytes) -> bytes:
    out = io.BytesIO()
    location.write_patched(io.BytesIO(data), location.location_patches(io.BytesIO(data)), out)
    return out.getvalue()


def test_jpeg_loses_gps_and_xmp_places_and_keeps_scan_data_pixels_and_other_exif():
    original = located_image("JPEG", orientation=6)
    assert gps_of(original) and has_place_words(original)  # the test photo really holds a location
    clean = cleaned(original)
    assert gps_of(clean) == {} and not has_place_words(clean)
    assert jpeg_scan_data(clean) == jpeg_scan_data(original)  # compressed image data, byte for byte
    assert pixels(clean) == pixels(original)
    exif = exif_of(clean)
    assert exif[0x010F] == "PhoneMaker" and exif[0x0112] == 6 and exif.get_ifd(0x8769)[36867] == "2026:07:01 12:30:00"
    with Image.open(io.BytesIO(clean)) as image:
        assert b"Summer" in image.info["xmp"]  # the rest of the XMP packet stays, well-formed
        packet = image.info["xmp"]
    root = ElementTree.fromstring(packet[packet.index(b"<x:xmpmeta"):packet.index(b"</x:xmpmeta>") + 12])
    description = root.find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    assert description.get("{http://ns.adobe.com/photoshop/1.0/}DateCreated") == "2026-07-01"
    assert description.get("{http://ns.adobe.com/photoshop/1.0/}City") is None
    assert len(clean) == len(original)  # blanked in place: every offset in the file still holds


@pytest.mark.parametrize("compressed", [False, True])
def test_png_loses_exif_gps_and_xmp_in_itxt_with_valid_chunk_crcs(compressed):
    original = located_image("PNG", xmp_compressed=compressed)
    assert gps_of(original) and has_place_words(original)
    clean = cleaned(original)
    assert gps_of(clean) == {} and not has_place_words(clean)
    assert pixels(clean) == pixels(original)
    idat = [chunk for kind, chunk in png_chunks(clean) if kind == b"IDAT"]
    assert idat == [chunk for kind, chunk in png_chunks(original) if kind == b"IDAT"]
    with Image.open(io.BytesIO(clean)) as image:
        image.load()  # Pillow checks every chunk's CRC while loading
        assert image.getexif()[0x010F] == "PhoneMaker"


def test_webp_loses_exif_gps_and_xmp():
    original = located_image("WEBP")
    assert gps_of(original) and has_place_words(original)
    clean = cleaned(original)
    assert gps_of(clean) == {} and not has_place_words(clean)
    assert pixels(clean) == pixels(original) and exif_of(clean)[0x010F] == "PhoneMaker"


def test_other_containers_are_cleaned_by_signature():
    """A container without a walker (here: a GIF with an XMP application block and an EXIF block)."""
    exif = located_image("JPEG")
    app1 = exif[exif.index(b"Exif\x00\x00"):]
    blob = b"GIF89a-like container " + app1[:400] + b" and " + located_image("WEBP")[-900:]
    assert location.tiff_patches(blob[blob.index(b"Exif") + 6:], 0)  # its GPS IFD has entries
    clean = cleaned(blob)
    assert len(clean) == len(blob) and b"Berlin" not in clean and b"Our Garden" not in clean
    assert location.tiff_patches(clean[clean.index(b"Exif") + 6:], 0) == []  # an empty GPS IFD now


def test_a_photo_without_location_needs_no_change():
    assert location.location_patches(io.BytesIO(make_jpeg(orientation=6))) == []
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "PNG")
    assert location.location_patches(plain) == []


def test_damaged_exif_is_left_alone_never_an_error():
    data = bytearray(located_image("JPEG"))
    start = data.index(b"Exif\x00\x00") + 6
    data[start + 4:start + 8] = b"\x00\xff\xff\xff" if data[start] == ord("I") else b"\xff\xff\xff\x00"
    patches = location.location_patches(io.BytesIO(bytes(data)))  # IFD0 far past the end: no GPS to find
    assert [p for p in patches if p.data.strip(b"\x00")] == [p for p in patches]  # only the XMP patch is left
    assert location.location_patches(io.BytesIO(bytes(data[:60]))) == []  # cut off inside APP1
