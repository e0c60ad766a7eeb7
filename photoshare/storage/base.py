"""The one interface through which the app reads and writes files (originals, thumbnails, archives)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


class StorageError(RuntimeError):
    """The store could not be reached or refused the operation; the request can be retried."""


@dataclass(frozen=True)
class StoredObject:
    """One object as the store describes it, without reading it."""

    key: str
    size: int
    modified: float  # Unix time of its last write


class Storage(Protocol):
    """Keys are app-made relative paths such as `originals/3f2a….jpg`; never a user's filename.

    The delivery URLs (`presigned_url`, `public_url`, `cdn_url`) default to None, "the app sends the bytes":
    a store that subclasses Storage (as local disk does) inherits that instead of spelling it out again.
    """

    def save(self, key: str, source: BinaryIO) -> int:
        """Stream `source` into the store under `key`; returns the bytes written."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A readable, seekable binary file; raises FileNotFoundError when the key is absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def stat(self, key: str) -> StoredObject:
        """Size and last write of `key`; raises FileNotFoundError when the key is absent."""
        ...

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with `prefix` (half-written files excluded), in no promised order."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file on this machine's disk, for sendfile-style delivery; None on remote stores."""
        ...

    def local_file(self, key: str) -> str | None:
        """`local_path` as a str (cheaper when thousands are needed at once); None on remote stores."""
        path = self.local_path(key)
        return None if path is None else str(path)

    def local_files(self, keys: Sequence[str]) -> list[str | None]:
        """`local_file` of each key, in order (a "Download all" checks every photo before its first byte)."""
        return [self.local_file(key) for key in keys]

    def presigned_url(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
        inline: bool = False,
        method: str = "GET",
    ) -> str | None:
        """A URL the store answers directly until it expires, naming the file `download_name`; None when the
        app must deliver the bytes itself (local disk). `method` is GET or HEAD: S3 signs the method too."""
        return None

    def public_url(self, key: str, *, download_name: str | None = None) -> str | None:
        """The object's CDN address when a CDN is configured (CDN_ENABLED), else None. With `download_name`,
        the edge sends it as the attachment's filename (rules in deploy/cdn.md). Only for what anyone with a
        share's link may see; signed (with a rolling expiry) when the CDN has a signing key."""
        return None

    def cdn_url(self, key: str, *, expires_in: int, download_name: str | None = None) -> str | None:
        """The object's CDN address signed to expire in `expires_in` seconds; None when the CDN cannot sign
        (no CDN or no CDN_SIGNING_KEY_ID): an unsigned, permanent CDN URL never reaches an original."""
        return None
