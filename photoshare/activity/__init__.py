"""Activity: what visitors did through each share link, for the owner (photoshare/owner/activity_views.py),
the `share-activity` command and the owner's e-mails (jobs/owner_mail.py).

The request path calls `record` only (views build the `Event`, since they know the request); the rules are
here and know nothing of Flask's request: events.py (values, address truncation, User-Agent families),
recorder.py (the queue and its writer thread), store.py (batched writes, first-download claim, retention
fold), report.py (totals, days, top photos, event pages), chart.py (the server-rendered SVG).
"""

from __future__ import annotations

from flask import Flask, current_app

from .events import DOWNLOAD_KINDS, KINDS, VIEW, VISIT, Event, Visitor, families, truncate_address
from .recorder import EXTENSION, Recorder, flush_all
from .store import first_download, fold_before, retention_cutoff

__all__ = [
    "DOWNLOAD_KINDS",
    "KINDS",
    "VIEW",
    "VISIT",
    "Event",
    "Recorder",
    "Visitor",
    "families",
    "first_download",
    "flush",
    "flush_all",
    "fold_before",
    "fold_old",
    "init_app",
    "record",
    "recorder",
    "retention_cutoff",
    "truncate_address",
]


def init_app(app: Flask) -> None:
    """One recorder per app; its writer thread starts with the process's first event (after gunicorn's fork)."""
    app.extensions[EXTENSION] = Recorder(app)
    from .command import share_activity_command

    app.cli.add_command(share_activity_command)


def recorder(app: Flask | None = None) -> Recorder:
    return (app or current_app).extensions[EXTENSION]


def record(event: Event, app: Flask | None = None) -> None:
    """Queue `event` for the writer: costs the request an append, never a database write, never an error."""
    recorder(app).record(event)


def flush(app: Flask | None = None) -> int:
    """Write what is queued now (tests, the sweeper, shutdown)."""
    return recorder(app).flush()


def fold_old(app: Flask | None = None) -> int:
    """Fold events older than ACTIVITY_RETENTION_DAYS into daily totals (the sweeper); returns events folded."""
    config = (app or current_app).config
    flush(app)  # what is still queued belongs to today: written first so that nothing waits a whole sweep
    return fold_before(retention_cutoff(float(config["ACTIVITY_RETENTION_DAYS"]))).events
