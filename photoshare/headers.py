"""Security headers on every response the app makes: pages, JSON, downloads, redirects, 304s and errors.

One `after_request` rather than headers per view, so that a new route cannot forget them. What they stop:

- Content-Security-Policy: scripts and styles only from our own files (no inline script, no inline `style=`,
  no third-party origin); images also from the operator's own CDN when one is configured (thumbnails live
  there). `frame-ancestors 'none'` and X-Frame-Options: no page, such as the one-button album delete, can be
  framed and clicked through by another site.
- X-Content-Type-Options: nosniff: an uploaded file is never run as a script or a page by a guessing browser.
- Referrer-Policy: same-origin, so a share page's token never leaves in a Referer; a response that already
  set something stricter (`no-referrer` on redirects to the store) keeps it.
- Strict-Transport-Security, only when the site is reached over HTTPS (`request.is_secure`, which believes
  X-Forwarded-Proto only with PROXY_FIX_HOPS) or BASE_URL is https: browsers ignore it over plain HTTP, and a
  development server on http://localhost must never be pinned to HTTPS.

Nothing here reads the body or changes the status.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from .delivery import cdn_base_url

# Everything not listed is refused (default-src 'none'): no plugins, frames, workers or media.
_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "connect-src": "'self'",
    "font-src": "'self'",
    "manifest-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}


def content_security_policy(cdn_url: str | None = None) -> str:
    """The policy, with the CDN's origin (never a path) allowed for images when thumbnails come from there."""
    policy = dict(_POLICY)
    origin = _origin(cdn_url) if cdn_url else None
    if origin:
        policy["img-src"] += f" {origin}"
    return "; ".join(f"{name} {value}" for name, value in policy.items())


def secure_site() -> bool:
    """Whether this response reaches the browser over HTTPS."""
    return request.is_secure or str(current_app.config["BASE_URL"]).startswith("https://")


def add_security_headers(response: Response) -> Response:
    """Sets the headers on any response; keeps a stricter Referrer-Policy a view chose."""
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(cdn_base_url())
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Referrer-Policy", "same-origin")
    max_age = int(current_app.config["HSTS_MAX_AGE"])
    if max_age > 0 and secure_site():
        headers["Strict-Transport-Security"] = f"max-age={max_age}"
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"
