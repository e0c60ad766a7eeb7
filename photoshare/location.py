"""Where a photo was taken, taken out of its file without touching its picture.

A phone's photo carries the GPS position of where it was taken (often the owner's home) in its EXIF GPS IFD
and, after editing, in XMP (`exif:GPSLatitude`, `photoshop:City`, `Iptc4xmpCore:Location`, ...). A share with
"Remove location from downloads" sends a copy without them. The copy is lossless by construction: it is the
original with a few byte ranges overwritten *in place, at the same length* (`Patch`), so every offset inside
the file stays valid and the image data (a JPEG's scan data after SOS, a PNG's IDAT, a WebP's VP8) is the
original's, byte for byte:

- EXIF (JPEG APP1 `Exif`, PNG `eXIf`, WebP `EXIF`, and any other container's `Exif\\0\\0` block): the GPS IFD
  becomes an empty IFD (0 entries) and every value it pointed at is zeroed; the IFD0 entry that points at it
  stays, so MakerNotes and every other tag keep their offsets (re-serialising EXIF would move them);
- XMP (JPEG APP1, PNG `iTXt XML:com.adobe.xmp`, WebP `XMP `, any `<x:xmpmeta>` packet elsewhere): each
  location property, element or attribute, becomes spaces of the same length, which XML and RDF ignore;
- PNG chunks carry a CRC: a changed chunk is written again whole with its new CRC (and a compressed XMP chunk
  is inflated, cleaned and compressed again: its only change of length);
- GIF, HEIC and anything else: the same EXIF and XMP blocks, found by their signatures in the whole file.

Not removed: IPTC-IIM place names in a JPEG's APP13 (legacy Photoshop records) and location in an extended
XMP packet split over several JPEG segments (a field cut in two). No Flask here; nothing holds more than one
metadata block in memory, except for formats without a walker (read whole, they are bounded by the upload limit).
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

COPY_CHUNK = 1024 * 1024
GPS_IFD_TAG = 0x8825
EXIF_HEADER = b"Exif\x00\x00"
XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_LOCATION_NAMES = (
    r"GPS\w*|City|State|Country|CountryCode|CountryName|Location|LocationCreated|LocationShown|Sublocation"
    r"|ProvinceState|WorldRegion"
)
_NAME = rb"[A-Za-z_][\w.-]*:(?:" + _LOCATION_NAMES.encode() + rb")"
_XMP_ATTRIBUTE = re.compile(rb"\s" + _NAME + rb"\s*=\s*(?:\"[^\"]*\"|'[^']*')")
_XMP_ELEMENT = re.compile(rb"<(" + _NAME + rb")(?:\s[^>]*)?(?:/>|>.*?</\1\s*>)", re.DOTALL)
_XMP_PACKET = re.compile(rb"<x:xmpmeta\b.*?</x:xmpmeta\s*>", re.DOTALL)
_TIFF_SIGNATURE = re.compile(rb"Exif\x00\x00(?:II\*\x00|MM\x00\*)")


@dataclass(frozen=True)
class Patch:
    """Write `data` instead of the `length` bytes at `offset` of the original."""

    offset: int
    length: int
    data: bytes


@dataclass(frozen=True)
class Written:
    size: int
    sha256: str
    crc32: int


def location_patches(source: BinaryIO) -> list[Patch]:
    """What to change in the file `source` to remove its location; empty when it holds none (then it is sent
    as it is). Malformed metadata is left as it is: no reader finds a position in it either."""
    source.seek(0)
    head = source.read(12)
    if head.startswith(b"\xff\xd8"):
        patches = list(_jpeg_patches(source))
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        patches = list(_png_patches(source))
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        patches = list(_webp_patches(source))
    else:
        source.seek(0)
        patches = list(_scan_patches(source.read(), 0))
    return sorted(patches, key=lambda patch: patch.offset)


def write_patched(source: BinaryIO, patches: list[Patch], out: BinaryIO) -> Written:
    """Copy `source` to `out` with `patches` applied (sorted, not overlapping), in 1 MiB pieces; returns the
    copy's size, sha256 and CRC-32 (what an archive's layout and the ETag need)."""
    sha, crc, size = hashlib.sha256(), 0, 0

    def emit(chunk: bytes) -> None:
        nonlocal crc, size
        out.write(chunk)
        sha.update(chunk)
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)

    source.seek(0)
    position = 0
    for patch in patches:
        for chunk in _read(source, patch.offset - position):
            emit(chunk)
        emit(patch.data)
        source.seek(patch.offset + patch.length)
        position = patch.offset + patch.length
    while chunk := source.read(COPY_CHUNK):
        emit(chunk)
    return Written(size, sha.hexdigest(), crc)


def _read(source: BinaryIO, count: int) -> Iterator[bytes]:
    while count > 0 and (chunk := source.read(min(COPY_CHUNK, count))):
        count -= len(chunk)
        yield chunk


def tiff_patches(tiff: bytes, base: int) -> list[Patch]:
    """Patches (offsets from `base`, where `tiff` starts in the file) that empty the GPS IFD of this TIFF/EXIF
    block and zero the values it points at; none when it has no GPS entries or cannot be read."""
    try:
        return _tiff_patches(tiff, base)
    except (struct.error, IndexError, KeyError):
        return []


def _tiff_patches(tiff: bytes, base: int) -> list[Patch]:
    order = {b"II": "<", b"MM": ">"}[tiff[:2]]
    (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
    gps = None
    for tag, _type, _count, value in _entries(tiff, order, ifd0):
        if tag == GPS_IFD_TAG:
            (gps,) = struct.unpack(order + "I", value)
    if gps is None:
        return []
    entries = list(_entries(tiff, order, gps))
    if not entries:
        return []
    patches = [Patch(base + gps, 2 + 12 * len(entries) + 4, bytes(2 + 12 * len(entries) + 4))]
    for _tag, kind, count, value in entries:
        length = _TYPE_SIZES.get(kind, 1) * count
        if length > 4:
            (offset,) = struct.unpack(order + "I", value)
            if offset + length <= len(tiff) and not gps <= offset < gps + 2 + 12 * len(entries) + 4:
                patches.append(Patch(base + offset, length, bytes(length)))
    return _merged(patches)


def _entries(tiff: bytes, order: str, offset: int) -> Iterator[tuple[int, int, int, bytes]]:
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    if offset + 2 + 12 * count + 4 > len(tiff):
        raise IndexError("IFD past the end")
    for index in range(count):
        start = offset + 2 + 12 * index
        tag, kind, number = struct.unpack_from(order + "HHI", tiff, start)
        yield tag, kind, number, tiff[start + 8:start + 12]


def _merged(patches: list[Patch]) -> list[Patch]:
    """Overlapping zero patches as one (two GPS values may share bytes in a malformed file)."""
    result: list[Patch] = []
    for patch in sorted(patches, key=lambda p: p.offset):
        if result and patch.offset < result[-1].offset + result[-1].length:
            last = result.pop()
            end = max(last.offset + last.length, patch.offset + patch.length)
            patch = Patch(last.offset, end - last.offset, bytes(end - last.offset))
        result.append(patch)
    return result


def blank_xmp(xmp: bytes) -> bytes:
    """`xmp` with every location property replaced by spaces of the same length (same bytes when none)."""
    spaces = lambda match: b" " * len(match.group(0))  # noqa: E731
    return _XMP_ELEMENT.sub(spaces, _XMP_ATTRIBUTE.sub(spaces, xmp))


def _xmp_patch(xmp: bytes, base: int) -> list[Patch]:
    cleaned = blank_xmp(xmp)
    return [] if cleaned == xmp else [Patch(base, len(xmp), cleaned)]


def _jpeg_patches(source: BinaryIO) -> Iterator[Patch]:
    """APP1 segments up to the first scan; the scan data itself is never read."""
    source.seek(2)
    while True:
        marker = source.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return
        while marker[1] == 0xFF:  # fill bytes
            marker = marker[1:] + source.read(1)
        if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
            continue
        if marker[1] in (0xDA, 0xD9):  # start of scan, end of image: no metadata after this
            return
        header = source.read(2)
        if len(header) < 2:
            return
        (length,) = struct.unpack(">H", header)
        start = source.tell()
        if marker[1] == 0xE1:
            data = source.read(length - 2)
            if data.startswith(EXIF_HEADER):
                yield from tiff_patches(data[6:], start + 6)
            elif data.startswith(XMP_JPEG_HEADER):
                yield from _xmp_patch(data[len(XMP_JPEG_HEADER):], start + len(XMP_JPEG_HEADER))
        source.seek(start + length - 2)


def _png_patches(source: BinaryIO) -> Iterator[Patch]:
    """eXIf and XMP iTXt chunks, each written again whole with its CRC; IDAT is skipped, never read."""
    source.seek(8)
    while len(header := source.read(8)) == 8:
        length, kind = struct.unpack(">I4s", header)
        start = source.tell() - 8
        if kind in (b"eXIf", b"iTXt"):
            data = source.read(length)
            cleaned = _clean_exif_chunk(data) if kind == b"eXIf" else _clean_xmp_chunk(data)
            if cleaned != data:
                chunk = struct.pack(">I4s", len(cleaned), kind) + cleaned
                yield Patch(start, 12 + length, chunk + struct.pack(">I", zlib.crc32(chunk[4:])))
        if kind == b"IEND":
            return
        source.seek(start + 12 + length)


def _clean_exif_chunk(data: bytes) -> bytes:
    return _applied(data, tiff_patches(data, 0))


def _clean_xmp_chunk(data: bytes) -> bytes:
    """An iTXt chunk: keyword NUL, compression flag, method, language NUL, translated keyword NUL, text."""
    keyword, _, rest = data.partition(b"\x00")
    if keyword != XMP_PNG_KEYWORD or len(rest) < 2:
        return data
    compressed = rest[0] == 1
    _language, _, rest2 = rest[2:].partition(b"\x00")
    _translated, _, text = rest2.partition(b"\x00")
    prefix = data[: len(data) - len(text)]
    if not compressed:
        return prefix + blank_xmp(text)
    try:
        xmp = zlib.decompress(text)
    except zlib.error:
        return data
    cleaned = blank_xmp(xmp)
    return data if cleaned == xmp else prefix + zlib.compress(cleaned, 9)


def _webp_patches(source: BinaryIO) -> Iterator[Patch]:
    """EXIF and `XMP ` chunks of the RIFF container, patched in place (no CRC, sizes unchanged)."""
    source.seek(12)
    while len(header := source.read(8)) == 8:
        kind, length = struct.unpack("<4sI", header)
        start = source.tell()
        if kind == b"EXIF":
            data = source.read(length)
            skip = len(EXIF_HEADER) if data.startswith(EXIF_HEADER) else 0
            yield from tiff_patches(data[skip:], start + skip)
        elif kind == b"XMP ":
            yield from _xmp_patch(source.read(length), start)
        source.seek(start + length + (length & 1))


def _scan_patches(data: bytes, base: int) -> Iterator[Patch]:
    """Any container: EXIF blocks by their `Exif\\0\\0` + TIFF signature, XMP packets by `<x:xmpmeta>`."""
    for match in _TIFF_SIGNATURE.finditer(data):
        yield from tiff_patches(data[match.start() + 6:], base + match.start() + 6)
    for match in _XMP_PACKET.finditer(data):
        yield from _xmp_patch(match.group(0), base + match.start())


def _applied(data: bytes, patches: list[Patch]) -> bytes:
    out = bytearray(data)
    for patch in patches:
        out[patch.offset:patch.offset + patch.length] = patch.data
    return bytes(out)
