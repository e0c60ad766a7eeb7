"""Background preparation of "Download all" archives: the job, where it runs, the ZIP cache, signed links.

`init_jobs(app)` removes temp archives a killed worker left, picks the runner (Celery when REDIS_URL or
CELERY_BROKER_URL is set, else the embedded pool), keeps the ZIP cache true to album changes, registers
`flask cleanup`, and turns an unreachable broker into a 503 a visitor can read.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response

from .. import activity, albums, plans
from ..delivery import cache
from ..errors import error_response
from ..extensions import db
from ..models import Album
from . import store
from .current import EXTENSION, get_runner
from .owner_mail import on_first_download
from .runners import CeleryRunner, EmbeddedRunner
from .service import (
    JobNotFound,
    JobsUnavailable,
    JobView,
    needs_preparation,
    open_prepared,
    prepare,
    status,
)
from .sweep import cleanup_command, remove_temp_leftovers, sweep

log = logging.getLogger(__name__)

__all__ = [
    "JobNotFound",
    "JobView",
    "JobsUnavailable",
    "get_runner",
    "init_jobs",
    "needs_preparation",
    "open_prepared",
    "prepare",
    "status",
    "sweep",
]


def init_jobs(app: Flask) -> None:
    """Attach the job runner and the cache's listeners to `app`; starts no thread (the first request does)."""
    if app.config["BROKER_URL"]:
        from .celery_tasks import make_celery

        app.extensions[EXTENSION] = CeleryRunner(app, make_celery(app))
    else:
        app.extensions[EXTENSION] = EmbeddedRunner(app)
    albums.album_changed.connect(_on_album_changed)  # module-level receiver: connecting again is a no-op
    activity.first_download.connect(on_first_download)  # the owner's "first download" e-mail, as a job
    app.cli.add_command(cleanup_command)
    _remove_leftovers_at_start(app)
    # The sweeper threads start with this process's first request, not with its first "Download all": a
    # fork after create_app (gunicorn) must start its own, and an app that never serves needs none.
    app.before_request(app.extensions[EXTENSION].ensure_started)
    if app.config["BROKER_URL"] or app.config["REDIS_URL"]:  # else neither client is imported (start-up time)
        for exc_class in _broker_errors():
            app.register_error_handler(exc_class, _broker_unavailable)


def _remove_leftovers_at_start(app: Flask) -> None:
    """Temp archives of a worker killed mid-download go when the app (re)starts, not when the same album
    version is next downloaded. Safe while other workers serve or build (they hold the archive's lock)."""
    try:
        remove_temp_leftovers(app.config)
    except OSError as exc:  # never a reason not to start: the periodic sweep tries again
        log.warning("could not remove leftover download-all temp files: %s", exc)


def _on_album_changed(sender: Any, album_id: int, old_version: str, **_extra: Any) -> None:
    """An album changed: its jobs of other versions end, its archives of other versions go."""
    if EXTENSION not in getattr(sender, "extensions", {}):
        return
    album = db.session.get(Album, album_id, populate_existing=True)
    keep = plans.live_versions(album) if album is not None else set()
    store.retire_album(album_id, keep, store.ALBUM_CHANGED)
    busy = cache.invalidate(album_id, keep)
    if busy:
        log.info("album %s changed; %d old archive(s) in use are removed by the next sweep", album_id, len(busy))


def _broker_errors() -> list[type[BaseException]]:
    errors: list[type[BaseException]] = []
    try:
        from redis.exceptions import RedisError

        errors.append(RedisError)
    except ImportError:
        pass
    try:
        from kombu.exceptions import OperationalError

        errors.append(OperationalError)
    except ImportError:
        pass
    return errors


def _broker_unavailable(exc: BaseException) -> Response:
    log.error("Redis or the Celery broker is unreachable: %s", exc)
    return error_response(503, JobsUnavailable.error, JobsUnavailable.message, {"Retry-After": "30"})
