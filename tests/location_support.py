"""Test photos that carry a location (EXIF GPS IFD and an XMP packet with place names), made with Pillow, and
the readers that check a download: GPS, XMP, pixels and a JPEG's compressed scan data."""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib

from PIL import Image, ImageCms, PngImagePlugin

GPS_IFD = 0x8825
XMP_PLACE = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/"'
    b' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    b' xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"'
    b' exif:GPSLatitude="52,31.20N" exif:GPSLongitude="13,24.60E" photoshop:City="Berlin"'
    b' photoshop:DateCreated="2026-07-01">'
    b"<photoshop:State>Berlin State</photoshop:State><photoshop:Country>Germany</photoshop:Country>"
    b"<Iptc4xmpCore:Location>Our Garden</Iptc4xmpCore:Location>"
    b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Summer</rdf:li></rdf:Alt></dc:title>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    b'<?xpacket end="w"?>'
)
PLACE_WORDS = (b"Berlin", b"Germany", b"Our Garden", b"52,31", b"13,24")


def location_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make: kept
    exif.get_ifd(0x8769)[36867] = "2026:07:01 12:30:00"  # DateTimeOriginal: kept
    if orientation:
        exif[0x0112] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 36.0), 6: 34.5})
    return exif


def located_image(fmt: str = "JPEG", size: tuple[int, int] = (96, 64), *, noise: bool = True,
                  orientation: int | None = None, icc: bytes | None = None, xmp_compressed: bool = False) -> bytes:
    """A real photo with a GPS position in EXIF and place names in XMP (JPEG, PNG or WEBP)."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise else Image.new("RGB", size, "teal")
    exif = location_exif(orientation)
    out = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP_PLACE.decode(), zip=xmp_compressed)
        image.save(out, "PNG", exif=exif, pnginfo=info, **extra)
    else:
        image.save(out, fmt, exif=exif, xmp=XMP_PLACE, quality=90, **extra)
    return out.getvalue()


@functools.cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile, the same bytes on every call (littleCMS stamps each new one with the time)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def gps_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(GPS_IFD))


def exif_of(data: bytes) -> Image.Exif:
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif()


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def has_place_words(data: bytes) -> bool:
    """Whether any place name or coordinate of XMP_PLACE is still in the file (also inside compressed PNG text)."""
    texts = [data]
    if data.startswith(b"\x89PNG"):
        texts += [_inflated(chunk) for kind, chunk in png_chunks(data) if kind == b"iTXt"]
    return any(word in text for text in texts for word in PLACE_WORDS)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunks.append((kind, data[offset + 8:offset + 8 + length]))
        offset += 12 + length
    return chunks


def _inflated(itxt: bytes) -> bytes:
    _keyword, _, rest = itxt.partition(b"\x00")
    if rest[:1] != b"\x01":
        return b""
    text = rest[2:].split(b"\x00", 2)[2]
    return zlib.decompress(text)


def jpeg_scan_data(data: bytes) -> bytes:
    """Everything from the first SOS marker on: the compressed image data, untouched by metadata changes."""
    offset = 2
    while data[offset] == 0xFF and data[offset + 1] != 0xDA:
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        offset += 2 + length
    return data[offset:]
