"""Activity recorded against a real gunicorn: every kind of download and the gallery visit report to one place,
a split or resumed download is one download, addresses are truncated, User-Agents become families, nothing is
lost on a clean shutdown and a failing database write never fails a request.

One gunicorn serves the module; each test makes its own album and link, and reads the events back from the
database the server writes to (the writer flushes every 0.2 s here)."""

from __future__ import annotations

import http.client
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from photoshare import activity
from photoshare.extensions import db
from photoshare.jobs import sweep
from photoshare.models import ActivityDay, ActivityEvent, Photo, ShareLink, utcnow
from tests.conftest import Site, database_settings, module_instance
from tests.jobs_support import http as http_request
from tests.jobs_support import poll_status, wait_until

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.1 Mobile/15E148 Safari/604.1")
FAST_WRITER = {"ACTIVITY_FLUSH_SECONDS": "0.2", "DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute", "PROXY_FIX_HOPS": "1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory, postgres_server) -> Iterator[Site]:
    site = Site.start(module_instance(tmp_path_factory, "activity"), database_settings(postgres_server), env=FAST_WRITER)
    yield site
    site.stop()


def get(site: Site, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def events(site: Site, token: str) -> list[ActivityEvent]:
    """In the order they happened (two workers' writers may write them in either order)."""
    with site.app.app_context():
        link_id = db.session.execute(db.select(ShareLink.id).where(ShareLink.token == token)).scalar_one()
        rows = db.session.execute(
            db.select(ActivityEvent).where(ActivityEvent.share_id == link_id).order_by(ActivityEvent.at, ActivityEvent.id)
        ).scalars().all()
        db.session.expunge_all()
        return list(rows)


def wait_for_events(site: Site, token: str, count: int, timeout: float = 15) -> list[ActivityEvent]:
    """The link's events once there are `count` of them (the writer is asynchronous); fails on more."""
    found = wait_until(lambda: (rows := events(site, token)) and len(rows) >= count and rows, timeout=timeout,
                       what=f"{count} activity events")
    assert len(found) == count, [(e.kind, e.bytes, e.finished) for e in found]
    return found


def totals(site: Site, token: str) -> activity.report.Totals:
    with site.app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        return activity.report.totals(activity.report.Scope(link.album_id, share_id=link.id))


def photo_of(site: Site, album_id: int) -> Photo:
    with site.app.app_context():
        photo = db.session.execute(db.select(Photo).where(Photo.album_id == album_id).order_by(Photo.id)).scalars().first()
        db.session.expunge(photo)
        return photo


def test_gallery_visit_is_recorded_once_per_visitor_session_and_every_view_counts(site):
    album_id, token = site.album(photos=1)
    status, headers, _ = get(site, f"/s/{token}", {"User-Agent": SAFARI_IPHONE})
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    for _ in range(2):  # the same visitor again: views, not visits
        assert get(site, f"/s/{token}", {"Cookie": cookie, "User-Agent": SAFARI_IPHONE})[0] == 200
    assert get(site, f"/s/{token}", {"User-Agent": CHROME_WINDOWS})[0] == 200  # another visitor

    first, second = wait_for_events(site, token, 2)
    assert (first.kind, second.kind) == ("visit", "visit")
    assert (first.browser, first.os) == ("Mobile Safari", "iOS")
    assert (second.browser, second.os) == ("Chrome", "Windows")
    assert first.visitor and second.visitor and first.visitor != second.visitor
    assert first.album_id == album_id and first.bytes == 0 and not first.finished
    with site.app.app_context():
        wait_until(lambda: db.session.execute(db.select(ShareLink.view_count).where(ShareLink.token == token))
                   .scalar_one() == 4 or db.session.rollback(), what="4 views")
    assert totals(site, token) == activity.report.Totals(visits=2, visitors=2, downloads=0, bytes=0)


def test_photo_and_album_downloads_are_recorded_with_kind_photo_size_and_bytes(site):
    album_id, token = site.album(photos=2)
    photo = photo_of(site, album_id)
    status, _, body = get(site, f"/api/share/{token}/download/{photo.id}")
    assert status == 200 and len(body) == photo.size
    status, _, archive = get(site, f"/api/share/{token}/download-all")
    assert status == 200

    photo_event, album_event = wait_for_events(site, token, 2)
    assert (photo_event.kind, photo_event.photo_id, photo_event.size) == ("photo", photo.id, "original")
    assert (photo_event.bytes, photo_event.finished) == (photo.size, True)
    assert (album_event.kind, album_event.photo_id, album_event.bytes, album_event.finished) == (
        "album", None, len(archive), True)
    assert totals(site, token).downloads == 2


def test_web_size_downloads_are_recorded_with_size_large(site):
    album_id, token = site.album(photos=2)
    photo = photo_of(site, album_id)
    assert get(site, f"/api/share/{token}/download/{photo.id}?size=large")[0] == 200
    assert get(site, f"/api/share/{token}/download-all?size=large")[0] == 200
    reply = http_request("POST", f"{site.server.url}/api/share/{token}/selections",
                         data={"photo_ids": [photo.id], "size": "large"})
    assert reply.status == 201 and reply.json()["photo_size"] == "large"
    path = reply.json()["download_url"].removeprefix(site.server.url)
    assert get(site, path)[0] == 200

    events = wait_for_events(site, token, 3)
    assert [(e.kind, e.size, e.finished) for e in events] == [
        ("photo", "large", True), ("album", "large", True), ("selection", "large", True)]


def test_a_prepared_download_link_is_recorded_as_prepared(site):
    _, token = site.album(photos=2)
    reply = http_request("POST", f"{site.server.url}/api/share/{token}/prepare-download")
    assert reply.status in (200, 202), reply.body
    data = reply.json() if reply.status == 200 else poll_status(site.server.url, token, reply.json()["job_id"])
    url = data["download_url"]
    status, _, archive = get(site, url[url.index("/d/"):])
    assert status == 200

    [event] = wait_for_events(site, token, 1)
    assert (event.kind, event.bytes, event.finished, event.size) == ("prepared", len(archive), True, "original")


def test_eight_parallel_ranges_count_one_download_and_every_byte(site):
    _album_id, token = site.album(photos=4, side=600)
    _, headers, _ = get(site, f"/api/share/{token}/download-all", {"Range": "bytes=0-0"})
    size = int(headers["Content-Range"].rsplit("/", 1)[1])
    wait_for_events(site, token, 1)  # that probe: one byte, started, not finished
    step = -(-size // 8)

    def part(i: int) -> int:
        status, _, body = get(site, f"/api/share/{token}/download-all",
                              {"Range": f"bytes={i * step}-{min(size, (i + 1) * step) - 1}"})
        assert status == 206
        return len(body)

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(part, range(8))) == size

    rows = wait_for_events(site, token, 9)
    assert sum(row.finished for row in rows) == 1
    assert totals(site, token).downloads == 1
    assert totals(site, token).bytes == size + 1


def test_a_resumed_photo_download_counts_once(site):
    album_id, token = site.album(photos=1, side=500)
    photo = photo_of(site, album_id)
    half = photo.size // 2
    assert get(site, f"/api/share/{token}/download/{photo.id}", {"Range": f"bytes=0-{half - 1}"})[0] == 206
    assert get(site, f"/api/share/{token}/download/{photo.id}", {"Range": f"bytes={half}-"})[0] == 206

    start, end = wait_for_events(site, token, 2)
    assert (start.bytes, start.finished, end.bytes, end.finished) == (half, False, photo.size - half, True)
    assert totals(site, token) == activity.report.Totals(visits=0, visitors=0, downloads=1, bytes=photo.size)


def test_addresses_are_kept_as_their_24_or_48_network_only(site):
    album_id, token = site.album(photos=1)
    photo = photo_of(site, album_id)
    get(site, f"/s/{token}", {"X-Forwarded-For": "203.0.113.77"})
    get(site, f"/api/share/{token}/download/{photo.id}", {"X-Forwarded-For": "2001:db8:1234:5678:9abc::42"})

    visit, download = wait_for_events(site, token, 2)
    assert visit.network == "203.0.113.0/24"
    assert download.network == "2001:db8:1234::/48"
    log = site.server.log.read_text()
    assert "203.0.113.77" not in log and "9abc::42" not in log


def test_visitor_email_from_the_session_is_kept_with_the_events(site):
    """The visitor e-mail form (another part of the app) keeps the address in the session under "visitor_email"."""
    album_id, token = site.album(photos=1)
    photo = photo_of(site, album_id)
    with site.app.test_request_context():
        from flask import session

        session["visitor_email"] = "client@example.com"
        session["visitor_id"] = "v-test"
        cookie = site.app.session_interface.get_signing_serializer(site.app).dumps(dict(session))
    get(site, f"/api/share/{token}/download/{photo.id}", {"Cookie": f"session={cookie}"})

    [event] = wait_for_events(site, token, 1)
    assert (event.email, event.visitor) == ("client@example.com", "v-test")


def test_a_failing_database_write_never_fails_the_request_and_the_events_are_written_later(site):
    """The events table is renamed away under the running server: every write fails until it is back."""
    _, token = site.album(photos=1)

    def rename(old: str, new: str) -> None:
        with site.app.app_context():
            db.session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
            db.session.commit()

    rename("activity_events", "activity_events_away")
    try:
        assert all(get(site, f"/s/{token}")[0] == 200 for _ in range(3))
        wait_until(lambda: "could not write" in site.server.log.read_text(), what="the logged write failure")
    finally:
        rename("activity_events_away", "activity_events")
    assert [event.kind for event in wait_for_events(site, token, 3)] == ["visit"] * 3


def test_nothing_queued_is_lost_when_gunicorn_stops_right_after_the_requests(tmp_path, database_config):
    """The writer never flushes on its own here (an hour): only the shutdown hook can write the events."""
    instance = tmp_path / "instance"
    instance.mkdir()
    site = Site.start(instance, database_config, env={"ACTIVITY_FLUSH_SECONDS": "3600"}, workers=2)
    album_id, token = site.album(photos=1)
    photo = photo_of(site, album_id)
    for _ in range(20):
        assert get(site, f"/s/{token}")[0] == 200
        assert get(site, f"/api/share/{token}/download/{photo.id}")[0] == 200
    assert events(site, token) == []  # still queued in the workers

    site.server.process.send_signal(signal.SIGTERM)
    site.server.process.wait(timeout=30)

    rows = events(site, token)
    assert len(rows) == 40 and sum(row.kind == "visit" for row in rows) == 20
    site.stop()  # gunicorn has stopped already: closes the app's database connections


def test_old_events_fold_into_daily_totals_that_totals_and_charts_still_count(app, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id)
    with app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        old, recent = utcnow() - timedelta(days=200), utcnow() - timedelta(days=1)
        for at, kind, finished, visitor in [(old, "visit", False, "a"), (old, "photo", True, "a"),
                                            (old, "album", False, "a"), (recent, "photo", True, "b")]:
            db.session.add(ActivityEvent(at=at, share_id=link.id, album_id=album_id, kind=kind, bytes=100,
                                         finished=finished, visitor=visitor))
        db.session.commit()
        scope = activity.report.Scope(album_id)
        before = activity.report.totals(scope)

        assert sweep(revive=False).activity_folded == 3  # the sweeper's pass (embedded thread, beat, cleanup)

        assert db.session.execute(db.select(db.func.count()).select_from(ActivityEvent)).scalar_one() == 1
        [day] = db.session.execute(db.select(ActivityDay)).scalars().all()
        assert (day.day, day.visits, day.visitors, day.downloads, day.bytes) == (old.date(), 1, 1, 1, 300)
        assert activity.report.totals(scope) == before == activity.report.Totals(1, 2, 2, 400)
        per_day = dict(activity.report.downloads_per_day(scope, old.date(), recent.date()))
        assert per_day[old.date()] == 1 and per_day[recent.date()] == 1 and sum(per_day.values()) == 2
        assert activity.fold_old() == 0  # nothing left to fold: the sweep can run as often as it likes


def test_share_activity_cli_prints_totals_and_events_as_json(app, runner, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id)
    with app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        at = utcnow().replace(microsecond=0)
        activity.record(activity.Event(at=at, share_id=link.id, album_id=album_id, kind="visit", visitor_id="v"))
        activity.record(activity.Event(at=at, share_id=link.id, album_id=album_id, kind="photo", photo_id=7,
                                       size="original", bytes=1234, finished=True, visitor_id="v"))
    result = runner.invoke(args=["share-activity", token, "--json"])
    assert result.exit_code == 0, result.output
    import json

    assert json.loads(result.output) == {
        "visits": 1, "downloads": 1, "bytes": 1234,
        "events": [
            {"at": at.isoformat() + "Z", "kind": "visit", "photo_id": None, "part": None, "size": None, "bytes": 0,
             "finished": False},
            {"at": at.isoformat() + "Z", "kind": "photo", "photo_id": 7, "part": None, "size": "original",
             "bytes": 1234, "finished": True},
        ],
    }
    unknown = runner.invoke(args=["share-activity", "nope", "--json"])
    assert unknown.exit_code != 0 and "Error:" in unknown.output and "Traceback" not in unknown.output


def test_share_activity_cli_takes_a_token_that_starts_with_a_dash(app, runner, make_album, make_share):
    """URL-safe base64 starts with "-" once in 64 tokens: the owner pastes it as it is, before or after --json."""
    token = make_share(make_album(count=1))
    dashed = "-U" + token[2:]
    with app.app_context():
        db.session.execute(db.update(ShareLink).where(ShareLink.token == token).values(token=dashed))
        db.session.commit()
    for args in (["share-activity", dashed, "--json"], ["share-activity", "--json", dashed]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        assert '"visits": 0' in result.output
    plain = runner.invoke(args=["share-activity", dashed])
    assert plain.exit_code == 0 and plain.output.startswith("visits: 0"), plain.output


@pytest.mark.parametrize("address, network", [
    ("203.0.113.77", "203.0.113.0/24"), ("::ffff:198.51.100.9", "198.51.100.0/24"),
    ("2001:db8:1234:5678:9abc::42", "2001:db8:1234::/48"), ("fe80::1%eth0", "fe80::/48"),
    ("", None), (None, None), ("not-an-address", None), ("999.1.1.1", None),
])
def test_addresses_are_truncated_to_their_network_and_nothing_else_passes(address, network):
    assert activity.truncate_address(address) == network


def test_user_agents_become_families_and_unknown_ones_none():
    assert activity.families(CHROME_WINDOWS) == ("Chrome", "Windows")
    assert activity.families("curl/8.5.0") == ("curl", None)
    assert activity.families("") == (None, None)
    assert activity.families("x" * 100_000) == (None, None)  # cut before parsing: no time spent on junk
