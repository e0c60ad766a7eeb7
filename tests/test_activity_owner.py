"""The owner's activity pages over HTTP to a real gunicorn: totals, chart, top photos, the filtered and paged
event list, the CSV export, the daily-digest switch, and nobody else's albums (404)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import requests

from photoshare import activity
from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import ActivityDay, ActivityEvent, Album, Photo, ShareLink, utcnow
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, csrf_token


def logged_in(server, email: str = OWNER_EMAIL, password: str = OWNER_PASSWORD) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{server.url}/login")
    reply = session.post(f"{server.url}/login", data={"email": email, "password": password,
                                                       "csrf_token": csrf_token(page.text)})
    assert reply.status_code == 200 and "/login" not in reply.url
    return session


@pytest.fixture
def activity_album(app, make_album, make_share):
    """An album with two links and a known history: (album id, [link ids], [photo ids])."""
    album_id = make_album(count=3, title="Wedding")
    tokens = [make_share(album_id), make_share(album_id)]
    with app.app_context():
        links = [db.session.execute(db.select(ShareLink).where(ShareLink.token == t)).scalar_one().id for t in tokens]
        photos = db.session.execute(db.select(Photo.id).where(Photo.album_id == album_id).order_by(Photo.id)).scalars().all()
        now = utcnow().replace(microsecond=0)
        rows = [
            (now - timedelta(days=2), links[0], "visit", None, 0, False, "a", "Firefox", "Linux", "198.51.100.0/24", None),
            (now - timedelta(days=2), links[0], "photo", photos[0], 1000, True, "a", "Firefox", "Linux", "198.51.100.0/24", None),
            (now - timedelta(days=1), links[0], "photo", photos[0], 1000, True, "a", "Firefox", "Linux", "198.51.100.0/24", None),
            (now - timedelta(days=1), links[1], "visit", None, 0, False, "b", "Chrome", "Android", "2001:db8::/48", "=cmd@example.com"),
            (now, links[1], "photo", photos[1], 500, False, "b", "Chrome", "Android", "2001:db8::/48", "=cmd@example.com"),
            (now, links[1], "album", None, 9000, True, "b", "Chrome", "Android", "2001:db8::/48", "=cmd@example.com"),
        ]
        for at, link, kind, photo, sent, finished, visitor, browser, system, network, email in rows:
            db.session.add(ActivityEvent(at=at, share_id=link, album_id=album_id, kind=kind, photo_id=photo,
                                         size="original" if kind != "visit" else None, bytes=sent, finished=finished,
                                         visitor=visitor, browser=browser, os=system, network=network, email=email))
        # A day long folded by the retention sweep: counted in totals and the chart, not in the event list.
        db.session.add(ActivityDay(share_id=links[0], album_id=album_id, day=(now - timedelta(days=3)).date(),
                                   visits=2, visitors=2, downloads=3, bytes=3000))
        db.session.commit()
    return album_id, links, list(photos)


def totals_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-total="(\w+)">([^<]*)<', html))


def test_album_activity_page_shows_totals_chart_top_photos_and_events(live_server, owner, activity_album):
    album_id, _, _ = activity_album
    page = logged_in(live_server).get(f"{live_server.url}/albums/{album_id}/activity")

    assert page.status_code == 200
    assert totals_of(page.text) == {"visits": "4", "visitors": "4", "downloads": "6", "bytes": "14.5 KB"}
    bars = dict(re.findall(r'data-day="([\d-]+)" data-count="(\d+)"', page.text))
    today = utcnow().date()
    assert bars == {str(today - timedelta(days=3)): "3", str(today - timedelta(days=2)): "1",
                    str(today - timedelta(days=1)): "1", str(today): "1"}
    assert re.search(r'<ol class="activity-top" id="top-photos">\s*<li><span class="activity-name">IMG_0000.jpg</span> '
                     r'<span class="owner-meta">2 downloads', page.text)
    assert page.text.count("<tr data-kind=") == 6
    assert "198.51.100.0/24" in page.text and "<script" not in page.text.split("<main", 1)[-1]


def test_filter_by_link_kind_and_dates_and_page_through_events(live_server, owner, activity_album, app):
    album_id, links, _ = activity_album
    session = logged_in(live_server)
    base = f"{live_server.url}/albums/{album_id}/activity"

    shares_page = session.get(f"{live_server.url}/albums/{album_id}/shares").text
    assert f'href="/albums/{album_id}/activity?link={links[1]}"' in shares_page  # each link leads to its own
    one_link = session.get(base, params={"link": links[1]}).text
    assert totals_of(one_link) == {"visits": "1", "visitors": "1", "downloads": "1", "bytes": "9.5 KB"}
    photos_only = session.get(base, params={"kind": "photo"}).text
    assert photos_only.count('<tr data-kind="photo"') == 3 and "<tr data-kind=\"visit\"" not in photos_only
    today = utcnow().date()
    recent = session.get(base, params={"from": str(today - timedelta(days=1)), "to": str(today)}).text
    assert recent.count("<tr data-kind=") == 4 and totals_of(recent)["downloads"] == "2"

    with app.app_context():  # 60 more events: two pages of 50
        for _ in range(60):
            db.session.add(ActivityEvent(at=utcnow(), share_id=links[0], album_id=album_id, kind="visit", bytes=0,
                                         finished=False))
        db.session.commit()
    first = session.get(base).text
    second = session.get(base, params={"page": 2}).text
    assert first.count("<tr data-kind=") == 50 and second.count("<tr data-kind=") == 16
    assert "Page 2 of 2" in second


@pytest.mark.parametrize("query, status", [
    ({"kind": "everything"}, 400), ({"from": "yesterday"}, 400), ({"from": "2026-12-02", "to": "2026-12-01"}, 400),
    ({"link": "99999"}, 404), ({"link": "1 OR 1=1"}, 404), ({"page": "x"}, 200),
])
def test_bad_filters_get_a_clear_4xx_page_never_a_500(live_server, owner, activity_album, query, status):
    album_id, _, _ = activity_album
    for path in ("activity", "activity.csv"):
        reply = logged_in(live_server).get(f"{live_server.url}/albums/{album_id}/{path}", params=query)
        assert reply.status_code == status, reply.text[:300]
        assert "Traceback" not in reply.text


def test_csv_export_has_every_filtered_event_and_no_formula_cells(live_server, owner, activity_album):
    album_id, links, photos = activity_album
    reply = logged_in(live_server).get(f"{live_server.url}/albums/{album_id}/activity.csv", params={"link": links[1]})

    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in reply.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [(row["kind"], row["bytes"], row["finished"]) for row in rows] == [
        ("visit", "0", "no"), ("photo", "500", "no"), ("album", "9000", "yes")]
    assert rows[1]["photo_id"] == str(photos[1]) and rows[1]["size"] == "original"
    assert {row["network"] for row in rows} == {"2001:db8::/48"} and {row["browser"] for row in rows} == {"Chrome"}
    assert {row["email"] for row in rows} == {"'=cmd@example.com"}  # a spreadsheet shows it, never runs it
    assert list(rows[0]) == list(activity.report.CSV_COLUMNS)


def test_another_owner_gets_404_for_the_pages_the_export_and_the_digest_switch(live_server, app, owner, activity_album):
    album_id, _, _ = activity_album
    with app.app_context():
        create_user("other@example.com", "another long password")
    other = logged_in(live_server, "other@example.com", "another long password")
    assert other.get(f"{live_server.url}/albums/{album_id}/activity").status_code == 404
    assert other.get(f"{live_server.url}/albums/{album_id}/activity.csv").status_code == 404
    page = other.get(f"{live_server.url}/albums").text
    reply = other.post(f"{live_server.url}/albums/{album_id}/digest",
                       data={"csrf_token": csrf_token(page), "daily_digest": "on"})
    assert reply.status_code == 404
    assert requests.get(f"{live_server.url}/albums/{album_id}/activity", allow_redirects=False).status_code == 302
    with app.app_context():
        assert db.session.get(Album, album_id).daily_digest is False


def test_the_daily_digest_checkbox_switches_the_album_setting(live_server, app, owner, activity_album):
    album_id, _, _ = activity_album
    session = logged_in(live_server)
    page = session.get(f"{live_server.url}/albums/{album_id}").text
    assert re.search(r'<input type="checkbox" name="daily_digest">', page)  # off by default
    session.post(f"{live_server.url}/albums/{album_id}/digest", data={"csrf_token": csrf_token(page), "daily_digest": "on"})
    with app.app_context():
        assert db.session.get(Album, album_id).daily_digest is True
    page = session.get(f"{live_server.url}/albums/{album_id}").text
    assert '<input type="checkbox" name="daily_digest" checked>' in page
    without_token = session.post(f"{live_server.url}/albums/{album_id}/digest", data={})
    assert without_token.status_code in (200, 400)
    session.post(f"{live_server.url}/albums/{album_id}/digest", data={"csrf_token": csrf_token(page)})
    with app.app_context():
        assert db.session.get(Album, album_id).daily_digest is False
