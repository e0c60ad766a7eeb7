"""Objects in an S3 bucket (AWS S3, Cloudflare R2, MinIO and other S3-compatible stores), through boto3.

Bytes never pass through memory whole: uploads go out in multipart parts, reads are ranged GETs streamed in
chunks. Errors come back as the app's words: FileNotFoundError for a missing key, StorageError for a store
that cannot be reached or refuses, ConfigError (one line) when the store is unusable at start-up.
"""

from __future__ import annotations

import errno
import io
import mimetypes
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from urllib3.exceptions import HTTPError as Urllib3Error

from ..config import ConfigError
from ..names import content_disposition  # one rule for filenames, local and remote
from .base import Storage, StorageError, StoredObject
from .breaker import COOL_DOWN_SECONDS, Breaker
from .cdn import CdnSigner, stable_expiry
from .s3_io import TRANSIENT, Counter, KeepOpen, ObjectReader, one_line

MiB = 1024 * 1024
READ_BUFFER = 256 * 1024  # what one read from the network asks for; seeks inside it cost no request
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live
# Keys under these prefixes name their content (a random name per upload), so their bytes never change.
IMMUTABLE_PREFIXES = ("originals/", "thumbs/", "views/")
# Nothing in the bucket is `public`: which share an object belongs to (password or not) is decided per request,
# long after upload, so no shared cache may keep an object on the bucket's word. A browser may keep an image;
# the edge caches open shares' thumbnails and views by its own rule (deploy/cdn.md).
IMMUTABLE_CACHE_CONTROL = "private, max-age=31536000, immutable"
OTHER_CACHE_CONTROL = "private, no-cache"  # prepared ZIPs (rewritten under the same key), health probes
_MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


class S3Storage(Storage):
    """The Storage interface on one bucket, plus presigned and CDN URLs for delivery without the app."""

    def __init__(
        self,
        bucket: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        cdn_base_url: str | None = None,
        cdn_signer: CdnSigner | None = None,
        cdn_url_ttl: int = 3600,
        multipart_chunk_bytes: int = 8 * MiB,
        max_attempts: int = 2,
        connect_timeout: float = 2,
        read_timeout: float = 4,
        cool_down: float = COOL_DOWN_SECONDS,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.cdn_base_url = cdn_base_url.rstrip("/") if cdn_base_url else None
        self.cdn_signer, self.cdn_url_ttl = cdn_signer, cdn_url_ttl
        self._session = boto3.session.Session(
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None, region_name=region
        )
        self._client_options: dict[str, Any] = {
            "signature_version": "s3v4",  # presigned URLs carry X-Amz-Expires; required by R2 and new regions
            # S3-compatible stores live at one host; bucket-in-hostname needs DNS they rarely have.
            "s3": {"addressing_style": "path" if endpoint_url else "auto"},
        }
        if endpoint_url:
            # Some S3-compatible stores reject the newer default checksum headers; send them only when needed.
            self._client_options |= {
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        self.client = self._make_client(connect_timeout, read_timeout, max_attempts)
        Breaker(cool_down).attach(self.client)  # a store that stopped answering is not waited for again at once
        self.transfer = TransferConfig(
            multipart_threshold=multipart_chunk_bytes, multipart_chunksize=multipart_chunk_bytes, max_concurrency=4
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any], backend: str = "s3") -> S3Storage:
        """The store the app's settings describe; `r2` is S3 at Cloudflare's endpoint, region "auto"."""
        if not config.get("S3_BUCKET"):
            raise ConfigError(f"STORAGE_BACKEND={backend} needs S3_BUCKET (the bucket's name)")
        if backend == "r2" and not config.get("S3_ENDPOINT_URL"):
            raise ConfigError("STORAGE_BACKEND=r2 needs S3_ENDPOINT_URL (https://<account id>.r2.cloudflarestorage.com)")
        if config.get("CDN_ENABLED") and not config.get("CDN_BASE_URL"):
            raise ConfigError("CDN_ENABLED=true needs CDN_BASE_URL (e.g. https://cdn.example.com)")
        cdn = bool(config.get("CDN_ENABLED"))
        return cls(
            config["S3_BUCKET"],
            region="auto" if backend == "r2" else (config.get("S3_REGION") or "us-east-1"),
            endpoint_url=config.get("S3_ENDPOINT_URL") or None,
            access_key=config.get("S3_ACCESS_KEY"),
            secret_key=config.get("S3_SECRET_KEY"),
            cdn_base_url=config.get("CDN_BASE_URL") if cdn else None,
            cdn_signer=CdnSigner.from_config(config) if cdn else None,
            cdn_url_ttl=int(config.get("SIGNED_URL_TTL_SECONDS") or 3600),
            multipart_chunk_bytes=int(config.get("S3_MULTIPART_CHUNK_MB") or 8) * MiB,
            max_attempts=int(config.get("S3_MAX_ATTEMPTS") or 2),
            connect_timeout=float(config.get("S3_CONNECT_TIMEOUT") or 2),
            read_timeout=float(config.get("S3_READ_TIMEOUT") or 4),
        )

    def _make_client(self, connect_timeout: float, read_timeout: float, max_attempts: int) -> Any:
        """A client whose every request ends within max_attempts x (connect + read) + backoff: a store that
        accepts connections and then never answers must cost seconds, not the minutes of botocore's defaults.
        `total_max_attempts` counts the first try (botocore's `max_attempts` would add one more)."""
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": max(1, max_attempts)},
            **self._client_options,
        )
        return self._session.client("s3", endpoint_url=self.endpoint_url, config=config)

    def check(self) -> None:
        """Fail fast, in one line, when the bucket cannot be used: unreachable, missing, or refused."""
        where = f"bucket {self.bucket!r}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise ConfigError(f"no credentials for S3 {where}: set S3_ACCESS_KEY and S3_SECRET_KEY") from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise ConfigError(f"S3 {where} does not exist (create it or fix S3_BUCKET)") from None
            if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}:
                raise ConfigError(f"S3 {where} refused the credentials (check S3_ACCESS_KEY and S3_SECRET_KEY)") from None
            raise ConfigError(f"S3 {where} answered with an error: {one_line(exc)}") from None
        except (BotoCoreError, Urllib3Error, OSError) as exc:
            raise ConfigError(f"S3 {where} is unreachable: {one_line(exc)} (check S3_ENDPOINT_URL and the network)") from None

    # The Storage interface.

    def save(self, key: str, source: BinaryIO) -> int:
        """Stream `source` up in parts of `multipart_chunk_bytes` (one put below that); never reads it whole."""
        written = Counter()
        extra = {
            "ContentType": mimetypes.guess_type(key)[0] or "application/octet-stream",
            "CacheControl": IMMUTABLE_CACHE_CONTROL if key.startswith(IMMUTABLE_PREFIXES) else OTHER_CACHE_CONTROL,
        }
        try:
            self.client.upload_fileobj(
                KeepOpen(source), self.bucket, key, ExtraArgs=extra, Config=self.transfer, Callback=written.add
            )
        except TRANSIENT as exc:
            raise StorageError(f"could not store {key}: {one_line(exc)}") from exc
        return written.value

    def open(self, key: str) -> BinaryIO:
        head = self._head(key)
        raw = ObjectReader(self.client, self.bucket, key, head["ContentLength"], head.get("ETag"))
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=READ_BUFFER))

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except TRANSIENT as exc:
            raise StorageError(f"could not delete {key}: {one_line(exc)}") from exc

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except FileNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def stat(self, key: str) -> StoredObject:
        head = self._head(key)
        return StoredObject(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        """Listed a page (1,000 keys) at a time; never the whole bucket in memory."""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"], int(item["Size"]), item["LastModified"].timestamp())
        except TRANSIENT as exc:
            raise StorageError(f"could not list {prefix}: {one_line(exc)}") from exc

    def local_path(self, key: str) -> Path | None:
        return None

    # Delivery without the app.

    def presigned_url(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
        inline: bool = False,
        method: str = "GET",
    ) -> str:
        """A GET (or HEAD) URL that expires after `expires_in` seconds; the store answers with the given
        filename and type.

        Made locally (no request to the store). Range requests and resumes then go to the store itself. S3
        signs the method: a HEAD needs a URL signed for HEAD (a GET URL answers it 403).
        """
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be 1..{MAX_PRESIGN_SECONDS} seconds, not {expires_in}")
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if download_name:
            params["ResponseContentDisposition"] = content_disposition(download_name, as_attachment=not inline)
        elif inline:
            params["ResponseContentDisposition"] = "inline"
        if content_type:
            params["ResponseContentType"] = content_type
        operation = "head_object" if method.upper() == "HEAD" else "get_object"
        return self.client.generate_presigned_url(operation, Params=params, ExpiresIn=int(expires_in))

    def public_url(self, key: str, *, download_name: str | None = None) -> str | None:
        """The object's address on the CDN (CDN_ENABLED), or None: then deliver through `presigned_url`. Only
        for what anyone with the share's link may see (thumbnails and views of a share without a password).

        With a signing key it is signed to expire within 1-2 x SIGNED_URL_TTL_SECONDS (`stable_expiry`: the
        same URL for everyone meanwhile, so it stays cacheable). `download_name` travels as
        `?download=<percent-encoded UTF-8>`; the edge rule in deploy/cdn.md turns it into
        `Content-Disposition: attachment; filename*=UTF-8''<that>` (the bucket cannot: the key is random).
        """
        if not self.cdn_base_url:
            return None
        url = self._cdn_address(key, download_name)
        return self.cdn_signer.sign(url, stable_expiry(self.cdn_url_ttl)) if self.cdn_signer else url

    def cdn_url(self, key: str, *, expires_in: int, download_name: str | None = None) -> str | None:
        """The object's CDN address signed to expire in `expires_in` seconds, or None when the CDN cannot sign
        (no CDN, or no CDN_SIGNING_KEY_ID): then only a presigned URL may reach an original."""
        if not (self.cdn_base_url and self.cdn_signer):
            return None
        return self.cdn_signer.sign(self._cdn_address(key, download_name), int(time.time()) + int(expires_in))

    def _cdn_address(self, key: str, download_name: str | None) -> str:
        url = f"{self.cdn_base_url}/{quote(key)}"
        return f"{url}?download={quote(download_name, safe='')}" if download_name else url

    def _head(self, key: str) -> dict[str, Any]:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING_CODES:
                raise FileNotFoundError(errno.ENOENT, "no such object in the store", key) from None
            raise StorageError(f"could not look up {key}: {one_line(exc)}") from exc
        except TRANSIENT as exc:
            raise StorageError(f"could not look up {key}: {one_line(exc)}") from exc
