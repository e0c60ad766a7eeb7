"""May this visitor download from this share now? The owner's download rules, one place for every kind.

`access.open_share` decides who may look; this decides who may take bytes home. Every download (a photo,
"Download all", a part or selection archive, a prepared link) and what starts one (preparing an archive)
passes `check`: downloads allowed, then the download PIN, then the visitor's e-mail, then the limits.
Nothing here reads the request: the view hands over a `DownloadAsk`.

Limits count slots, per link and per kind (photos; archives of any kind). A download takes a slot when its
response starts at the file's first byte (see `delivery.starts_download`), with one conditional
`UPDATE ... SET taken = taken + 1 WHERE taken < limit` once the response is made and before its first byte
leaves: the database serialises the updates, so parallel requests never take more than the limit. Taking the
slot at the last byte (a finished download) would be honest about broken-off downloads but comes too late to
refuse anyone; so a download that breaks off keeps its slot, and its resume (a Range after byte 0) takes none.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .access import DownloadsDisabled, pin_hash
from .attempts import Bucket, counted_check
from .errors import AppError
from .extensions import db
from .models import ShareLink

PIN_COOKIE_MAX_AGE = 30 * 24 * 3600
ARCHIVE_KINDS = frozenset({"album", "part", "selection", "prepared"})
KINDS = ARCHIVE_KINDS | {"photo"}


class DownloadPinRequired(AppError):
    status, error = 403, "download_pin_required"
    message = lazy_gettext(
        "Downloads from this link need a PIN. Enter the PIN the owner gave you, or send it in the "
        "X-Download-Pin header."
    )


class WrongDownloadPin(AppError):
    status, error, message = 403, "wrong_download_pin", lazy_gettext("That download PIN is not correct.")


class EmailRequired(AppError):
    status, error = 403, "email_required"
    message = lazy_gettext(
        "The owner asks for your e-mail address before downloads. Enter it in the album, or send it in the "
        "X-Visitor-Email header."
    )


class InvalidEmail(AppError):
    status, error, message = 400, "invalid_email", lazy_gettext("That e-mail address does not look right.")


class DownloadLimitReached(AppError):
    status, error = 403, "download_limit_reached"
    message = lazy_gettext(
        "This link has reached its download limit. Please contact the owner of the album for more downloads."
    )


@dataclass(frozen=True)
class DownloadAsk:
    """What a visitor brought to one download: the kind, a typed PIN or X-Download-Pin, the PIN cookie, and
    whether they gave an e-mail for this share."""

    kind: str
    client: str
    pin: str | None = None
    pin_cookie: str | None = None
    email_given: bool = False
    resuming: bool = False  # a HEAD or a Range after byte 0: never refused for a limit reached meanwhile


@dataclass(frozen=True)
class Pending:
    """What still stands between this visitor and a download, for the gallery to ask before the first one."""

    pin: bool
    email: bool
    photo_limit: bool
    album_limit: bool


def check(link: ShareLink, ask: DownloadAsk, *, secret_key: str) -> bool:
    """Raise the first rule this download breaks; True when a PIN was checked and right just now (the caller
    then gives the PIN cookie). A limit already reached refuses here, before any work, unless the visitor is
    resuming; the slot itself is taken by `take_slot` once the response is known to start a download."""
    if ask.kind not in KINDS:
        raise ValueError(f"unknown download kind {ask.kind!r}")
    if not link.downloads_allowed:
        raise DownloadsDisabled()
    pin_checked = _check_pin(link, ask, secret_key)
    if link.ask_email and not ask.email_given:
        raise EmailRequired()
    if not ask.resuming and limit_reached(link, ask.kind):
        raise DownloadLimitReached()
    return pin_checked


def pending(link: ShareLink, *, pin_cookie: str | None, email_given: bool, secret_key: str) -> Pending:
    """What the gallery must ask before downloads; reads cookies only, so it never counts a PIN guess."""
    return Pending(
        pin=link.download_pin_hash is not None and not pin_cookie_grants(link, pin_cookie, secret_key),
        email=link.ask_email and not email_given,
        photo_limit=limit_reached(link, "photo"),
        album_limit=limit_reached(link, "album"),
    )


def _check_pin(link: ShareLink, ask: DownloadAsk, secret_key: str) -> bool:
    """Counted before it is checked, per client and link and per link from anywhere: a 4-digit PIN has only
    10,000 values, so many addresses must not share out the guessing."""
    if link.download_pin_hash is None or pin_cookie_grants(link, ask.pin_cookie, secret_key):
        return False
    if not ask.pin:
        raise DownloadPinRequired()
    config = current_app.config
    buckets = [
        Bucket("download-pin", f"{ask.client}:{link.id}", config["PASSWORD_RATE_LIMIT"]),
        Bucket("download-pin-link", str(link.id), config["DOWNLOAD_PIN_LINK_RATE_LIMIT"]),
    ]
    if not counted_check(link.download_pin_hash, ask.pin.strip()[:16], buckets):
        raise WrongDownloadPin()
    return True


def _columns(kind: str) -> tuple[str, str]:
    """(slots taken, limit) column names for a kind: photos have their own; every archive kind shares one."""
    return ("album_downloads", "max_album_downloads") if kind in ARCHIVE_KINDS else ("photo_downloads", "max_photo_downloads")


def limit_reached(link: ShareLink, kind: str) -> bool:
    taken, limit = (getattr(link, name) for name in _columns(kind))
    return limit is not None and taken >= limit


def has_limit(link: ShareLink, kind: str) -> bool:
    return getattr(link, _columns(kind)[1]) is not None


def slot_column(kind: str) -> str:
    """The link's column counting downloads of `kind` against its limit."""
    return _columns(kind)[0]


def take_slot(link_id: int, kind: str) -> bool:
    """Take one download slot, atomically, in the request: False (nothing taken) when the limit is reached, so
    parallel requests never exceed it. Without a limit the slot is only counted, by the activity writer (the
    owner sees the numbers before setting one), and this write is spared."""
    taken, limit = (getattr(ShareLink, name) for name in _columns(kind))
    result = db.session.execute(
        db.update(ShareLink)
        .where(ShareLink.id == link_id, db.or_(limit.is_(None), taken < limit))
        .values({taken: taken + 1})
    )
    db.session.commit()
    return result.rowcount == 1


def set_limits(link: ShareLink, *, max_album: int | None, max_photo: int | None, reset: bool = False) -> None:
    """New limits (None: none); `reset` gives every slot back, e.g. for a client who lost their files."""
    for value in (max_album, max_photo):
        if value is not None and value < 1:
            raise ValueError("A limit is 1 or more; leave it empty for no limit.")
    link.max_album_downloads, link.max_photo_downloads = max_album, max_photo
    if reset:
        link.album_downloads = link.photo_downloads = 0
    db.session.commit()


def set_download_pin(link: ShareLink, pin: str | None) -> None:
    """A new PIN (None: downloads need none); either way every PIN cookie given before stops working."""
    link.download_pin_hash = pin_hash(pin) if pin else None
    link.download_pin_generation = (link.download_pin_generation or 0) + 1
    db.session.commit()


def normalize_email(raw: str) -> str:
    """The visitor's address in canonical form (never checked for deliverability: no DNS in a request)."""
    try:
        return validate_email(raw.strip()[:320], check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidEmail() from None


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="photoshare.download-pin")


def pin_cookie_name(link: ShareLink) -> str:
    return f"pin_{link.id}"


def pin_cookie_value(link: ShareLink, secret_key: str) -> str:
    """Proof that this browser gave the right PIN, bound to the PIN's generation: a new PIN voids it."""
    return _serializer(secret_key).dumps([link.token, link.download_pin_generation])


def pin_cookie_grants(link: ShareLink, cookie: str | None, secret_key: str) -> bool:
    if not cookie:
        return False
    try:
        token, generation = _serializer(secret_key).loads(cookie, max_age=PIN_COOKIE_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        return False
    return hmac.compare_digest(str(token), link.token) and hmac.compare_digest(
        str(generation), str(link.download_pin_generation)
    )
