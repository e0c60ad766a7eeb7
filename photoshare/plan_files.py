"""An album's archive plan and ZIP layout kept on disk, so that no process plans the same version twice.

Planning a 5,000-photo album (names cleaned and de-duplicated, the digest, every local header and the central
directory) takes a few hundred milliseconds of Python. Each gunicorn worker used to pay that on its first
"Download all" of a version, before the first byte. Now the plan is written here when it is first made: when
the album's photos change (albums.refresh_version) or by the first request of a variant, and any worker loads
it in a few milliseconds.

A file is named by everything that keys a plan in memory (album, version, update time, variant, the variant's
files), is written whole and then renamed, and holds plain tuples read with `marshal` (no code, unlike
pickle). Writing an album's plan in one variant removes its older plans in that variant, so there is at most
one file per album and variant. A file that cannot be read is a miss, never an error. No Flask here.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from .archive import ArchiveEntry
from .zip_layout import Layout

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the tuples below change: older files are then misses
SUFFIX = ".plan"


@dataclass(frozen=True)
class KeptPlan:
    """An album's entries in one variant, the id of each entry's photo, their version and their layout."""

    photo_ids: tuple[int, ...]
    entries: tuple[ArchiveEntry, ...]
    version: str
    layout: Layout


def file_name(album_id: int, variant: Hashable, key: Hashable) -> str:
    """The file of the album's plan in `variant` named by `key` (reprs are stable: ints, strings, datetimes,
    frozen dataclasses)."""
    return f"{album_id}-{_digest(variant)[:8]}-{_digest(key)[:32]}{SUFFIX}"


def _digest(value: Hashable) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()


def load(folder: Path, name: str) -> KeptPlan | None:
    """The plan kept as `name`, or None (not kept, or unreadable)."""
    try:
        data = (folder / name).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("kept plan %s not read: %s", name, exc)
        return None
    try:
        form, ids, entries, version, layout = marshal.loads(data)  # noqa: S302 - our own file, instance folder
        if form != FORMAT:
            return None
        return KeptPlan(tuple(ids), tuple(map(ArchiveEntry._make, entries)), version, Layout(*layout))
    except (ValueError, TypeError, EOFError) as exc:
        log.warning("kept plan %s is damaged, planned again: %s", name, exc)
        return None


def save(folder: Path, name: str, plan: KeptPlan) -> None:
    """Keep `plan` as `name` (atomically) and remove the album's other plans in the same variant. A failure
    (a full disk) is logged and costs only the next process a planning."""
    layout = plan.layout
    data = marshal.dumps((
        FORMAT,
        plan.photo_ids,
        tuple((e.name, e.storage_key, e.size, e.sha256, tuple(e.date_time), e.crc32) for e in plan.entries),
        plan.version,
        (layout.headers, layout.data_offsets, layout.sizes, layout.central_offset, layout.central, layout.total),
    ))
    temp = folder / f".{name}.{os.getpid()}-{threading.get_ident()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(data)
        os.replace(temp, folder / name)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        log.warning("plan %s not kept: %s", name, exc)
        return
    prefix = name.rsplit("-", 1)[0] + "-"
    for other in folder.glob(f"{prefix}*{SUFFIX}"):
        if other.name != name:
            other.unlink(missing_ok=True)


def forget_album(folder: Path, album_id: int) -> None:
    """Remove every plan kept for the album (it was deleted)."""
    for path in folder.glob(f"{album_id}-*{SUFFIX}"):
        path.unlink(missing_ok=True)
