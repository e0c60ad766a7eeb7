"""May this visitor see this share? One place for tokens, expiry, revocation, passwords and downloads.

Pages and API alike call `open_share`; nothing here reads the request: callers hand over what the
visitor supplied (a password, the access cookie).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Row, Select, and_, bindparam, select
from sqlalchemy.orm import joinedload
from werkzeug.security import generate_password_hash

from .attempts import Bucket, counted_check
from .errors import AppError, NotFound
from .extensions import db
from .i18n import supported, use_share_language
from .models import Album, Photo, ShareLink
from .sizes import LARGE, ORIGINAL, SIZES, Variant

ACCESS_COOKIE_MAX_AGE = 30 * 24 * 3600
TOKEN_BYTES = 24  # 192 bits; the URL form is 32 characters


class ShareNotFound(NotFound):
    message = _l("This share link does not exist. Check that you copied the whole address.")


class ShareGone(AppError):
    status, error = 410, "gone"


class PasswordRequired(AppError):
    status, error, message = 401, "password_required", _l("This album is protected by a password.")


class WrongPassword(AppError):
    status, error, message = 403, "wrong_password", _l("That password is not correct.")


class DownloadsDisabled(AppError):
    status, error, message = 403, "downloads_disabled", _l("The owner has not allowed downloads from this link.")


class BadSize(AppError):
    status, error = 400, "bad_size"
    message = _l("The size must be “original” or “large”.")


class OriginalsRefused(AppError):
    status, error = 403, "web_size_only"
    message = _l("This link allows web-size downloads only (size=large), not the original files.")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


# What new_token makes (URL-safe base64), within ShareLink.token's 64 characters.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")
PIN_SHAPE = re.compile(r"[0-9]{4,6}")  # ASCII digits only: `\d` would take other scripts' digits too


def create_share_link(
    album: Album,
    *,
    password: str | None = None,
    expires_at: datetime | None = None,
    downloads_allowed: bool = True,
    ask_email: bool = False,
    download_pin: str | None = None,
    max_album_downloads: int | None = None,
    max_photo_downloads: int | None = None,
    language: str | None = None,
    web_size_only: bool = False,
    strip_location: bool = True,
) -> ShareLink:
    """A new link with the owner's rules (download_rules.py enforces the PIN, e-mail and limits); `language` (one
    of i18n.LANGUAGES) fixes the language of its pages, None leaves it to visitors. ValueError for a PIN that is
    not 4 to 6 digits or a limit under 1."""
    if any(limit is not None and limit < 1 for limit in (max_album_downloads, max_photo_downloads)):
        raise ValueError("A download limit is 1 or more; leave it out for no limit.")
    link = ShareLink(
        album=album,
        token=new_token(),
        password_hash=generate_password_hash(password) if password else None,
        expires_at=expires_at,
        downloads_allowed=downloads_allowed,
        ask_email=ask_email,
        download_pin_hash=pin_hash(download_pin) if download_pin else None,
        max_album_downloads=max_album_downloads,
        max_photo_downloads=max_photo_downloads,
        language=supported(language),
        web_size_only=web_size_only,
        strip_location=strip_location,
    )
    db.session.add(link)
    db.session.commit()
    return link


def pin_hash(pin: str) -> str:
    """The stored form of a download PIN, hashed like passwords; ValueError unless it is 4 to 6 digits."""
    if not PIN_SHAPE.fullmatch(pin):
        raise ValueError("A download PIN is 4 to 6 digits.")
    return generate_password_hash(pin)


def share_url(token: str) -> str:
    """The link a visitor opens, always on BASE_URL (never the host this request happened to use)."""
    return f"{current_app.config['BASE_URL']}/s/{token}"


def revoke_share_link(link: ShareLink) -> None:
    """Close the link for good: visitors get 410 from now on; counters and history are kept."""
    link.revoked = True
    db.session.commit()


# Built once: every visitor request runs it, and building the statement and its cache key each time was a
# tenth of a photo request's CPU. With the album in the same query: the gallery, the album's JSON and its
# archives all read it.
_SHARE_BY_TOKEN = (
    select(ShareLink).options(joinedload(ShareLink.album, innerjoin=True)).where(ShareLink.token == bindparam("token"))
)


# A request for one photo (thumbnail, view, download) reads it with its share: one database round trip, not
# two. The photo only when it is in the link's album (else None, whatever its id).
_SHARE_AND_PHOTO = (
    select(ShareLink, Photo)
    .outerjoin(Photo, and_(Photo.album_id == ShareLink.album_id, Photo.id == bindparam("photo_id")))
    .where(ShareLink.token == bindparam("token"))
)


def find_share(token: str) -> ShareLink:
    """The active share link for `token`; 404 when unknown, 410 when expired or revoked."""
    row = _share_row(_SHARE_BY_TOKEN, token)
    return _active(None if row is None else row[0], token)


def find_share_photo(token: str, photo_id: int) -> tuple[ShareLink, Photo | None]:
    """`find_share`, and the photo `photo_id` when it is in the link's album (None otherwise), in one query."""
    row = _share_row(_SHARE_AND_PHOTO, token, photo_id=photo_id)
    return _active(None if row is None else row[0], token), None if row is None else row[1]


def _share_row(statement: Select[Any], token: str, **params: object) -> Row[Any] | None:
    """The row `statement` finds for `token`, None when there is none."""
    if not _TOKEN_SHAPE.fullmatch(token):  # never sent to the database: PostgreSQL refuses NUL in text (a 500)
        raise ShareNotFound()
    return db.session.execute(statement, {"token": token, **params}).one_or_none()


def _active(link: ShareLink | None, token: str) -> ShareLink:
    """`link` (the row found for `token`) when it may be opened now; else ShareNotFound or ShareGone."""
    if link is None or not hmac.compare_digest(link.token, token):
        raise ShareNotFound()
    use_share_language(link.language)  # before the rules below: a revoked or expired link's page speaks it too
    if link.revoked:
        raise ShareGone(_("The owner has revoked this link. Ask them for a new one."), error="revoked")
    if link.is_expired:
        raise ShareGone(_("This link has expired. Ask the owner for a new one."), error="expired")
    return link


def open_share(
    token: str, *, password: str | None, cookies: Mapping[str, str], secret_key: str, client: str
) -> ShareLink:
    """The share link, once every rule allows this visitor in; raises an AppError otherwise.

    A password is counted against PASSWORD_RATE_LIMIT per `client` (address) and link before it is checked
    (TooManyAttempts, 429, once over); a right one is given back, so only wrong guesses use the limit up."""
    return admit(find_share(token), password=password, cookies=cookies, secret_key=secret_key, client=client)


def admit(
    link: ShareLink, *, password: str | None, cookies: Mapping[str, str], secret_key: str, client: str
) -> ShareLink:
    """`link` when its password (if any) lets this visitor in: see `open_share`."""
    if link.password_hash is None or cookie_grants_access(link, cookies.get(access_cookie_name(link)), secret_key):
        return link
    if not password:
        raise PasswordRequired()
    bucket = Bucket("share-password", f"{client}:{link.id}", current_app.config["PASSWORD_RATE_LIMIT"])
    if not counted_check(link.password_hash, password, [bucket]):
        raise WrongPassword()
    return link


def require_downloads(link: ShareLink) -> None:
    if not link.downloads_allowed:
        raise DownloadsDisabled()


def download_variant(link: ShareLink, size: str | None) -> Variant:
    """What this share's download of `size` (`?size=`, None: the largest the link allows) holds: BadSize (400)
    for an unknown size, OriginalsRefused (403) for originals on a "web-size only" link; the location goes
    when the link says so."""
    if size is None:
        size = LARGE if link.web_size_only else ORIGINAL
    if size not in SIZES:
        raise BadSize()
    if size == ORIGINAL and link.web_size_only:
        raise OriginalsRefused()
    return Variant(size, strip_location=link.strip_location)


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="photoshare.share-access")


def access_cookie_name(link: ShareLink) -> str:
    return f"share_{link.id}"


def access_cookie_value(link: ShareLink, secret_key: str) -> str:
    """Proof that this browser gave the right password; bound to the current password, so changing it
    signs every visitor out."""
    return _serializer(secret_key).dumps([link.token, (link.password_hash or "")[-16:]])


def cookie_grants_access(link: ShareLink, cookie: str | None, secret_key: str) -> bool:
    if not cookie:
        return False
    try:
        token, fingerprint = _serializer(secret_key).loads(cookie, max_age=ACCESS_COOKIE_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        return False
    return hmac.compare_digest(str(token), link.token) and hmac.compare_digest(
        str(fingerprint), (link.password_hash or "")[-16:]
    )
