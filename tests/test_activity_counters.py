"""The link's counters (downloads started and finished, download-limit slots) are added by the activity writer in
its batches, not by the request: under 50 clients on SQLite a counter UPDATE in every download request queued
behind every other writer and put the gallery's p99 over 3 s. Only a link with a limit takes its slot in the
request, atomically, since a full limit must refuse before any byte is sent.

Statements are watched on the app's own engine while the request runs, then the writer is flushed by hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from photoshare import activity
from photoshare.extensions import db
from photoshare.models import ActivityEvent, Album, ShareLink


@pytest.fixture
def database_config(database_config, request):
    """The usual database, with the test's own settings on top (indirect parametrisation)."""
    return database_config | getattr(request, "param", {})


@contextmanager
def share_link_writes(app) -> Iterator[list[str]]:
    """The UPDATE / INSERT statements on share_links the app runs inside the block."""
    seen: list[str] = []

    def watch(_conn, _cursor, statement: str, *_args) -> None:
        words = statement.split(None, 3)
        if words and words[0].upper() in ("UPDATE", "INSERT") and "share_links" in statement.split("SET")[0]:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", watch)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", watch)


def counters(app, token: str) -> tuple[int, int, int, int]:
    with app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        return link.download_started_count, link.download_count, link.photo_downloads, link.album_downloads


def download(client, url: str):
    """A whole download: the body read to its end (what counts it as finished), then closed."""
    response = client.get(url)
    assert response.data
    response.close()
    return response


def first_photo_url(app, album_id: int, token: str) -> str:
    with app.app_context():
        photo_id = db.session.get(Album, album_id).photos[0].id
    return f"/api/share/{token}/download/{photo_id}"


def test_a_download_without_a_limit_writes_no_counter_in_the_request(app, client, make_album, make_share):
    album_id = make_album()
    token = make_share(album_id)
    activity.flush(app)
    with share_link_writes(app) as writes:
        assert download(client, first_photo_url(app, album_id, token)).status_code == 200
        assert download(client, f"/api/share/{token}/download-all").status_code == 200
    assert writes == []
    assert counters(app, token) == (0, 0, 0, 0)  # nothing yet: queued for the writer

    assert activity.flush(app) == 2
    assert counters(app, token) == (2, 2, 1, 1)
    activity.flush(app)
    assert counters(app, token) == (2, 2, 1, 1)  # written once


def test_a_download_with_a_limit_takes_its_slot_in_the_request_and_the_writer_does_not_add_it_again(
        app, client, make_album, make_share):
    album_id = make_album()
    token = make_share(album_id, max_photo_downloads=2)
    url = first_photo_url(app, album_id, token)
    with share_link_writes(app) as writes:
        download(client, url)
    assert len(writes) == 1 and "photo_downloads" in writes[0]
    assert counters(app, token)[2] == 1  # taken at once: a parallel request sees it
    activity.flush(app)
    assert counters(app, token) == (1, 1, 1, 0)

    download(client, url)
    refused = client.get(url)
    assert refused.status_code == 403 and refused.get_json()["error"] == "download_limit_reached"
    activity.flush(app)
    assert counters(app, token) == (2, 2, 2, 0)  # the refused request counts nowhere


@pytest.mark.parametrize("database_config", [{"ACTIVITY_ENABLED": False}], indirect=True)
def test_with_activity_switched_off_no_event_is_kept_but_the_counters_still_are(app, client, make_album, make_share):
    album_id = make_album()
    token = make_share(album_id)
    assert client.get(f"/s/{token}").status_code == 200
    download(client, first_photo_url(app, album_id, token))
    activity.flush(app)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(ActivityEvent)).scalar_one() == 0
        assert db.session.execute(db.select(ShareLink.view_count).where(ShareLink.token == token)).scalar_one() == 1
    assert counters(app, token) == (1, 1, 1, 0)
