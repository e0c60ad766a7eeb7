"""Copy the local upload folder into a bucket: `flask --app wsgi storage-migrate --to s3`.

First every photo gets the thumbnail and large view it lacks (older photos made views on first view, and named
them after their original), made on this machine in the decode budget, so that visitors of the bucket never
wait for one and no derivative's key gives its original's away.
Every object is verified by size and sha256 (read back from the store); verified objects are skipped, so a run
that stopped half-way is simply run again. Nothing local is ever deleted: switching STORAGE_BACKEND and removing
the old folder stay the operator's decisions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .base import Storage
from .local import LocalStorage


@dataclass
class MigrationReport:
    copied: int = 0
    present: int = 0
    failed: list[str] = field(default_factory=list)


def local_keys(root: Path) -> Iterator[str]:
    """Every stored file under `root` as a key, in a stable order; half-written `.partial-*` files are skipped."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            yield path.relative_to(root).as_posix()


def sha256_of(source: BinaryIO) -> str:
    """Hash a stream in chunks; never holds it whole."""
    return hashlib.file_digest(source, "sha256").hexdigest()


def is_verified(target: Storage, key: str, size: int, sha256: str) -> bool:
    """Does the store hold exactly these bytes under `key`? Size first (cheap), then the streamed hash."""
    try:
        if target.size(key) != size:
            return False
        with target.open(key) as stored:
            return sha256_of(stored) == sha256
    except FileNotFoundError:
        return False


def migrate(source: LocalStorage, target: Storage, echo: Callable[[str], None]) -> MigrationReport:
    """Copy every local file missing or different in `target`, verify it, and report each step through `echo`.

    Raises StorageError when the store stops answering; what was verified so far stays, a re-run resumes.
    """
    report = MigrationReport()
    keys = list(local_keys(source.root))
    for number, key in enumerate(keys, 1):
        prefix = f"[{number}/{len(keys)}] {key}"
        size = source.size(key)
        with source.open(key) as local:
            sha256 = sha256_of(local)
        if is_verified(target, key, size, sha256):
            report.present += 1
            echo(f"{prefix}: already in the store, verified")
            continue
        with source.open(key) as local:
            target.save(key, local)
        if is_verified(target, key, size, sha256):
            report.copied += 1
            echo(f"{prefix}: copied {size} bytes, verified")
        else:
            report.failed.append(key)
            echo(f"{prefix}: FAILED verification (size or sha256 differs in the store)")
    return report
