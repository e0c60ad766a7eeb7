"""The gallery's tiles, rendered once and kept per process: most of a gallery page's time went to the tile
macro (names, sizes and labels of every photo in the visitor's language, five URLs each), for the same album
again and again, and under 50 clients that put the page's p99 over a second.

The key holds everything a tile shows: the link, the language, the link's settings and the download rules
still pending for this visitor (they change the buttons' addresses), the rendition sizes, and every photo's
own fields that reach the tile (a rename, a new web-size file or another order gives another key). Kept only
with local storage and no CDN, where a tile's image addresses are the app's own routes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping

from flask import render_template
from flask_babel import get_locale
from markupsafe import Markup

from .. import delivery
from ..models import ShareLink
from ..storage import LocalStorage, get_storage
from .gallery import PhotoPage

TILES_KEPT = 256  # pages of tiles; a 60-photo page is about 60 KB of HTML
_kept: OrderedDict[Hashable, Markup] = OrderedDict()
_lock = threading.Lock()


def tiles_html(link: ShareLink, page: PhotoPage, context: Mapping[str, object]) -> Markup:
    """`share/_tiles.html` for `page` with the tile `context` (pages._tile_context)."""
    key = _key(link, page, context)
    if key is not None:
        with _lock:
            html = _kept.get(key)
            if html is not None:
                _kept.move_to_end(key)
                return html
    html = Markup(render_template("share/_tiles.html", page=page, **context))  # noqa: S704 (autoescaped by Jinja)
    if key is not None:
        with _lock:
            _kept[key] = html
            while len(_kept) > TILES_KEPT:
                _kept.popitem(last=False)
    return html


def _key(link: ShareLink, page: PhotoPage, context: Mapping[str, object]) -> Hashable | None:
    if not isinstance(get_storage(), LocalStorage) or delivery.cdn_base_url():
        return None
    photos = tuple((p.id, p.original_filename, p.size, p.large_size, p.width, p.height, p.rendition_name)
                   for p in page.photos)
    return (link.id, link.token, str(get_locale()), context["downloads_allowed"], context["download_gated"],
            context["web_size_only"], context["thumb_size"], context["view_size"], page.offset, photos)
