"""Bytes the app does not send itself: redirects to the object store or the CDN, and what an edge may cache.

The app still makes every decision (share checks, counting) and only then hands the visitor an address:

- photo downloads on s3/r2: a URL that expires after SIGNED_URL_TTL_SECONDS, naming the original file and
  type: presigned by the store, or with a CDN signing key the signed CDN address with `?download=<name>`
  (deploy/cdn.md); Range and resume then go there. Never a permanent URL: that would outlive the share's
  password, its revocation and its downloads-off switch. Made from the database alone (no store round trip):
  a photo's row exists only once its original is stored;
- gallery thumbnails and views of a share *without* a password: with s3/r2 and a CDN, the CDN address of the
  object itself; with local storage and a CDN in front of the app, the app's own route on CDN_BASE_URL. A
  password-protected share's images always go through the app's routes, which check the password.

Cache-Control, one rule per kind of answer:
- content-addressed objects (originals, thumbnails, views: a name is never reused) are immutable for a year,
  `private` in the bucket (storage/s3.py), `public` on the app's routes only for a share without a password
  when CDN_ENABLED, else `private` (a password-protected share's image must never sit in a shared cache,
  reachable by URL alone);
- anything for one visitor (pages, JSON, redirects, errors) is `private, no-store` or `private, no-cache`.

Counting a redirect: the store sends the bytes, so the app never sees the last one go out (phase 1's rule).
A GET that asks from the first byte (no Range, or `bytes=0-…`) counts as one download, started and finished,
when its redirect is issued; HEADs and requests for later ranges (a resume, a download manager's other parts)
do not. A download aborted after the redirect therefore counts; a resume against the presigned URL never
comes back here. No `request` here: callers hand over the WSGI environ.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from werkzeug.utils import redirect as _redirect
from werkzeug.wrappers import Response

from ..albums import photo_key, thumbnail_key
from ..models import Photo, ShareLink
from ..sizes import Source
from ..storage import get_storage
from .ranges import OnClose, redirect_delivery

PER_VISITOR = "private, no-store"
RENDITION_MAX_AGE = 365 * 24 * 3600


def cdn_enabled() -> bool:
    return bool(current_app.config.get("CDN_ENABLED"))


def cdn_base_url() -> str | None:
    """CDN_BASE_URL without its trailing slash, when CDN_ENABLED; None otherwise."""
    base = current_app.config.get("CDN_BASE_URL") if cdn_enabled() else None
    return base.rstrip("/") if base else None


def in_store(key: str) -> bool:
    """Whether `key` lives in a remote store (no file on this machine): then the store sends its bytes."""
    return get_storage().local_path(key) is None


def redirect(url: str) -> Response:
    """302 to `url`, never kept by a shared cache or the browser: it follows one visitor's checks."""
    response = _redirect(url, 302)
    response.headers["Cache-Control"] = PER_VISITOR
    response.headers["Referrer-Policy"] = "no-referrer"  # the share's token stays off the store's logs
    return response


def hand_over(url: str, *, environ: dict[str, Any], size: int, on_close: OnClose | None) -> Response:
    """The redirect to `url`, counted by `on_close` now (the app sees nothing of the transfer itself)."""
    response = redirect(url)
    if on_close is not None:
        on_close(redirect_delivery(environ, size))
    return response


def photo_redirect(photo: Source, *, environ: dict[str, Any], on_close: OnClose | None) -> Response | None:
    """The photo's download (its file in the variant asked for) as a redirect to an expiring URL (signed CDN
    or presigned), or None when the app sends it (local disk). Never asks the store anything: the photo's row
    says the file is there, so a hung store cannot hold this request (the visitor's client then meets the
    store itself)."""
    storage, key = get_storage(), photo.key
    if not in_store(key):
        return None
    method = environ.get("REQUEST_METHOD", "GET").upper()
    ttl = int(current_app.config["SIGNED_URL_TTL_SECONDS"])
    url = storage.cdn_url(key, expires_in=ttl, download_name=photo.filename) or storage.presigned_url(
        key,
        expires_in=ttl,
        download_name=photo.filename,
        content_type=photo.content_type,
        method="HEAD" if method == "HEAD" else "GET",
    )
    assert url is not None  # a remote store always has one
    return hand_over(url, environ=environ, size=photo.size, on_close=on_close)


def rendition_redirect(link: ShareLink, key: str) -> str | None:
    """The CDN address of a thumbnail or view in the bucket, or None when the app sends it itself: always for
    a password-protected share, whose images reach only visitors who passed its password on the app."""
    return get_storage().public_url(key) if link.password_hash is None else None


def edge_may_cache(link: ShareLink) -> bool:
    """Whether a shared cache (the CDN in front of the app) may keep this share's images: only behind a CDN
    the operator turned on, and only for a share without a password (anyone with the link sees it anyway)."""
    return cdn_enabled() and link.password_hash is None


def rendition_cache_control(response: Response, link: ShareLink) -> Response:
    """Immutable for a year (thumbnails and views are content-addressed); `public` only per `edge_may_cache`."""
    response.cache_control.no_cache = None
    response.cache_control.no_store = None
    response.cache_control.public = edge_may_cache(link)
    response.cache_control.private = not edge_may_cache(link)
    response.cache_control.max_age = RENDITION_MAX_AGE
    response.cache_control.immutable = True
    return response


def thumbnail_src(link: ShareLink, photo: Photo) -> str:
    """The gallery's <img src>: the object on the CDN (s3/r2 + CDN), the app's route on the CDN host (local
    storage + CDN), both for shares without a password only, or the app's own route. No store round trip."""
    return rendition_redirect(link, thumbnail_key(photo)) or _route(link, "share.thumbnail", photo)


def view_href(link: ShareLink, photo: Photo) -> str:
    """The large view's address. Views are made on first use, so in a bucket the object may not exist yet:
    the link goes to the app's route, which makes it and redirects to the CDN."""
    return _route(link, "share.view", photo)


def _route(link: ShareLink, endpoint: str, photo: Photo) -> str:
    path = url_for(endpoint, token=link.token, photo_id=photo.id)
    base = cdn_base_url()
    if base and edge_may_cache(link) and not in_store(photo_key(photo)):
        return base + path
    return path
