"""X-Accel-Redirect: once the app has made every check, nginx sends the file (SENDFILE_BACKEND=x-accel).

nginx streams it with sendfile and answers Range, If-Range and If-None-Match itself, against its own
validators: it drops the app's ETag and Last-Modified and makes an ETag from the file's mtime and size. So a
file handed over must keep its mtime for as long as its bytes stay the same, also when it is written again:

- originals (UPLOAD_DIR) are written once and never change;
- cached archives (ZIP_CACHE_DIR) are rebuilt (after a sweep, by another worker): before each hand-over the
  archive's mtime is set to a time derived from its app ETag, i.e. from the album version. Every build of a
  version then has the same mtime and size, hence the same nginx ETag, and a resume or If-Range made against
  one build is answered from another. A new version gets another mtime: its ETag differs, and If-Range gets
  the whole new archive, never a mix.

Temporary archives (TEMP_DIR) are never handed over: they are removed when the app's response closes, which
with X-Accel is before nginx opens them, and nginx cannot send a file still being written. The app streams a
"Download all" that is not in the ZIP cache while it is built, under the ETag and Last-Modified nginx will give
it, then links it into the cache (`streaming_options`): later requests, resumes included, go to nginx. The internal locations here and in deploy/nginx.conf must agree.
No `request` here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from flask import current_app, has_app_context
from werkzeug.wrappers import Response

from ..names import content_disposition
from . import cache
from .ranges import OnClose, nginx_delivery, nginx_etag

log = logging.getLogger(__name__)

# (setting naming the folder, nginx's internal location, whether files there are rebuilt and need a stable mtime)
LOCATIONS: tuple[tuple[str, str, bool], ...] = (
    ("UPLOAD_DIR", "/_accel/uploads/", False),
    ("ZIP_CACHE_DIR", "/_accel/zip-cache/", True),
)
# Stable mtimes fall in 2^28 seconds (8.5 years) from here: Last-Modified of an archive says nothing about
# when it was built, it names the version as the ETag does.
STABLE_EPOCH = 946684800  # 2000-01-01T00:00:00Z
STABLE_SPAN = 1 << 28


@dataclass(frozen=True)
class Handoff:
    """A file nginx will send: its internal URI and the validators nginx will compute for it."""

    uri: str
    size: int
    mtime: int

    @property
    def nginx_etag(self) -> str:
        """The ETag nginx sends for the file."""
        return nginx_etag(size=self.size, mtime=self.mtime)


def enabled() -> bool:
    return has_app_context() and str(current_app.config.get("SENDFILE_BACKEND") or "").strip().lower() == "x-accel"


def handoff(source: str | os.PathLike[str] | IO[bytes], *, etag: str) -> Handoff | None:
    """The hand-over of `source` (a path, or a file opened from one) to nginx, or None when nginx cannot
    serve it (X-Accel off, a file outside the internal locations, a stream without a path on disk).

    Sets a rebuilt file's mtime from `etag` first (see the module docstring); never reads the file.
    """
    if not enabled():
        return None
    path = _path_of(source)
    if path is None:
        return None
    for setting, prefix, rebuilt in LOCATIONS:
        root = Path(current_app.config[setting]).resolve()
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        stat = path.stat()
        mtime = int(stat.st_mtime)
        if rebuilt:
            mtime = stable_mtime(etag)
            if stat.st_mtime != mtime:
                os.utime(path, ns=(stat.st_atime_ns, mtime * 1_000_000_000))  # the ZIP cache counts use by atime
        return Handoff(uri=prefix + quote(relative.as_posix()), size=stat.st_size, mtime=mtime)
    return None


def handoff_response(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    environ: dict[str, Any],
    download_name: str,
    mimetype: str,
    etag: str,
    on_close: OnClose | None = None,
    as_attachment: bool = True,
) -> Response | None:
    """An empty response that has nginx send the file, or None when nginx cannot (see `handoff`); called by
    the seam (delivery.send_file) after every check, with the same arguments.

    Keeps what nginx keeps from it: Content-Type, Content-Disposition, Cache-Control. Closes `source` when it
    is a file (nginx opens the path itself). `on_close` runs once when this response closes, with the
    Delivery nginx is about to make (`ranges.nginx_delivery`): nginx's sending is not observed, so a download
    counts as finished when the request for its last byte is handed over, and as started when one from its
    first byte is.
    """
    try:
        handed = handoff(source, etag=etag)
    except OSError as exc:  # e.g. the mtime cannot be set: the app sends the file itself, correctly if slower
        log.warning("not handed to nginx: %s", exc)
        return None
    if handed is None:
        return None
    if not isinstance(source, (str, os.PathLike)):
        source.close()
    response = Response(mimetype=mimetype)
    response.headers["X-Accel-Redirect"] = handed.uri
    response.headers["Content-Disposition"] = content_disposition(download_name, as_attachment)
    response.cache_control.no_cache = True
    if on_close is not None:
        delivery = nginx_delivery(environ, size=handed.size, mtime=handed.mtime)

        def closed() -> None:
            try:
                on_close(delivery)
            except Exception:  # a server calling close() must never see our bookkeeping fail
                log.exception("download bookkeeping failed")

        response.call_on_close(closed)
    return response


def cached_archive(album_id: int, version: str) -> cache.CachedArchive | None:
    """The archive of this version (an album's, a selection's, a part's) in the ZIP cache, open and locked against removal; None on a miss.

    nginx cannot send a file that is still being written, so on a miss the app streams the archive while it is
    built (archive_files.archive_response with `streaming_options`), and puts it in the ZIP cache once whole:
    the next request for it is handed over, and the sweeper keeps it or lets it go like any prepared archive."""
    return cache.open_cached(album_id, version)


def streaming_options(album_id: int, version: str) -> dict[str, Any]:
    """What archive_response needs so that a streamed archive and its hand-over later are one resource: the
    ETag and Last-Modified nginx will give the cached file (`stable_mtime`, the archive's size), so a resume
    made against the stream is answered by nginx; and a hook that links the complete archive into the cache.
    The hook runs in the builder's thread (no app context), hence the path worked out here."""
    target = cache.archive_path(album_id, version)
    mtime = stable_mtime(f"zip-{version}")

    def publish(path: Path) -> None:
        try:
            os.link(path, target)
            os.utime(target, ns=(time.time_ns(), mtime * 1_000_000_000))  # nginx's ETag, as `handoff` sets it
        except FileExistsError:
            pass  # another worker published it first: the same bytes
        except OSError as exc:
            log.warning("archive of album %s not put in the ZIP cache (%s): served by the app", album_id, exc)

    return {
        "etag_of": lambda version, size: Handoff("", size, mtime).nginx_etag.strip('"'),
        "last_modified": datetime.fromtimestamp(mtime, tz=UTC),
        "on_complete": publish,
    }


def stable_mtime(etag: str) -> int:
    """A whole-second Unix time that is a pure function of `etag`: the same for every build of one version."""
    digest = hashlib.sha256(etag.encode()).digest()
    return STABLE_EPOCH + int.from_bytes(digest[:8], "big") % STABLE_SPAN


def _path_of(source: str | os.PathLike[str] | IO[bytes]) -> Path | None:
    if isinstance(source, (str, os.PathLike)):
        name: object = source
    else:
        name = getattr(source, "name", None)
        if not isinstance(name, (str, os.PathLike)):
            return None
        try:
            if os.fstat(source.fileno()).st_nlink == 0:  # removed since it was opened: nginx could not open it
                return None
        except (OSError, ValueError):
            return None
    path = Path(os.fspath(name))
    return path.resolve() if path.is_absolute() and path.is_file() else None
