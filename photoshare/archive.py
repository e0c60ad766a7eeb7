"""The album archive: which names go in, in which order, and the byte-stable ZIP writer.

The archive is a pure function of its plan (the entries below): same plan, same bytes. That is what lets a
phone resume a "Download all" after a dropped connection, and what keys ETags and the ZIP cache. This module
knows nothing of Flask or of requests.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import re
import stat
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, BinaryIO, NamedTuple

from . import zip_layout
from .names import fit, photo_name

# Bump when the bytes the writer produces for the same plan change, or the rule naming its entries does: it is
# part of every archive digest, so every album's version and ETag then change once (a migration stores them).
ARCHIVE_FORMAT = "zip-stored-2"  # 2: Windows-safe entry names
CHUNK_SIZE = 64 * 1024
COPY_CHUNK = 1024 * 1024  # when the kernel cannot copy (a photo in a bucket)
KERNEL_STEP = 8 * 1024 * 1024  # progress (a job's heartbeat) after at most this much of one photo
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP entry can carry
UNIX_FILE_MODE = 0o100644 << 16  # a regular file, rw-r--r--, for every entry

LAYOUTS_KEPT = 16  # layouts kept per process: a 5,000-photo album's is a few MB
_LAYOUTS: OrderedDict[str, zip_layout.Layout] = OrderedDict()  # version -> layout
_LAYOUTS_LOCK = threading.Lock()

MAX_ENTRY_BYTES = 200  # of UTF-8: ext4 and APFS refuse over 255 bytes; room left for a duplicate's `_1`

# What Windows refuses in a name (the separators and control characters are gone already), and at its ends.
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_EDGE_DOTS_AND_SPACES = re.compile(r"^[\s.]+|[\s.]+$")
_RESERVED_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"]
)


class ArchiveSourceError(RuntimeError):
    """A photo that the archive needs could not be read (missing or unreadable file)."""

    def __init__(self, entry_name: str, cause: BaseException) -> None:
        super().__init__(f"the photo {entry_name!r} could not be read: {cause}")
        self.entry_name = entry_name


class ArchiveEntry(NamedTuple):
    """One photo in the archive: where to read it and how it appears inside. A named tuple: a worker makes
    5,000 of them from a kept plan before a first byte, three times faster than a frozen dataclass."""

    name: str
    storage_key: str
    size: int
    sha256: str
    date_time: tuple[int, int, int, int, int, int]
    crc32: int | None = None  # from the database; None: read from the photo before writing (slower)


def clean_filename(name: str, fallback: str = "photo") -> str:
    """The photo's name as a ZIP entry that unpacks under that name on Windows, macOS and Linux, the same way
    every time (the archive's bytes depend on it).

    Starts from `names.photo_name` (no folders, control or bidi characters; NFC); then `<>:"|?*` become `_`,
    `..` becomes `.`, leading and trailing dots and white space go, a Windows device name gets `_`
    (`CON.jpg` → `CON_.jpg`, `nul.tar.gz` → `nul_.tar.gz`), and the whole is cut to 200 UTF-8 bytes, since
    Linux and macOS refuse names over 255 bytes. Cleaning a cleaned name changes nothing.
    """
    name = _WINDOWS_FORBIDDEN.sub("_", photo_name(name, fallback))
    while ".." in name:
        name = name.replace("..", ".")
    name = _EDGE_DOTS_AND_SPACES.sub("", name)
    if not name.strip("._- "):
        name = fallback
    return _EDGE_DOTS_AND_SPACES.sub("", fit(_unreserved(name), MAX_ENTRY_BYTES, in_bytes=True))


def _unreserved(name: str) -> str:
    """`name` with `_` after a device name Windows reserves: what comes before the first dot, any case."""
    device = name.split(".", 1)[0].rstrip()
    if device.upper() not in _RESERVED_DEVICES:
        return name
    return device + "_" + name[len(device):]


def archive_name(title: str) -> str:
    """The album title as the archive's download name: `Summer / Beach` → `Summer - Beach.zip`; quotes and the
    like kept, as for photos (the browser adapts the name to its file system)."""
    return photo_name(title.replace("/", "-").replace("\\", "-"), fallback="album") + ".zip"


def unique_names(names: Iterable[str]) -> list[str]:
    """De-duplicate names case-insensitively: `a.jpg`, `A.JPG`, `a.jpg` → `a.jpg`, `A_1.JPG`, `a_2.jpg`.

    Original names are reserved first, so a generated `IMG_1_1.jpg` never takes the name of a photo that
    really is called `IMG_1_1.jpg`.
    """
    names = list(names)
    taken = {name.casefold() for name in names}
    seen: set[str] = set()
    counters: dict[str, int] = {}
    result = []
    for name in names:
        key = name.casefold()
        if key not in seen:
            seen.add(key)
            result.append(name)
            continue
        stem, ext = posixpath.splitext(name)
        n = counters.get(key, 0)
        while True:
            n += 1
            candidate = f"{stem}_{n}{ext}"
            if candidate.casefold() not in taken and candidate.casefold() not in seen:
                break
        counters[key] = n
        seen.add(candidate.casefold())
        result.append(candidate)
    return result


def zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    """The entry timestamp for `moment`, clamped to what a ZIP can carry (1980 to 2107)."""
    stamp = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    if stamp < ZIP_EPOCH:
        return ZIP_EPOCH
    return min(stamp, (2107, 12, 31, 23, 59, 58))


def plan_archive(photos: Sequence[tuple[Any, ...]]) -> list[ArchiveEntry]:
    """Entries for photos given as (original filename, storage key, size, sha256, time[, crc32]), in album
    order. With the CRC-32 known, the archive's whole layout is known before any photo is read."""
    names = unique_names(clean_filename(photo[0]) for photo in photos)
    return [
        ArchiveEntry(name=name, storage_key=photo[1], size=photo[2], sha256=photo[3], date_time=zip_time(photo[4]),
                     crc32=photo[5] if len(photo) > 5 else None)
        for name, photo in zip(names, photos, strict=True)
    ]


def archive_digest(entries: Sequence[ArchiveEntry]) -> str:
    """A digest that changes exactly when the archive's bytes would: the album's version."""
    manifest = [ARCHIVE_FORMAT] + [[e.name, e.size, e.sha256, list(e.date_time)] for e in entries]
    return hashlib.sha256(json.dumps(manifest, ensure_ascii=False).encode()).hexdigest()[:32]


def _zip_info(entry: ArchiveEntry) -> zipfile.ZipInfo:
    """Every attribute fixed by the plan, never by the file on disk or the clock."""
    info = zipfile.ZipInfo(entry.name, date_time=entry.date_time)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # unix, so the mode below means what it says
    info.external_attr = UNIX_FILE_MODE
    info.file_size = entry.size
    return info


def archive_layout(entries: Sequence[ArchiveEntry]) -> zip_layout.Layout:
    """Every header, offset and the total size of the archive of `entries`; each needs its crc32."""
    missing = [entry.name for entry in entries if entry.crc32 is None]
    if missing:
        raise ValueError(f"no CRC-32 for {missing[0]!r}: the layout needs every entry's")
    return zip_layout.compute([zip_layout.LayoutEntry(_zip_info(e), e.size, e.crc32 or 0) for e in entries])


def cached_layout(
    version: str,
    entries: Sequence[ArchiveEntry],
    complete: Callable[[Sequence[ArchiveEntry]], Sequence[ArchiveEntry]] | None = None,
) -> zip_layout.Layout:
    """`archive_layout` of the archive named `version` (its digest), computed once per version in this process
    (bounded): a download manager's 8 ranges and every resume reuse it. `complete` fills in missing CRC-32s
    (e.g. `with_crcs`), only when the layout is not known yet."""
    with _LAYOUTS_LOCK:
        layout = _LAYOUTS.get(version)
        if layout is not None:
            _LAYOUTS.move_to_end(version)
            return layout
    layout = archive_layout(complete(entries) if complete is not None else entries)
    remember_layout(version, layout)
    return layout


def remember_layout(version: str, layout: zip_layout.Layout) -> None:
    """Keep `layout` as the one of `version` in this process (one computed elsewhere: plan_files.py)."""
    with _LAYOUTS_LOCK:  # gthread: requests of one worker share this
        _LAYOUTS[version] = layout
        _LAYOUTS.move_to_end(version)
        while len(_LAYOUTS) > LAYOUTS_KEPT:
            _LAYOUTS.popitem(last=False)


def with_crcs(entries: Sequence[ArchiveEntry], open_source: Callable[[str], BinaryIO]) -> list[ArchiveEntry]:
    """`entries` with every missing CRC-32 read from its photo (plans made without the database's)."""
    return [entry if entry.crc32 is not None else entry._replace(crc32=_read_crc(entry, open_source))
            for entry in entries]


def write_fixed(layout: zip_layout.Layout, out_fd: int) -> None:
    """Write every local header and the central directory (everything but the photos' bytes) to `out_fd`."""
    for index, header in enumerate(layout.headers):
        os.pwrite(out_fd, header, layout.header_offset(index))
    os.pwrite(out_fd, layout.central, layout.central_offset)


def copy_entry(
    entry: ArchiveEntry,
    out_fd: int,
    offset: int,
    open_source: Callable[[str], BinaryIO],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Copy the photo's bytes to `offset` of `out_fd`: by the kernel (copy_file_range, which may reflink, else
    sendfile) when the source is a local file, else through 1 MiB buffers. Raises ArchiveSourceError when the
    photo cannot be read or its size differs from the plan's; returns the bytes copied. Calls
    `progress(bytes_of_this_photo_copied)` at least every 8 MiB."""
    try:
        source = open_source(entry.storage_key)
    except OSError as exc:
        raise ArchiveSourceError(entry.name, exc) from exc
    with source:
        try:
            on_disk = _local_size(source)
            if on_disk is not None and on_disk != entry.size:
                raise ArchiveSourceError(entry.name, ValueError(f"{on_disk} bytes on disk, {entry.size} expected"))
            written = _copy(source, out_fd, offset, entry.size, progress or (lambda copied: None))
            if on_disk is None and written == entry.size and source.read(1):
                written += 1  # a stream that goes on past the planned size
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise ArchiveSourceError(entry.name, exc) from exc
    if written < entry.size and on_disk == entry.size:
        raise OSError(errno.ENOSPC, "the archive could not take the whole photo (disk full?)")
    if written != entry.size:
        raise ArchiveSourceError(entry.name, ValueError(f"{written}+ bytes on disk, {entry.size} expected"))
    return written


def write_archive(
    entries: Sequence[ArchiveEntry],
    out: BinaryIO,
    open_source: Callable[[str], BinaryIO],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the ZIP of `entries` to the file `out` (at its start) and return its size.

    The same bytes as the temp archives built while they are served (archive_stream.py): the layout comes
    from the plan, then each photo is copied into its place (see `copy_entry`); nothing ever holds a whole
    photo in memory. Calls `progress(bytes_of_photos_copied)` after each photo. Raises ArchiveSourceError when
    a photo cannot be read or has changed size; the caller owns `out` and removes it on failure.
    """
    entries = with_crcs(entries, open_source)
    layout = archive_layout(entries)
    out.flush()
    out_fd = _local_fd(out)
    if out_fd is None:
        return _write_in_order(entries, layout, out, open_source, progress)
    write_fixed(layout, out_fd)
    copied = 0
    for entry, offset in zip(entries, layout.data_offsets, strict=True):
        step = None if progress is None else (lambda done, before=copied: progress(before + done))
        copied += copy_entry(entry, out_fd, offset, open_source, step)
    out.seek(layout.total)
    return layout.total


def _write_in_order(
    entries: Sequence[ArchiveEntry],
    layout: zip_layout.Layout,
    out: BinaryIO,
    open_source: Callable[[str], BinaryIO],
    progress: Callable[[int], None] | None,
) -> int:
    """write_archive to a file object without a descriptor (an in-memory buffer): front to back, 1 MiB buffers."""
    copied = 0
    for entry, header in zip(entries, layout.headers, strict=True):
        out.write(header)
        try:
            with open_source(entry.storage_key) as source:
                written = 0
                while chunk := source.read(COPY_CHUNK):
                    written += out.write(chunk)
        except OSError as exc:
            raise ArchiveSourceError(entry.name, exc) from exc
        if written != entry.size:
            raise ArchiveSourceError(entry.name, ValueError(f"{written} bytes on disk, {entry.size} expected"))
        copied += written
        if progress is not None:
            progress(copied)
    out.write(layout.central)
    return layout.total


def _local_fd(out: BinaryIO) -> int | None:
    try:
        return out.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _copy(source: BinaryIO, out_fd: int, offset: int, size: int, progress: Callable[[int], None]) -> int:
    """Up to `size` bytes of `source` to `offset` of `out_fd`; returns how many there were."""
    try:
        in_fd = source.fileno()
    except (AttributeError, OSError, ValueError):
        in_fd = None
    if in_fd is not None:
        try:
            return _kernel_copy(in_fd, out_fd, offset, size, progress)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
    done = 0
    while done < size and (chunk := source.read(min(COPY_CHUNK, size - done))):
        done += os.pwrite(out_fd, chunk, offset + done)
        progress(done)
    return done


def _kernel_copy(in_fd: int, out_fd: int, offset: int, size: int, progress: Callable[[int], None]) -> int:
    """copy_file_range from the start of `in_fd`: the bytes never enter Python."""
    done = 0
    while done < size:
        count = os.copy_file_range(in_fd, out_fd, min(size - done, KERNEL_STEP), done, offset + done)
        if count == 0:
            break
        done += count
        progress(done)
    return done


def _local_size(source: BinaryIO) -> int | None:
    """The size of the regular file behind `source`, or None for a stream (a bucket object, a pipe)."""
    try:
        status = os.fstat(source.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def _read_crc(entry: ArchiveEntry, open_source: Callable[[str], BinaryIO]) -> int:
    crc = 0
    try:
        with open_source(entry.storage_key) as source:
            while chunk := source.read(COPY_CHUNK):
                crc = zlib.crc32(chunk, crc)
    except OSError as exc:
        raise ArchiveSourceError(entry.name, exc) from exc
    return crc
