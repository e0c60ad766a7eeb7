"""Visitor pages: the gallery of a share link, its password gate, and the images the gallery shows.

Every route goes through `visitor_share` (the access rules, which count password guesses): any route that
reads a password (`?password=` included) is a place to guess one.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import albums, delivery, download_rules, plans
from ..access import (
    ACCESS_COOKIE_MAX_AGE,
    PasswordRequired,
    WrongPassword,
    access_cookie_name,
    access_cookie_value,
    download_variant,
)
from ..errors import error_response, wants_json
from ..i18n import time_left
from ..jobs import needs_preparation
from ..models import ShareLink, utcnow
from ..sizes import LARGE, ORIGINAL
from . import archives, download_gate, gallery, pages_bp, record_visit, visitor_photo, visitor_share
from .tiles import tiles_html

PART_ENTRY_MAX = 2 * 46 + 2 * 255 * 4  # more than a ZIP's fixed bytes per entry, whatever its name
PAGE_HEADERS = {"Cache-Control": "private, no-cache", "Referrer-Policy": "same-origin", "X-Robots-Tag": "noindex"}


@pages_bp.get("/s/<token>", endpoint="gallery")
def gallery_page(token: str) -> Response:
    """The album as the visitor sees it: one page of tiles, totals, download buttons, the viewer."""
    link = visitor_share(token)
    if "password" in request.args:  # a ?password= link: keep the password out of the address bar and history
        target = url_for("share.gallery", token=token, page=request.args.get("page", type=int))
        return _grant_access(redirect(target, 303), link)
    totals = gallery.album_totals(link.album_id)
    page = gallery.photo_page(link.album_id, _page_number(), current_app.config["GALLERY_PAGE_SIZE"], totals.photo_count)
    rules = download_gate.pending(link)
    tile_context = _tile_context(link)
    html = render_template(
        "share/gallery.html",
        link=link,
        album=link.album,
        totals=totals,
        page=page,
        download_all_url=_gated(token, download_all_url(token, totals, LARGE if link.web_size_only else None), rules),
        all_sizes=[gallery.SizeChoice(choice.size, _gated(token, choice.url, rules), choice.nbytes)
                   for choice in download_all_sizes(link, totals)],
        parts=[{**part, "url": _gated(token, str(part["url"]), rules)} for part in archive_parts(link, totals)],
        download_rules=rules,
        gallery_url=url_for("share.gallery", token=token),
        expires_in=time_left(link.expires_at, utcnow()) if link.expires_at else None,
        tiles=tiles_html(link, page, tile_context),
        **tile_context,
    )
    record_visit(link)  # queued for the activity writer: no database write in the request
    return _grant_access(Response(html, headers=PAGE_HEADERS), link)


@pages_bp.post("/s/<token>")
def unlock(token: str) -> Response:
    """The password form: the right password earns this browser a cookie for this share only."""
    link = visitor_share(token)
    return _grant_access(redirect(url_for("share.gallery", token=token), 303), link)


@pages_bp.get("/s/<token>/photos")
def photos_fragment(token: str) -> Response:
    """The next page's tiles as an HTML fragment, for "Load more" and infinite scrolling."""
    link = visitor_share(token)
    totals = gallery.album_totals(link.album_id)
    page = gallery.photo_page(link.album_id, _page_number(), current_app.config["GALLERY_PAGE_SIZE"], totals.photo_count)
    html = tiles_html(link, page, _tile_context(link))
    return Response(html, headers={**PAGE_HEADERS, "X-Page": str(page.number), "X-Pages": str(page.pages)})


@pages_bp.get("/s/<token>/thumb/<int:photo_id>")
def thumbnail(token: str, photo_id: int) -> Response:
    """A grid thumbnail, made again from the original if it went missing."""
    link, photo = visitor_photo(token, photo_id)
    etag = f"{photo.sha256}-t{current_app.config['THUMBNAIL_SIZE']}"
    return _send_rendition(link, etag, lambda: albums.ensure_thumbnail(photo))


@pages_bp.get("/s/<token>/view/<int:photo_id>")
def view(token: str, photo_id: int) -> Response:
    """The large view (VIEW_SIZE on its long side) the viewer shows; made on first use, then kept."""
    link, photo = visitor_photo(token, photo_id)
    etag = f"{photo.sha256}-v{current_app.config['VIEW_SIZE']}"
    return _send_rendition(link, etag, lambda: albums.ensure_view(photo))


@pages_bp.errorhandler(PasswordRequired)
@pages_bp.errorhandler(WrongPassword)
def password_form(exc: PasswordRequired | WrongPassword) -> Response:
    """Instead of an error page, the password form again, with the reason when a password was wrong."""
    if wants_json():
        return error_response(exc.status, exc.error, exc.message)
    error = exc.message if isinstance(exc, WrongPassword) else None
    if error is None and request.method == "POST":
        error = _("Please enter the password.")
    token = (request.view_args or {}).get("token", "")
    html = render_template("share/password.html", token=token, error=error)
    return Response(html, status=exc.status, headers={**PAGE_HEADERS, "Cache-Control": "no-store"})


def download_photo_url(token: str, photo_id: int, size: str | None = None) -> str:
    return url_for("share_api.download_photo", token=token, photo_id=photo_id, size=size)


def download_all_url(token: str, totals: gallery.AlbumTotals, size: str | None = None) -> str:
    """The ZIP itself, or for a large album the page that prepares it with a progress bar."""
    if needs_preparation(totals.photo_count, totals.total_bytes):
        return url_for("share.prepare_page", token=token, size=size)
    return url_for("share_api.download_all", token=token, size=size)


def download_all_sizes(link: ShareLink, totals: gallery.AlbumTotals) -> list[gallery.SizeChoice]:
    """"Download all" in every size the link allows, the default first: web size alone on a "web-size only"
    link."""
    large = gallery.SizeChoice(LARGE, download_all_url(link.token, totals, LARGE), totals.large_bytes)
    if link.web_size_only:
        return [large]
    return [gallery.SizeChoice(ORIGINAL, download_all_url(link.token, totals), totals.total_bytes), large]


def archive_parts(link: ShareLink, totals: gallery.AlbumTotals) -> list[dict[str, object]]:
    """The album's parts for "Download all" (empty when it fits in one). Loads the whole album only when its
    photos alone could come near ARCHIVE_PART_MB; the gallery stays one page's worth of work otherwise."""
    limit = plans.part_limit()
    if not link.downloads_allowed or limit <= 0 or totals.total_bytes + totals.photo_count * PART_ENTRY_MAX < limit:
        return []
    whole = archives.listed_plan(link)  # the link's default size: web size on a "web-size only" link
    if whole is None:
        return []
    variant = download_variant(link, None)
    return [
        {"part": part.part, "parts": part.parts, "photo_count": part.photo_count, "size": part.size,
         "url": url_for("share.prepare_page", token=link.token, part=part.part, **variant.query)
         if needs_preparation(part.photo_count, part.photo_bytes)
         else url_for("share_api.download_all", token=link.token, part=part.part, **variant.query)}
        for part in plans.parts_of(whole)
    ]


def _tile_context(link: ShareLink) -> dict[str, object]:
    """What the tile macro needs, for the full page and the "Load more" fragment alike."""
    config, rules = current_app.config, download_gate.pending(link)
    return {
        "token": link.token,
        "downloads_allowed": link.downloads_allowed and not rules.photo_limit,
        "download_gated": rules.pin or rules.email,  # buttons lead to a form page: no `download` attribute
        "web_size_only": link.web_size_only,
        "thumb_size": config["THUMBNAIL_SIZE"],
        "view_size": config["VIEW_SIZE"],
        "rendition_box": gallery.rendition_box,
        "tile_ratio_class": gallery.tile_ratio_class,
        # The tile's own download is the link's default size; the viewer offers web size beside it.
        "download_url": lambda token, photo_id, size=LARGE if link.web_size_only else None: _gated(
            token, download_photo_url(token, photo_id, size), rules),
        "thumb_src": lambda photo: delivery.thumbnail_src(link, photo),  # on the CDN when there is one
        "view_href": lambda photo: delivery.view_href(link, photo),
    }


def _gated(token: str, url: str, rules: download_rules.Pending) -> str:
    """A download button's address: the download itself, or first the form for what the owner asks (PIN,
    e-mail), which then goes on to it."""
    return download_gate.before_download_url(token, url) if rules.pin or rules.email else url


def _page_number() -> int:
    return request.args.get("page", 1, type=int) or 1


def _grant_access(response: Response, link: ShareLink) -> Response:
    """Give (or refresh) the signed cookie that opens this one share; a no-op for links without a password."""
    if link.password_hash is None:
        return response
    response.set_cookie(
        access_cookie_name(link),
        access_cookie_value(link, current_app.config["SECRET_KEY"]),
        max_age=ACCESS_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response


def _send_rendition(link: ShareLink, etag: str, ensure: Callable[[], str]) -> Response:
    """A JPEG made by the app (`ensure` returns its storage key); how it is sent is the delivery layer's."""
    return delivery.send_rendition(link, etag, ensure, environ=request.environ)
