"""Signed download links for prepared archives: the link itself is the proof, no password needed.

A link names an album version and the share link it was issued through, and is valid for 24 hours. The
share's rules (revoked, expired, downloads allowed) still apply when it is used; a tampered link is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import AppError

SALT = "photoshare.prepared-download"
LINK_MAX_AGE = 24 * 3600
PATH_PREFIX = "/d/"


@dataclass(frozen=True)
class Grant:
    """What a download link allows: this share's visitor may fetch this archive version (of the album's plan
    `plan_ref`, plans.py: "" the whole album, else a selection and/or a part) in `variant` (sizes.Variant.key:
    "original", "large", "original-clean"), so the plan can be found again."""

    album_id: int
    version: str
    share_id: int
    issued_at: float | None = field(default=None, compare=False)  # Unix time, set when read from a link
    plan_ref: str = ""
    variant: str = "original"

    def seconds_left(self, now: float | None = None) -> int:
        """How long the link stays valid (a presigned URL handed out for it must not outlive it)."""
        issued = self.issued_at if self.issued_at is not None else time.time()
        return max(0, int(issued + LINK_MAX_AGE - (now or time.time())))


class LinkInvalid(AppError):
    status, error = 404, "invalid_link"
    message = _l("This download link is not valid. Check that you copied the whole address.")


class LinkGone(AppError):
    """The link was real but can no longer be used (expired, album changed, archive swept)."""

    status, error = 410, "link_expired"
    message = _l("This download link has expired. You can prepare the download again.")

    def __init__(self, message: str | None = None, *, error: str | None = None, share_id: int | None = None) -> None:
        super().__init__(message, error=error)
        self.share_id = share_id


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def sign(grant: Grant, *, issued_at: float | None = None) -> str:
    """The signed token; `issued_at` (a Unix time) re-issues a link dated in the past, e.g. in tests."""
    payload: list[object] = [grant.album_id, grant.version, grant.share_id]
    if grant.plan_ref or grant.variant != "original":
        payload.append(grant.plan_ref)  # links to the whole album's originals stay as they were
    if grant.variant != "original":
        payload.append(grant.variant)
    if issued_at is None:
        return _serializer().dumps(payload)
    serializer = _serializer()
    signer = serializer.make_signer()
    signer.get_timestamp = lambda: int(issued_at)  # type: ignore[method-assign]
    return signer.sign(serializer.dump_payload(payload)).decode()


def url(grant: Grant, *, issued_at: float | None = None) -> str:
    """Absolute, on BASE_URL (never the host a request came on), so it works in e-mails too."""
    return f"{current_app.config['BASE_URL']}{PATH_PREFIX}{sign(grant, issued_at=issued_at)}"


def expires_at(issued_at: float | None = None) -> datetime:
    issued = datetime.fromtimestamp(int(issued_at or time.time()), UTC)
    return issued + timedelta(seconds=LINK_MAX_AGE)


def load(token: str) -> Grant:
    """The grant a link carries; LinkInvalid when tampered or malformed, LinkGone when older than 24 hours."""
    try:
        payload, issued = _serializer().loads(token, max_age=LINK_MAX_AGE, return_timestamp=True)
    except SignatureExpired as exc:
        grant = _expired_grant(exc.payload)
        raise LinkGone(share_id=grant.share_id if grant else None) from None
    except (BadSignature, ValueError, TypeError, UnicodeError):
        raise LinkInvalid() from None
    grant = _grant(payload)
    if grant is None:
        raise LinkInvalid()
    return Grant(grant.album_id, grant.version, grant.share_id, issued_at=issued.timestamp(), plan_ref=grant.plan_ref,
                 variant=grant.variant)


def load_any_age(token: str) -> Grant:
    """The grant of a genuine link however old (to prepare its download again); LinkInvalid when tampered."""
    try:
        payload, issued = _serializer().loads(token, return_timestamp=True)
    except (BadSignature, ValueError, TypeError, UnicodeError):
        raise LinkInvalid() from None
    grant = _grant(payload)
    if grant is None:
        raise LinkInvalid()
    return Grant(grant.album_id, grant.version, grant.share_id, issued_at=issued.timestamp(), plan_ref=grant.plan_ref,
                 variant=grant.variant)


def _expired_grant(raw: object) -> Grant | None:
    """The grant of an expired link (its signature was good), to offer preparing the download again."""
    try:
        return _grant(_serializer().load_payload(raw))  # type: ignore[arg-type]
    except (BadSignature, ValueError, TypeError, UnicodeError):
        return None


def _grant(payload: object) -> Grant | None:
    try:
        album_id, version, share_id, *rest = payload  # type: ignore[misc]
    except (TypeError, ValueError):
        return None
    plan_ref = rest[0] if len(rest) >= 1 else ""
    variant = rest[1] if len(rest) == 2 else "original"
    if not (isinstance(album_id, int) and isinstance(version, str) and isinstance(share_id, int)
            and isinstance(plan_ref, str) and isinstance(variant, str) and len(rest) <= 2):
        return None
    return Grant(album_id, version, share_id, plan_ref=plan_ref, variant=variant)
