"""Signed CDN URLs (CloudFront's canned policy): a CDN address that stops working at a given time.

An unsigned CDN URL is a capability that never expires: whoever saw it keeps it, through a password, a revoked
share or downloads turned off. With CDN_SIGNING_KEY_ID and CDN_SIGNING_KEY_FILE set, the distribution accepts
only URLs signed by this key (a trusted key group, deploy/cdn.md) and the app signs each one after the share's
checks. Signing is local (RSA-SHA1, as CloudFront requires): no request to the CDN or the store.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..config import ConfigError


class CdnSigner:
    """Signs CDN URLs with one RSA key; the key never leaves this object and is never logged."""

    def __init__(self, key_id: str, private_key_pem: bytes) -> None:
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError):
            raise ConfigError("CDN_SIGNING_KEY_FILE is not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError("CDN_SIGNING_KEY_FILE must hold an RSA key (CloudFront signs with RSA)")
        # CloudFront verifies canned-policy signatures as RSA PKCS#1 v1.5 over SHA-1; it accepts nothing else.
        self._signer = CloudFrontSigner(
            key_id, lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CdnSigner | None:
        """The signer the settings describe, None when no key is set; one-line ConfigError when half set or
        unreadable."""
        key_id, key_file = config.get("CDN_SIGNING_KEY_ID"), config.get("CDN_SIGNING_KEY_FILE")
        if not key_id and not key_file:
            return None
        if not (key_id and key_file):
            raise ConfigError("CDN_SIGNING_KEY_ID and CDN_SIGNING_KEY_FILE go together: set both, or neither")
        try:
            pem = Path(key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"CDN_SIGNING_KEY_FILE={key_file!r} cannot be read ({exc.strerror})") from None
        return cls(key_id, pem)

    def sign(self, url: str, expires_at: int) -> str:
        """`url` with Expires, Signature and Key-Pair-Id appended; the CDN refuses it from `expires_at` on."""
        return self._signer.generate_presigned_url(url, date_less_than=datetime.fromtimestamp(expires_at, UTC))


def stable_expiry(ttl: int, now: float | None = None) -> int:
    """An expiry between `ttl` and 2 x `ttl` seconds away that stays the same for `ttl` seconds: everyone in
    that window gets the same signed URL for an image, so browsers and the edge keep one copy of it."""
    return (int(now if now is not None else time.time()) // ttl + 2) * ttl
