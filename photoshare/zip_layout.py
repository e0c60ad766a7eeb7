"""Where every byte of an album archive goes, computed before any photo is read.

A stored (uncompressed) ZIP whose entries' names, sizes and CRC-32s are known up front (the database holds
them) has a fixed layout: every local header, every entry's data offset, the central directory and the total
size follow from the plan alone. That is what lets a "Download all" answer at once with its exact
Content-Length, and lets the builder fill the archive in any order (a waiting range first).

The bytes are exactly those `zipfile` writes to a seekable file (archive format `zip-stored-2`): CRC and sizes
in the local headers, no data descriptors, and ZIP64 extra fields where `zipfile` puts them, in the local
header too (sizes over 2 GiB / 1.05 there, sizes and offsets over 2 GiB in the central directory, the ZIP64
end records past 65,535 entries or 2 GiB of offset). Keeping zipfile's bytes keeps every album's version and
ETag. Pure: no Flask, no files.
"""

from __future__ import annotations

import bisect
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

ZIP64_LIMIT = (1 << 31) - 1  # zipfile's: ZIP64 from 2 GiB on, not only from 4 GiB (valid, and byte-stable)
ZIP_FILECOUNT_LIMIT = (1 << 16) - 1
ZIP64_VERSION = 45
UTF8_FLAG = 0x800
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")
_END = struct.Struct("<4s4H2LH")


@dataclass(frozen=True)
class LayoutEntry:
    """What the layout needs of one entry; `info` carries name, time and attributes as the writer sets them."""

    info: zipfile.ZipInfo
    size: int
    crc32: int


@dataclass(frozen=True)
class Layout:
    """The archive's fixed parts and where each entry's data goes."""

    headers: tuple[bytes, ...]  # local header of each entry, at data_offsets[i] - len(headers[i])
    data_offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    central_offset: int
    central: bytes  # the central directory and end records, up to the archive's end
    total: int

    def header_offset(self, index: int) -> int:
        return self.data_offsets[index] - len(self.headers[index])

    def entry_at(self, offset: int) -> int | None:
        """The entry whose photo bytes hold `offset`, or None for a header or the central directory."""
        index = bisect.bisect_right(self.data_offsets, offset) - 1
        if index >= 0 and offset < self.data_offsets[index] + self.sizes[index]:
            return index
        return None

    def piece_at(self, offset: int) -> int | None:
        """The entry whose local header or photo bytes hold `offset` (what the builder writes in one go), or None
        for the central directory."""
        index = bisect.bisect_right(self.data_offsets, offset)
        if index > 0 and offset < self.data_offsets[index - 1] + self.sizes[index - 1]:
            return index - 1
        return index if index < len(self.data_offsets) else None

    def fixed_end(self, offset: int) -> int:
        """Where the fixed bytes (headers, central directory) that hold `offset` end."""
        index = bisect.bisect_right(self.data_offsets, offset)
        return self.data_offsets[index] if index < len(self.data_offsets) else self.total


def compute(entries: Sequence[LayoutEntry]) -> Layout:
    """The layout of a stored ZIP of `entries`, in order; never reads a photo."""
    headers, offsets, infos = [], [], []
    position = 0
    for entry in entries:
        info = _filled(entry)
        info.header_offset = position
        header = info.FileHeader(entry.size * 1.05 > ZIP64_LIMIT)  # zipfile's own rule, as it writes the file
        headers.append(header)
        infos.append(info)
        position += len(header)
        offsets.append(position)
        position += entry.size
    central = _central_directory(infos, position)
    return Layout(tuple(headers), tuple(offsets), tuple(e.size for e in entries), position, central,
                  position + len(central))


def _filled(entry: LayoutEntry) -> zipfile.ZipInfo:
    info = entry.info
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.compress_type, copy.create_system, copy.external_attr = info.compress_type, info.create_system, \
        info.external_attr
    copy.flag_bits, copy.file_size, copy.compress_size, copy.CRC = 0, entry.size, entry.size, entry.crc32
    return copy


def _central_directory(infos: Sequence[zipfile.ZipInfo], start: int) -> bytes:
    """zipfile.ZipFile._write_end_record, for infos whose header offsets, CRCs and sizes are set."""
    parts = []
    for info in infos:
        extra: list[int] = []
        file_size = compress_size = info.file_size
        if info.file_size > ZIP64_LIMIT:
            extra += [info.file_size, info.compress_size]
            file_size = compress_size = 0xFFFFFFFF
        header_offset = info.header_offset
        if header_offset > ZIP64_LIMIT:
            extra.append(header_offset)
            header_offset = 0xFFFFFFFF
        extra_data = struct.pack("<HH" + "Q" * len(extra), 1, 8 * len(extra), *extra) if extra else b""
        min_version = ZIP64_VERSION if extra else 0
        ascii_name = info.filename.isascii()
        name = info.filename.encode("ascii" if ascii_name else "utf-8")
        flag_bits = info.flag_bits if ascii_name else info.flag_bits | UTF8_FLAG
        dt = info.date_time
        dosdate = (dt[0] - 1980) << 9 | dt[1] << 5 | dt[2]
        dostime = dt[3] << 11 | dt[4] << 5 | (dt[5] // 2)
        parts.append(_CENTRAL.pack(
            b"PK\x01\x02", max(min_version, info.create_version), info.create_system,
            max(min_version, info.extract_version), info.reserved, flag_bits, info.compress_type, dostime, dosdate,
            info.CRC, compress_size, file_size, len(name), len(extra_data), 0, 0, info.internal_attr,
            info.external_attr, header_offset,
        ) + name + extra_data)
    size = sum(len(part) for part in parts)
    count, offset = len(infos), start
    if count > ZIP_FILECOUNT_LIMIT or offset > ZIP64_LIMIT or size > ZIP64_LIMIT:
        parts.append(_END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset))
        parts.append(_END64_LOCATOR.pack(b"PK\x06\x07", 0, start + size, 1))
        count, size, offset = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(offset, 0xFFFFFFFF)
    parts.append(_END.pack(b"PK\x05\x06", 0, 0, count, count, size, offset, 0))
    return b"".join(parts)
