"""Share links on the owner side: create (password, expiry, downloads), list, copy, revoke."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from werkzeug.security import check_password_hash

from photoshare.access import PasswordRequired, ShareGone, find_share, open_share
from photoshare.extensions import db
from photoshare.i18n import datetime_utc
from photoshare.models import Album, ShareLink, utcnow
from photoshare.owner.service import expiry_from_form
from tests.conftest import csrf_token, login


@pytest.fixture
def owner_client(client, owner):
    login(client)
    return client


@pytest.fixture
def album_id(make_album):
    return make_album(count=1, title="Client gallery")


def create_link(client, album_id: int, **fields):
    page = client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "expires_unit": "days", "downloads_allowed": "y", "tz_offset": "0"} | fields
    return client.post(f"/albums/{album_id}/shares", data={k: v for k, v in data.items() if v is not None})


def links(app, album_id: int) -> list[ShareLink]:
    with app.app_context():
        found = db.session.get(Album, album_id).share_links
        for link in found:
            db.session.expunge(link)
        return found


def test_new_open_link_is_listed_with_its_url_and_a_copy_button(app, owner_client, album_id):
    response = create_link(owner_client, album_id)
    assert response.status_code == 302
    [link] = links(app, album_id)
    assert response.headers["Location"] == f"/albums/{album_id}/shares?new={link.id}#link-{link.id}"
    assert len(link.token) >= 22  # 128 bits or more from secrets.token_urlsafe
    assert (link.password_hash, link.expires_at, link.downloads_allowed, link.revoked) == (None, None, True, False)
    html = owner_client.get(response.headers["Location"]).get_data(as_text=True)
    url = f"http://photoshare.test/s/{link.token}"  # always on BASE_URL
    assert re.search(rf'<input id="url-{link.id}" type="text" value="{re.escape(url)}" readonly', html)
    assert f'data-owner-copy="url-{link.id}"' in html
    assert "No password" in html and "Never" in html and "Downloads allowed" in html and "Active" in html
    with app.app_context():
        assert find_share(link.token).id == link.id


def test_password_link_needs_the_password_and_never_shows_it(app, owner_client, album_id):
    create_link(owner_client, album_id, password="s3cret pass")
    [link] = links(app, album_id)
    assert link.password_hash and check_password_hash(link.password_hash, "s3cret pass")
    html = owner_client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    assert "Password protected" in html and "s3cret pass" not in html
    with app.app_context():
        with pytest.raises(PasswordRequired):
            open_share(link.token, password=None, cookies={}, secret_key=app.config["SECRET_KEY"], client="127.0.0.1")
        assert open_share(link.token, password="s3cret pass", cookies={}, secret_key=app.config["SECRET_KEY"],
                          client="127.0.0.1")


def test_link_expiring_in_hours_or_days(app, owner_client, album_id):
    before = utcnow()
    create_link(owner_client, album_id, expires_in="5", expires_unit="hours")
    create_link(owner_client, album_id, expires_in="3", expires_unit="days")
    in_days, in_hours = links(app, album_id)  # newest first
    assert timedelta(hours=5) <= in_hours.expires_at - before < timedelta(hours=5, minutes=1)
    assert timedelta(days=3) <= in_days.expires_at - before < timedelta(days=3, minutes=1)
    html = owner_client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    with app.test_request_context():  # Babel's long English date: "December 2, 2026, 12:30 AM UTC"
        assert datetime_utc(in_hours.expires_at) in html


def test_link_with_a_last_day_closes_at_midnight_where_the_owner_is(app, owner_client, album_id):
    last_day = date.today() + timedelta(days=10)
    create_link(owner_client, album_id, expires_on=last_day.isoformat(), tz_offset="-120")  # UTC+2
    [link] = links(app, album_id)
    assert link.expires_at == datetime.combine(last_day, datetime.min.time()) + timedelta(hours=22)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expires_in": "0"}, "Enter 1 or more."),
        ({"expires_in": "many"}, "Not a valid integer value."),
        ({"expires_in": "5000", "expires_unit": "days"}, "at most 10 years"),
        ({"expires_on": "2001-01-01"}, "The last day is in the past."),
        ({"expires_in": "2", "expires_on": "2099-01-01"}, "not both"),
        ({"expires_unit": "weeks", "expires_in": "1"}, "Not a valid choice."),
    ],
)
def test_bad_expiry_is_refused_with_a_message_and_no_link(app, owner_client, album_id, fields, message):
    response = create_link(owner_client, album_id, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert links(app, album_id) == []


def test_view_only_link_when_downloads_are_unticked(app, owner_client, album_id):
    create_link(owner_client, album_id, downloads_allowed=None)
    [link] = links(app, album_id)
    assert link.downloads_allowed is False
    assert "View only" in owner_client.get(f"/albums/{album_id}/shares").get_data(as_text=True)


def test_revoked_link_is_gone_for_visitors_and_marked_for_the_owner(app, owner_client, album_id):
    create_link(owner_client, album_id)
    [link] = links(app, album_id)
    page = owner_client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    assert f"/shares/{link.id}/revoke" in page
    response = owner_client.post(f"/albums/{album_id}/shares/{link.id}/revoke", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    with app.app_context():
        with pytest.raises(ShareGone):
            find_share(link.token)
    html = owner_client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    assert 'data-state="revoked"' in html and "Revoked" in html
    assert f"/shares/{link.id}/revoke" not in html and f'data-owner-copy="url-{link.id}"' not in html


def test_expired_link_is_shown_as_expired(app, owner_client, album_id, make_share):
    make_share(album_id, expires_at=utcnow() - timedelta(hours=1))
    html = owner_client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    assert 'data-state="expired"' in html and "Expired" in html


def test_link_counters_are_listed(app, owner_client, album_id, make_share):
    token = make_share(album_id)
    with app.app_context():
        link = find_share(token)
        link.view_count, link.download_started_count, link.download_count = 7, 5, 3
        db.session.commit()
    html = owner_client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    assert "<dt>Views</dt><dd>7</dd>" in html
    assert "<dt>Downloads started</dt><dd>5</dd>" in html and "<dt>Downloads finished</dt><dd>3</dd>" in html


def test_share_forms_need_csrf(app, owner_client, album_id, make_share):
    make_share(album_id)
    [link] = links(app, album_id)
    assert owner_client.post(f"/albums/{album_id}/shares", data={"password": "x"}).status_code == 400
    assert owner_client.post(f"/albums/{album_id}/shares/{link.id}/revoke").status_code == 400
    [still] = links(app, album_id)
    assert not still.revoked


NOW = datetime(2026, 3, 28, 12, 0)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((None, "days", None, 0), None),
        ((2, "hours", None, 0), NOW + timedelta(hours=2)),
        ((10, "days", None, 0), NOW + timedelta(days=10)),
        ((None, "days", date(2026, 3, 28), 0), datetime(2026, 3, 29)),  # today counts, to its end
        ((None, "days", date(2026, 3, 30), 300), datetime(2026, 3, 31, 5)),  # UTC-5
        ((None, "days", date(2026, 3, 30), 99999), datetime(2026, 3, 31)),  # nonsense offset: UTC
    ],
)
def test_expiry_from_form(args, expected):
    assert expiry_from_form(*args, now=NOW) == expected


def test_expiry_date_already_over_where_the_owner_is_is_refused():
    with pytest.raises(ValueError, match="past"):
        expiry_from_form(None, "days", date(2026, 3, 28), -13 * 60, now=NOW)  # UTC+13: that day ended at 11:00 UTC
