"""How bytes reach a visitor: one seam for every download, whatever sends them.

A caller (a view, a job) says *what* to send: a photo, an archive plan (plans.py: the album's "Download all",
a selection, a part), a prepared archive, a rendition, or any file with its validators (strong ETag, Last-Modified, size, download name) and an on-close
callback. It never decides *how*: that is picked here, by configuration and by where the bytes are:

- gunicorn sends the file itself with sendfile(2) (sendfile.py); the Range and conditional rules every
  strategy follows live in ranges.py, which imports Werkzeug but never Flask;
- SENDFILE_BACKEND=x-accel: nginx sends a file under UPLOAD_DIR or ZIP_CACHE_DIR (accel.py);
- STORAGE_BACKEND=s3/r2: a redirect to a presigned or CDN URL (redirects.py; bucket.py for prepared ZIPs).

Behind the seam too: the shared temp archive of "Download all" (archive_files.py), the prepared-ZIP cache on
disk (cache.py) and in the bucket (bucket.py), and the signed links that reach a prepared ZIP (links.py).
This package sits below the views and jobs and above the archive plan, the album rules and storage: it
never imports `share`, `owner` or `jobs`, and never reads `request` (callers hand over the WSGI environ).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from flask import current_app
from flask_babel import gettext as _
from werkzeug.http import parse_etags, parse_range_header
from werkzeug.utils import send_file as werkzeug_send_file
from werkzeug.wrappers import Response

from .. import plans
from ..albums import ORIGINAL_VARIANT, photo_key, ready
from ..errors import NotFound
from ..images import InvalidImage
from ..models import Album, Photo, ShareLink
from ..plans import ArchivePlan
from ..sizes import Variant, source_of
from ..storage import get_storage
from . import accel, archive_files, bucket, cache, links, redirects, sendfile
from .ranges import Delivery, OnClose
from .redirects import PER_VISITOR, cdn_base_url, rendition_cache_control, thumbnail_src, view_href

Prepared = cache.CachedArchive | bucket.StoredArchive

__all__ = [
    "PER_VISITOR",
    "Delivery",
    "OnClose",
    "Prepared",
    "asks_from_first_byte",
    "cdn_base_url",
    "find_prepared",
    "has_prepared",
    "open_for_link",
    "prepared_size",
    "release_prepared",
    "send_album",
    "send_archive",
    "send_file",
    "send_photo",
    "send_prepared",
    "send_rendition",
    "starts_download",
    "thumbnail_src",
    "view_href",
]


def send_file(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    environ: dict[str, Any],
    download_name: str,
    mimetype: str,
    etag: str,
    last_modified: datetime,
    size: int | None = None,
    on_close: OnClose | None = None,
    as_attachment: bool = True,
    dated_if_range: bool = True,
) -> Response:
    """A file on this machine (a path, or an open file this function then owns) as a resumable download:
    handed to nginx when X-Accel is on and nginx can open it, else sent by gunicorn (sendfile.serve_file,
    whose docstring says what each argument promises)."""
    handed = accel.handoff_response(source, environ=environ, download_name=download_name, mimetype=mimetype,
                                    etag=etag, on_close=on_close, as_attachment=as_attachment)
    if handed is not None:
        return handed
    return sendfile.serve_file(source, environ=environ, download_name=download_name, mimetype=mimetype, etag=etag,
                               last_modified=last_modified, size=size, on_close=on_close,
                               as_attachment=as_attachment, dated_if_range=dated_if_range)


def send_photo(
    photo: Photo, *, environ: dict[str, Any], on_close: OnClose | None, variant: Variant = ORIGINAL_VARIANT
) -> Response:
    """The photo's file in `variant` (the original, its large JPEG, or either without location; see sizes.py)
    under its download name, ETag that file's sha256: a redirect to an expiring URL when it lives in a store,
    else the file. A photo without a location is its original, same ETag. Raises FileNotFoundError when a
    local file is missing."""
    source = source_of(ready([photo], variant)[0], variant, photo_key(photo))
    redirected = redirects.photo_redirect(source, environ=environ, on_close=on_close)
    if redirected is not None:
        return redirected
    storage = get_storage()
    return send_file(
        storage.local_path(source.key) or storage.open(source.key),
        environ=environ,
        download_name=source.filename,
        mimetype=source.content_type,
        etag=source.sha256,
        last_modified=photo.uploaded_at,
        size=source.size,
        on_close=on_close,
    )


def send_album(
    album: Album, *, environ: dict[str, Any], download_name: str, on_close: OnClose | None,
    variant: Variant = ORIGINAL_VARIANT,
) -> Response:
    """"Download all" of the album as it is now (never an empty one) in `variant`: `send_archive` of its whole
    plan."""
    return send_archive(plans.album_plan(album, variant), environ=environ, download_name=download_name,
                        on_close=on_close)


def send_archive(
    plan: ArchivePlan, *, environ: dict[str, Any], download_name: str, on_close: OnClose | None
) -> Response:
    """The archive of a plan (the album, a selection, a part, each in any variant: web size, location removed;
    never empty): its prepared ZIP when there is one (with X-Accel, from the ZIP cache, where nginx sends it
    with a stable mtime), else the shared temp archive, which starts at once and is read while it is built, once
    for every response that asks (archive_files.py). With X-Accel it streams under nginx's validators and is put
    in the ZIP cache once whole, for nginx next time. Everything is keyed by the plan's version, so each plan
    (and each variant of it) has its own ETag, bytes and files."""
    version = plan.version
    prepared = accel.cached_archive(plan.album_id, version) if accel.enabled() else find_prepared(plan)
    if prepared is not None:
        return send_prepared(prepared, plan, environ=environ, download_name=download_name, on_close=on_close)
    config = current_app.config
    options = (accel.streaming_options(plan.album_id, version) if accel.enabled()
               else {"last_modified": plan.last_modified})
    return archive_files.archive_response(
        plan.entries,
        version=version,
        download_name=download_name,
        environ=environ,
        temp_dir=config["TEMP_DIR"],
        lock_dir=config["LOCK_DIR"],
        open_source=get_storage().open,
        local_paths=get_storage().local_files,
        on_close=on_close,
        linger=config["ARCHIVE_LINGER_SECONDS"],
        check_seconds=config["ARCHIVE_CHECK_SECONDS"],
        **options,
    )


def send_prepared(
    prepared: Prepared, plan: ArchivePlan, *, environ: dict[str, Any], download_name: str,
    on_close: OnClose | None = None,
) -> Response:
    """A prepared archive as a resumable download, validators exactly as the temp archive's (the ETag is the
    plan version's). The response owns the file and its shared lock until the server closes it.

    An archive in the bucket is a 302 to a presigned URL instead (its lifetime is `prepared.url_seconds`),
    counted as `redirects.hand_over` says; Range and resume then go to the store."""
    if isinstance(prepared, bucket.StoredArchive):
        method = "HEAD" if environ.get("REQUEST_METHOD", "GET").upper() == "HEAD" else "GET"
        url = bucket.presigned_url(prepared, download_name=download_name, method=method)
        return redirects.hand_over(url, environ=environ, size=prepared.size, on_close=on_close)
    return send_file(
        prepared.file,
        environ=environ,
        download_name=download_name,
        mimetype="application/zip",
        etag=archive_files.archive_etag(plan.version),
        last_modified=plan.last_modified,
        size=prepared.size,
        on_close=on_close,
        dated_if_range=False,  # as archive_files.archive_response: only the ETag names an archive's bytes
    )


def find_prepared(plan: ArchivePlan) -> Prepared | None:
    """The prepared ZIP of the plan's version, if there is one (locked on disk, or fresh in the bucket)."""
    if bucket.in_bucket():
        return bucket.find_fresh(plan.album_id, plan.version)
    return cache.open_cached(plan.album_id, plan.version)


def open_for_link(grant: links.Grant) -> Prepared | None:
    """The prepared ZIP a signed link names (locked on disk, or in the bucket with a URL lifetime within the
    link's), or None when it is no longer kept."""
    return bucket.for_grant(grant) if bucket.in_bucket() else cache.open_cached(grant.album_id, grant.version)


def prepared_size(album_id: int, version: str) -> int | None:
    """The size of the version's prepared ZIP while new links may point at it; None when there is none."""
    if bucket.in_bucket():
        found = bucket.find_fresh(album_id, version)
        return found.size if found is not None else None
    try:
        return cache.archive_path(album_id, version).stat().st_size
    except FileNotFoundError:
        return None


def release_prepared(prepared: Prepared) -> None:
    """Let go of a prepared archive that will not be sent after all (its lock on disk); idempotent."""
    if isinstance(prepared, cache.CachedArchive):
        prepared.release()


def has_prepared(album_id: int, version: str) -> bool:
    """Whether the version's prepared ZIP is there for a link to point at (fresh, in the bucket)."""
    if bucket.in_bucket():
        return bucket.find_fresh(album_id, version) is not None
    return cache.has_archive(album_id, version)


def send_rendition(link: ShareLink, etag: str, ensure: Callable[[], str], *, environ: dict[str, Any]) -> Response:
    """A JPEG made by the app (`ensure` returns its storage key), with a strong ETag; in a bucket behind a
    CDN, a redirect to the CDN once it exists (shares without a password only). Cache-Control as
    `redirects.rendition_cache_control` says.

    A browser that already has it gets 304 before storage is touched at all. With SENDFILE_BACKEND=x-accel,
    nginx sends the bytes of a local file once the share is checked (and answers 304 to its own ETag).
    """
    if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains(etag):
        response = Response(status=304)
        response.set_etag(etag)
        return rendition_cache_control(response, link)
    storage = get_storage()
    try:
        key = ensure()
        cdn_url = redirects.rendition_redirect(link, key)
        if cdn_url is not None:
            return redirects.redirect(cdn_url)
        local = storage.local_path(key)
        source = local or storage.open(key)
    except FileNotFoundError:  # the original itself is gone: a broken image, not a server error
        raise NotFound(_("This photo's file is missing.")) from None
    except InvalidImage:  # an older original that cannot be decoded (damaged, or over MAX_IMAGE_PIXELS)
        raise NotFound(_("This photo cannot be shown.")) from None
    handed = None if local is None else accel.handoff_response(
        local, environ=environ, download_name=local.name, mimetype="image/jpeg", etag=etag, as_attachment=False)
    response = handed or werkzeug_send_file(source, environ, mimetype="image/jpeg", etag=etag, conditional=True)
    return rendition_cache_control(response, link)


def asks_from_first_byte(environ: dict[str, Any]) -> bool:
    """Whether a GET may begin a download: no Range, an unreadable one, or one from byte 0. A Range after byte
    0 is a resume or a download manager's later part (unless a stale If-Range turns it into the whole file,
    which only the response tells: `starts_download`)."""
    if environ.get("REQUEST_METHOD", "GET").upper() != "GET":
        return False
    ranges = parse_range_header(environ.get("HTTP_RANGE"))
    return ranges is None or any(start == 0 for start, _stop in ranges.ranges)


def starts_download(environ: dict[str, Any], response: Response) -> bool:
    """Whether this response, about to be sent, begins a download at the file's first byte (what takes a
    download-limit slot) rather than resuming one or being no download at all (HEAD, 304, 412, 416).

    What gunicorn sends is known from the response itself: a 200 is the whole file (whatever Range or a stale
    If-Range asked), a 206 starts where its Content-Range says. A hand-over to nginx (X-Accel) or a redirect to
    the store leaves Range to them: there the request's Range decides (none, an unreadable one, or one from
    byte 0 start a download)."""
    if environ.get("REQUEST_METHOD", "GET").upper() != "GET":
        return False
    status = response.status_code
    if "X-Accel-Redirect" in response.headers or (300 <= status < 400 and status != 304):
        return asks_from_first_byte(environ)
    if status == 206:
        content_range = response.content_range
        return content_range.start == 0 if content_range and content_range.start is not None else True
    return status == 200
