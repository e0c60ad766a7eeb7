"""The share API: album JSON and the download endpoints (one photo, or the whole album as a ZIP).

Every route opens the share through `visitor_share` (password, expiry, revocation, password guesses counted);
downloads also pass the owner's download rules (`download_gate.deliver`: allowed, PIN, e-mail, limits).

A download counts on the link when a response delivers the last byte of the file (`Delivery.finished_file`),
checked as the server closes the body. So a full download counts once; a download resumed with `curl -C -`,
`wget -c` or a browser counts once, on the request that completes it; a download manager's 8 parallel ranges
count once (only one range ends at the last byte); HEADs, 304s, 416s, disconnects and the leading ranges of a
split download never count. Counting requests that start at byte 0 would count aborted downloads instead.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from .. import albums, delivery
from ..access import download_variant, require_downloads
from ..errors import AppError
from ..extensions import limiter
from ..models import Photo, ShareLink
from ..sizes import LARGE, ORIGINAL
from . import api_bp, archives, visitor_photo, visitor_share
from .download_gate import deliver

# Per client address across all links: each request may build an archive. The default (config) leaves room
# for a download manager splitting the archive into 8 ranges and resuming each a few times.
download_all_limit = limiter.limit(
    lambda: current_app.config["DOWNLOAD_ALL_RATE_LIMIT"], scope="download-all"
)


class PhotoUnavailable(AppError):
    status, error = 500, "photo_unavailable"
    message = _l("This photo's file could not be read on the server. Please let the album owner know.")


@api_bp.get("/<token>")
def album(token: str) -> Response:
    """The shared album: totals, version (changes with the archive's bytes) and every photo's download URL."""
    link = visitor_share(token)
    response = jsonify(album_json(link, token))
    response.headers["Cache-Control"] = delivery.PER_VISITOR
    return response


@api_bp.get("/<token>/download/<int:photo_id>")
def download_photo(token: str, photo_id: int) -> Response:
    """The original file under its original name, resumable (Range, If-Range), ETag from its sha256.
    With s3/r2, after the same checks, a 302 to a presigned (or CDN) URL: the store sends the bytes."""
    link, photo = visitor_photo(token, photo_id)  # another album's photo is a 404 like an unknown id
    require_downloads(link)
    variant = download_variant(link, request.args.get("size"))
    try:
        return deliver(link, "photo", lambda on_close: delivery.send_photo(
            photo, environ=request.environ, on_close=on_close, variant=variant), photo_id=photo_id, size=variant.size)
    except FileNotFoundError:
        key = albums.photo_key(photo)
        current_app.logger.error("photo %s of album %s is missing from storage (%s)", photo.id, photo.album_id, key)
        raise PhotoUnavailable() from None


@api_bp.get("/<token>/download-all")
@download_all_limit
def download_all(token: str) -> Response:
    """Every photo in one byte-stable ZIP, named after the album, or with `?part=N` part N of it (404 when the
    album has no such part, 400 when N is not a number); the same version always gives the same bytes, so
    ranges and resumes from any worker fit together."""
    link = visitor_share(token)
    require_downloads(link)
    variant = download_variant(link, request.args.get("size"))
    album = link.album
    if album.version == albums.EMPTY_VERSION:
        raise albums.EmptyAlbum()
    plan = archives.requested_plan(album, part=request.args.get("part"), variant=variant)
    return deliver(link, "part" if plan.part else "album", lambda on_close: delivery.send_archive(
        plan, environ=request.environ, download_name=archives.download_name(plan), on_close=on_close),
        part=str(plan.part) if plan.part else None, size=variant.size)


def album_json(link: ShareLink, token: str) -> dict[str, Any]:
    album = link.album
    # Every photo's URL is this one with its id: one url_for, not three per photo (a third of the answer's time).
    base = current_app.config["BASE_URL"]
    prefix = base + url_for("share_api.download_photo", token=token, photo_id=0)[:-1]
    sizes = [LARGE] if link.web_size_only else [ORIGINAL, LARGE]
    default = f"?size={LARGE}" if link.web_size_only else ""
    photos = [
        {
            "id": photo.id,
            "filename": photo.original_filename,
            "size": photo.size,
            "width": photo.width,
            "height": photo.height,
            "content_type": photo.content_type,
            "download_url": f"{prefix}{photo.id}{default}",
            "sizes": {size: _size_json(photo, size, prefix) for size in sizes},
        }
        for photo in album.photos
    ]
    return {
        "title": album.title,
        "photo_count": len(photos),
        "total_bytes": sum(photo["size"] for photo in photos),
        "version": album.version,
        "updated_at": album.updated_at.isoformat() + "Z",
        "downloads_allowed": link.downloads_allowed,
        "web_size_only": link.web_size_only,
        "location_removed": link.strip_location,
        "download_all_url": base + url_for("share_api.download_all", token=token,
                                           size=LARGE if link.web_size_only else None),
        # The same archive in parts of at most ARCHIVE_PART_MB (in the link's default size), listed only when
        # there is more than one.
        "archives": archives.archives_json(token, listed) if photos and (listed := archives.listed_plan(link)) else [],
        "photos": photos,
    }


def _size_json(photo: Photo, size: str, prefix: str) -> dict[str, Any]:
    """One size of a photo: its download URL, and its bytes when known (the large JPEG of an older photo is
    made on its first download). The location-free copy differs from the original by a few bytes only."""
    nbytes = photo.size if size == ORIGINAL else photo.large_size
    return {"bytes": nbytes, "download_url": f"{prefix}{photo.id}?size={size}"}
