"""The file-like pieces of S3Storage: a seekable reader over ranged GETs, and the upload's helpers.

Apart from s3.py so that each stays short; nothing here knows about buckets' settings, URLs or the CDN.
"""

from __future__ import annotations

import io
import threading
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from .base import StorageError

TRANSIENT = (BotoCoreError, ClientError, Urllib3Error, OSError)  # what a store request may raise besides answers


class ObjectReader(io.RawIOBase):
    """One object as a seekable file: a single ranged GET streams sequential reads; a seek starts a new one.

    Each GET carries If-Match on the ETag seen at open, so a replaced object fails loudly instead of mixing.
    """

    def __init__(self, client: Any, bucket: str, key: str, size: int, etag: str | None) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._size, self._etag = int(size), etag
        self._pos = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._pos:
            self._drop_body()
            self._pos = position
        return position

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size or len(buffer) == 0:
            return 0
        try:
            if self._body is None:
                self._body = self._get_from(self._pos)
            data = self._body.read(min(len(buffer), self._size - self._pos))
        except TRANSIENT as exc:
            self._drop_body()
            raise StorageError(f"could not read {self._key}: {one_line(exc)}") from exc
        if not data:
            self._drop_body()
            raise StorageError(f"could not read {self._key}: the store ended the stream at byte {self._pos}")
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _get_from(self, start: int) -> Any:
        params: dict[str, str] = {"Bucket": self._bucket, "Key": self._key, "Range": f"bytes={start}-"}
        if self._etag:
            params["IfMatch"] = self._etag
        return self._client.get_object(**params)["Body"]

    def _drop_body(self) -> None:
        if self._body is not None:
            try:
                self._body.close()
            except Exception:  # noqa: BLE001,S110 (a broken connection is already gone; nothing to release)
                pass
            self._body = None


class KeepOpen:
    """The caller's source, which boto3 would close after an upload; the caller still seeks and reads it."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source

    def read(self, size: int = -1) -> bytes:
        return self._source.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._source.seek(offset, whence)

    def tell(self) -> int:
        return self._source.tell()

    def seekable(self) -> bool:
        return self._source.seekable()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


class Counter:
    """Bytes uploaded, from transfer callbacks (threads; negative amounts undo a retried part)."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, amount: int) -> None:
        with self._lock:
            self.value += amount


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
