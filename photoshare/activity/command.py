"""`flask --app wsgi share-activity TOKEN [--json]`: one share link's activity, for scripts and support."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from ..extensions import db
from ..models import ActivityEvent, ShareLink
from .report import Scope, event_json, totals


# A token may start with "-" (URL-safe base64, one in 64): it is the argument, not an unknown option.
@click.command("share-activity", context_settings={"ignore_unknown_options": True})
@click.argument("token")
@click.option("--json", "as_json", is_flag=True, help='Print {"visits", "downloads", "bytes", "events": [...]}.')
@with_appcontext
def share_activity_command(token: str, as_json: bool) -> None:
    """Print a share link's visits, downloads, bytes sent and its events (oldest first)."""
    from . import flush

    link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one_or_none()
    if link is None:
        raise click.ClickException("no share link has that token")
    flush()  # whatever this process still holds (nothing, usually: the servers' writers wrote theirs)
    scope = Scope(link.album_id, share_id=link.id)
    total = totals(scope)
    events = db.session.execute(
        db.select(ActivityEvent).where(*scope.event_filter()).order_by(ActivityEvent.at, ActivityEvent.id)
    ).scalars()
    if as_json:
        click.echo(json.dumps({"visits": total.visits, "downloads": total.downloads, "bytes": total.bytes,
                               "events": [event_json(event) for event in events]}))
        return
    click.echo(f"visits: {total.visits}, visitors: {total.visitors}, downloads: {total.downloads}, bytes: {total.bytes}")
    for event in events:
        detail = event.part or (f"photo {event.photo_id}" if event.photo_id else "")
        click.echo(f"{event.at:%Y-%m-%d %H:%M:%S} {event.kind:<9} {detail:<14} {event.bytes:>12} "
                   f"{'finished' if event.finished else ''}")
