"""The owner's download rules against a real gunicorn: the visitor's e-mail, download limits counted under
parallel requests, the download PIN, and preparing an expired prepared link again in one click.

Browsers are played by `requests.Session` (cookies, CSRF tokens from the pages, redirects); scripts by the
standard library (`jobs_support.http`, no cookies).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import requests

from photoshare import albums
from photoshare.delivery import links
from photoshare.extensions import db
from photoshare.models import Album, ShareLink
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, LiveServer, csrf_token, make_jpeg
from tests.jobs_support import at_once, expected_archive, http, poll_status, wait_until, zip_cache


@pytest.fixture
def server(app, instance: Path):
    """gunicorn on the test's database, its limits raised out of the way of 20 requests from one address."""
    live = LiveServer(instance, database_url=app.config["SQLALCHEMY_DATABASE_URI"],
                      env={"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute"})
    yield live
    live.stop()


def first_photo(app, album_id: int) -> tuple[int, bytes]:
    with app.app_context():
        photo = db.session.get(Album, album_id).photos[0]
        path = Path(app.config["UPLOAD_DIR"]) / albums.photo_key(photo)
        return photo.id, path.read_bytes()


def share_row(app, token: str) -> ShareLink:
    with app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        db.session.expunge(link)
        return link


def browser() -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "text/html"
    return session


# ---- visitor e-mail -------------------------------------------------------------------------------------------


def test_script_without_email_gets_403_json_saying_how_and_the_header_lets_it_download(app, server, make_album,
                                                                                      make_share):
    album_id = make_album(count=1)
    token = make_share(album_id, ask_email=True)
    photo_id, original = first_photo(app, album_id)
    url = f"{server.url}/api/share/{token}/download/{photo_id}"

    refused = http("GET", url)
    assert refused.status == 403
    assert refused.json()["error"] == "email_required" and "X-Visitor-Email" in refused.json()["message"]
    assert http("GET", f"{server.url}/api/share/{token}/download-all").status == 403
    bad = http("GET", url, headers={"X-Visitor-Email": "not an address"})
    assert bad.status == 400 and bad.json()["error"] == "invalid_email"
    given = http("GET", url, headers={"X-Visitor-Email": "Client@Example.com"})
    assert given.status == 200 and given.body == original


def test_gallery_asks_for_the_email_before_the_first_download_and_keeps_it_in_the_session(app, server, make_album,
                                                                                          make_share):
    album_id = make_album(count=2)
    token = make_share(album_id, ask_email=True)
    photo_id, original = first_photo(app, album_id)
    visitor = browser()
    gallery = visitor.get(f"{server.url}/s/{token}")
    assert gallery.status_code == 200 and 'data-gate="email"' in gallery.text
    download = f"/api/share/{token}/download/{photo_id}"
    assert f'href="/s/{token}/before-download?next=' in gallery.text  # the buttons go by the form first

    form = visitor.get(f"{server.url}/s/{token}/before-download", params={"next": download})
    assert form.status_code == 200 and 'name="email"' in form.text
    refused = visitor.post(f"{server.url}/s/{token}/visitor-email",
                           data={"csrf_token": csrf_token(form.text), "email": "nope", "next": download})
    assert refused.status_code == 400 and 'aria-invalid="true"' in refused.text
    done = visitor.post(f"{server.url}/s/{token}/visitor-email",
                        data={"csrf_token": csrf_token(form.text), "email": "Client@Example.com", "next": download})
    assert done.status_code == 200 and done.content == original  # on to the download it asked for
    assert [r.status_code for r in done.history] == [303, 303]

    # What the activity record reads: the address in the session, and the shares it was given for.
    cookie = visitor.cookies.get(app.config.get("SESSION_COOKIE_NAME", "session"))
    session = app.session_interface.get_signing_serializer(app).loads(cookie)
    assert session["visitor_email"] == "Client@example.com"
    assert session["visitor_email_shares"] == [share_row(app, token).id]
    assert 'data-gate="email"' not in visitor.get(f"{server.url}/s/{token}").text
    assert visitor.get(f"{server.url}{download}").status_code == 200


def test_visitor_who_declines_still_sees_every_photo_but_downloads_nothing(app, server, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id, ask_email=True)
    photo_id, _original = first_photo(app, album_id)
    visitor = browser()
    for path in (f"/s/{token}", f"/s/{token}/thumb/{photo_id}", f"/s/{token}/view/{photo_id}",
                 f"/api/share/{token}"):
        assert visitor.get(f"{server.url}{path}").status_code == 200, path
    assert visitor.get(f"{server.url}/api/share/{token}/download/{photo_id}").status_code == 403


def test_the_form_only_goes_on_to_this_shares_own_addresses(server, make_album, make_share):
    token = make_share(make_album(count=1))
    visitor = browser()
    for target in ("https://evil.example/", "//evil.example/x", f"/s/{token}/../../evil"):
        answer = visitor.get(f"{server.url}/s/{token}/before-download", params={"next": target},
                             allow_redirects=False)
        assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/s/{token}"), target


# ---- limits ---------------------------------------------------------------------------------------------------


def test_twenty_parallel_photo_downloads_with_limit_3_let_exactly_3_through(app, server, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id, max_photo_downloads=3)
    photo_id, original = first_photo(app, album_id)
    url = f"{server.url}/api/share/{token}/download/{photo_id}"

    answers = at_once(lambda: http("GET", url), visitors=20)
    assert sorted(a.status for a in answers) == [200] * 3 + [403] * 17
    assert all(a.body == original for a in answers if a.status == 200)
    refused = next(a for a in answers if a.status == 403).json()
    assert refused["error"] == "download_limit_reached" and "contact the owner" in refused["message"]
    assert share_row(app, token).photo_downloads == 3
    assert http("GET", f"{server.url}/s/{token}").status == 200  # viewing still works
    assert http("GET", f"{server.url}/s/{token}/view/{photo_id}").status == 200


def test_twenty_parallel_album_downloads_with_limit_3_let_exactly_3_through_and_leave_no_temp_file(
        app, server, make_album, make_share):
    album_id = make_album(count=3)
    token = make_share(album_id, max_album_downloads=3)
    url = f"{server.url}/api/share/{token}/download-all"

    answers = at_once(lambda: http("GET", url), visitors=20)
    assert sorted(a.status for a in answers) == [200] * 3 + [403] * 17
    assert len({hashlib.sha256(a.body).hexdigest() for a in answers if a.status == 200}) == 1
    assert share_row(app, token).album_downloads == 3
    temp = Path(app.config["TEMP_DIR"])
    wait_until(lambda: not [p for p in temp.rglob("*") if p.is_file()], what="temp folder to empty")


def test_a_resume_takes_no_slot_and_a_stale_if_range_does(app, server, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id, max_photo_downloads=1)
    photo_id, original = first_photo(app, album_id)
    url = f"{server.url}/api/share/{token}/download/{photo_id}"

    assert http("HEAD", url).status == 200  # a HEAD downloads nothing
    first = http("GET", url, headers={"Range": "bytes=0-99"})
    assert first.status == 206 and first.body == original[:100]
    etag = first.headers["etag"]
    resumed = http("GET", url, headers={"Range": "bytes=100-", "If-Range": etag})
    assert resumed.status == 206 and first.body + resumed.body == original  # the limit is reached, the resume goes on
    assert http("GET", url, headers={"Range": "bytes=100-"}).status == 206
    # A Range after byte 0 that gets the whole file anyway (a stale If-Range) is a new download.
    assert http("GET", url, headers={"Range": "bytes=100-", "If-Range": '"stale"'}).status == 403
    assert http("GET", url).status == 403
    assert share_row(app, token).photo_downloads == 1


def test_limit_reached_shows_a_page_on_prepared_links_and_a_notice_in_the_gallery(app, server, make_album,
                                                                                   make_share):
    album_id = make_album(count=2)
    token = make_share(album_id, max_album_downloads=1)
    job = http("POST", f"{server.url}/api/share/{token}/prepare-download").json()
    link = poll_status(server.url, token, job["job_id"])["download_url"]
    assert http("GET", link).status == 200

    page = browser().get(link)
    assert page.status_code == 403 and 'data-gate="limit"' in page.text and "contact the owner" in page.text
    assert http("GET", link, headers={"Accept": "application/json"}).json()["error"] == "download_limit_reached"
    assert http("POST", f"{server.url}/api/share/{token}/prepare-download").status == 403
    gallery = browser().get(f"{server.url}/s/{token}")
    assert gallery.status_code == 200 and "data-limit-reached" in gallery.text
    assert "data-download-all" not in gallery.text


def owner_session(server: LiveServer) -> requests.Session:
    owner = browser()
    login = owner.get(f"{server.url}/login")
    owner.post(f"{server.url}/login", data={"csrf_token": csrf_token(login.text), "email": OWNER_EMAIL,
                                             "password": OWNER_PASSWORD})
    return owner


def test_owner_sees_counts_against_limits_raises_them_and_resets_the_counts(app, server, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id, max_photo_downloads=1)
    photo_id, _original = first_photo(app, album_id)
    url = f"{server.url}/api/share/{token}/download/{photo_id}"
    assert [http("GET", url).status for _ in range(2)] == [200, 403]
    share_id = share_row(app, token).id

    owner = owner_session(server)
    page = owner.get(f"{server.url}/albums/{album_id}/shares")
    assert page.status_code == 200 and '<dd data-count="photo">1 of 1</dd>' in page.text
    rules = f"{server.url}/albums/{album_id}/shares/{share_id}/rules"
    raised = owner.post(rules, data={"csrf_token": csrf_token(page.text), "max_photo_downloads": "2"})
    assert raised.status_code == 200 and '<dd data-count="photo">1 of 2</dd>' in raised.text
    assert [http("GET", url).status for _ in range(2)] == [200, 403]

    reset = owner.post(rules, data={"csrf_token": csrf_token(page.text), "max_photo_downloads": "2",
                                    "reset_counts": "y"})
    assert '<dd data-count="photo">0 of 2</dd>' in reset.text
    assert http("GET", url).status == 200
    bad = owner.post(rules, data={"csrf_token": csrf_token(page.text), "max_photo_downloads": "0"})
    assert bad.status_code == 200 and share_row(app, token).max_photo_downloads == 2  # refused, nothing changed
    assert owner.post(rules, data={"max_photo_downloads": "9"}).status_code == 400  # no CSRF token


def test_owner_creates_a_link_with_every_rule(app, server, make_album):
    album_id = make_album(count=1)
    owner = owner_session(server)
    page = owner.get(f"{server.url}/albums/{album_id}/shares")
    created = owner.post(f"{server.url}/albums/{album_id}/shares", data={
        "csrf_token": csrf_token(page.text), "downloads_allowed": "y", "ask_email": "y", "download_pin": "4821",
        "max_album_downloads": "2", "max_photo_downloads": "5", "expires_unit": "days", "tz_offset": "0"})
    assert created.status_code == 200 and 'data-badge="pin"' in created.text and 'data-badge="email"' in created.text
    with app.app_context():
        link = db.session.get(Album, album_id).share_links[0]
        assert (link.ask_email, link.max_album_downloads, link.max_photo_downloads) == (True, 2, 5)
        assert link.download_pin_hash and "4821" not in link.download_pin_hash
    for field, value in (("download_pin", "12ab"), ("download_pin", "1234567"), ("max_album_downloads", "0"),
                         ("max_photo_downloads", str(10**12))):
        bad = owner.post(f"{server.url}/albums/{album_id}/shares", data={
            "csrf_token": csrf_token(page.text), field: value, "expires_unit": "days"})
        assert bad.status_code == 400 and 'class="owner-field-error"' in bad.text, (field, value)
    with app.app_context():
        assert len(db.session.get(Album, album_id).share_links) == 1


# ---- download PIN ---------------------------------------------------------------------------------------------


def test_pin_header_wrong_and_right_then_the_cookie_until_the_owner_changes_the_pin(app, server, make_album,
                                                                                   make_share):
    album_id = make_album(count=1)
    token = make_share(album_id, download_pin="4821")
    photo_id, original = first_photo(app, album_id)
    url = f"{server.url}/api/share/{token}/download/{photo_id}"

    assert http("GET", f"{server.url}/s/{token}").status == 200  # viewing needs no PIN
    missing = http("GET", url)
    assert missing.status == 403 and missing.json()["error"] == "download_pin_required"
    assert "X-Download-Pin" in missing.json()["message"]
    assert http("GET", url, headers={"X-Download-Pin": "1111"}).json()["error"] == "wrong_download_pin"
    script = requests.Session()
    right = script.get(url, headers={"X-Download-Pin": "4821"})
    assert right.status_code == 200 and right.content == original
    assert script.get(url).status_code == 200  # the PIN cookie alone
    assert http("GET", f"{server.url}/api/share/{token}/download-all", headers={"X-Download-Pin": "4821"}).status == 200

    owner = owner_session(server)
    page = owner.get(f"{server.url}/albums/{album_id}/shares")
    changed = owner.post(f"{server.url}/albums/{album_id}/shares/{share_row(app, token).id}/download-pin",
                         data={"csrf_token": csrf_token(page.text), "download_pin": "9999"})
    assert changed.status_code == 200 and "Download PIN changed" in changed.text
    assert script.get(url).json()["error"] == "download_pin_required"  # the old grant no longer works
    assert script.get(url, headers={"X-Download-Pin": "4821"}).json()["error"] == "wrong_download_pin"
    assert script.get(url, headers={"X-Download-Pin": "9999"}).status_code == 200


def test_pin_form_in_the_gallery_goes_on_to_the_download(app, server, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id, download_pin="4821", ask_email=True)
    photo_id, original = first_photo(app, album_id)
    visitor = browser()
    gallery = visitor.get(f"{server.url}/s/{token}")
    assert 'data-gate="pin"' in gallery.text and 'data-gate="email"' not in gallery.text  # one form at a time
    download = f"/api/share/{token}/download/{photo_id}"
    post = {"csrf_token": csrf_token(gallery.text), "next": download}
    wrong = visitor.post(f"{server.url}/s/{token}/download-pin", data={**post, "pin": "0000"})
    assert wrong.status_code == 403 and "not correct" in wrong.text and 'data-gate="pin"' in wrong.text
    right = visitor.post(f"{server.url}/s/{token}/download-pin", data={**post, "pin": "4821"})
    assert right.status_code == 200 and 'data-gate="email"' in right.text  # then the e-mail
    done = visitor.post(f"{server.url}/s/{token}/visitor-email", data={**post, "email": "a@example.com"})
    assert done.status_code == 200 and done.content == original


def test_wrong_pins_are_rate_limited_per_address_and_per_link(app, instance, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id, download_pin="4821")
    photo_id, _original = first_photo(app, album_id)
    live = LiveServer(instance, database_url=app.config["SQLALCHEMY_DATABASE_URI"], workers=1, env={
        "PROXY_FIX_HOPS": "1", "PASSWORD_RATE_LIMIT": "3 per minute", "DOWNLOAD_PIN_LINK_RATE_LIMIT": "8 per minute"})
    try:
        url = f"{live.url}/api/share/{token}/download/{photo_id}"

        def guess(address: str, pin: str = "0000") -> int:
            return http("GET", url, headers={"X-Download-Pin": pin, "X-Forwarded-For": address}).status

        assert [guess("192.0.2.1") for _ in range(4)] == [403, 403, 403, 429]
        assert guess("192.0.2.1", "4821") == 429  # over the limit nothing is checked, a right PIN neither
        assert guess("192.0.2.2", "4821") == 200  # another address; a right PIN is given back
        # From many addresses: the link's own limit (8) stops them all, 3 + 5 wrong guesses later.
        assert [guess(f"198.51.100.{n}") for n in range(6)] == [403] * 5 + [429]
    finally:
        live.stop()


def test_prepared_link_and_prepare_download_need_the_pin(app, server, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id, download_pin="4821")
    assert http("POST", f"{server.url}/api/share/{token}/prepare-download").status == 403
    job = http("POST", f"{server.url}/api/share/{token}/prepare-download", headers={"X-Download-Pin": "4821"}).json()
    link = poll_status(server.url, token, job["job_id"])["download_url"]

    visitor = browser()
    page = visitor.get(link)
    assert page.status_code == 403 and 'data-gate="pin"' in page.text
    done = visitor.post(f"{server.url}/s/{token}/download-pin", data={
        "csrf_token": csrf_token(page.text), "pin": "4821", "next": link.removeprefix(server.url)})
    assert done.status_code == 200 and done.content == expected_archive(app, album_id)
    assert http("GET", link, headers={"X-Download-Pin": "4821"}).status == 200


# ---- expired prepared links -----------------------------------------------------------------------------------


def expired_link(app, album_id: int, token: str, version: str | None = None) -> str:
    """A genuine link to the album, issued 25 hours ago (time travel by the signature's timestamp)."""
    with app.app_context():
        share_id = share_row(app, token).id
        version = version or db.session.get(Album, album_id).version
        return links.sign(links.Grant(album_id, version, share_id), issued_at=time.time() - 25 * 3600)


def test_expired_link_prepares_again_in_one_click_reusing_the_cached_archive(app, server, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id)
    job = http("POST", f"{server.url}/api/share/{token}/prepare-download").json()
    poll_status(server.url, token, job["job_id"])
    cached = zip_cache(app)
    signed = expired_link(app, album_id, token)

    visitor = browser()
    gone = visitor.get(f"{server.url}/d/{signed}")
    assert gone.status_code == 410 and "data-prepare-again" in gone.text
    again = visitor.post(f"{server.url}/d/{signed}/again", data={"csrf_token": csrf_token(gone.text)},
                         allow_redirects=False)
    assert again.status_code == 303 and "/d/" in again.headers["Location"]
    assert again.headers["Location"] != f"{server.url}/d/{signed}"
    fresh = visitor.get(again.headers["Location"])
    assert fresh.status_code == 200 and fresh.content == expected_archive(app, album_id)
    assert zip_cache(app) == cached  # the same archive, not built again
    assert visitor.post(f"{server.url}/d/{signed}/again").status_code == 400  # a form without its CSRF token


def test_outdated_link_prepares_the_album_as_it_is_now_and_the_page_goes_on_when_ready(app, server, make_album,
                                                                                       make_share):
    album_id = make_album(count=1)
    token = make_share(album_id)
    signed = expired_link(app, album_id, token, version="an-older-version")
    with app.app_context():
        albums.add_photo(db.session.get(Album, album_id), "new.jpg", __import__("io").BytesIO(make_jpeg()))

    visitor = browser()
    gone = visitor.get(f"{server.url}/d/{signed}")
    assert gone.status_code == 410
    started = visitor.post(f"{server.url}/d/{signed}/again", data={"csrf_token": csrf_token(gone.text)},
                           allow_redirects=False)
    if started.status_code == 202:  # still building: the page looks again by itself until the link is ready
        assert 'http-equiv="refresh"' in started.text
        status_url = server.url + started.text.split('url=', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        started = wait_until(lambda: (r := visitor.get(status_url, allow_redirects=False)).status_code == 303 and r,
                             what="the preparation to finish")
    assert started.status_code == 303
    fresh = visitor.get(started.headers["Location"])
    assert fresh.status_code == 200 and fresh.content == expected_archive(app, album_id)


def test_expired_link_of_a_revoked_share_offers_nothing_and_a_tampered_one_is_refused(app, server, make_album,
                                                                                     make_share):
    album_id = make_album(count=1)
    token = make_share(album_id)
    signed = expired_link(app, album_id, token)
    with app.app_context():
        db.session.get(ShareLink, share_row(app, token).id).revoked = True
        db.session.commit()
    visitor = browser()
    gone = visitor.get(f"{server.url}/d/{signed}")
    assert gone.status_code == 410 and "data-prepare-again" not in gone.text
    form = visitor.get(f"{server.url}/login").text  # any page with this session's CSRF token
    assert visitor.post(f"{server.url}/d/{signed}/again", data={"csrf_token": csrf_token(form)}).status_code == 410
    tampered = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
    assert visitor.post(f"{server.url}/d/{tampered}/again", data={"csrf_token": csrf_token(form)}).status_code == 404


def test_preparing_again_with_the_email_option_mails_the_fresh_link(app, instance, make_album, make_share):
    from tests.jobs_support import SmtpSink

    sink = SmtpSink()
    live = LiveServer(instance, database_url=app.config["SQLALCHEMY_DATABASE_URI"],
                      env={"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "SMTP_FROM": "photos@example.com"})
    try:
        album_id = make_album(count=2, title="Reunion")
        token = make_share(album_id)
        signed = expired_link(app, album_id, token, version="an-older-version")  # nothing cached for it
        visitor = browser()
        gone = visitor.get(f"{live.url}/d/{signed}")
        assert gone.status_code == 410 and 'name="email"' in gone.text
        started = visitor.post(f"{live.url}/d/{signed}/again", allow_redirects=False,
                               data={"csrf_token": csrf_token(gone.text), "email": "friend@example.com"})
        assert started.status_code in (202, 303)
        message = wait_until(lambda: sink.messages and sink.messages[0], what="the e-mail with the link")
        assert message["To"] == "friend@example.com" and "Reunion" in message["Subject"]
        url = next(w for w in message.get_content().split() if w.startswith(f"{live.url}/d/"))
        assert url != f"{live.url}/d/{signed}" and http("GET", url).body == expected_archive(app, album_id)
    finally:
        live.stop()
        sink.stop()


def test_prepared_link_of_a_password_share_asks_only_for_the_pin(app, server, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id, password="sea view 12", download_pin="4821")
    secrets = {"X-Share-Password": "sea view 12", "X-Download-Pin": "4821"}
    job = http("POST", f"{server.url}/api/share/{token}/prepare-download", headers=secrets).json()
    link = poll_status(server.url, token, job["job_id"], headers=secrets)["download_url"]

    visitor = browser()  # someone the link was forwarded to: no password, no PIN cookie
    page = visitor.get(link)
    assert page.status_code == 403 and 'data-gate="pin"' in page.text
    form = {"csrf_token": csrf_token(page.text), "pin": "4821"}
    done = visitor.post(f"{server.url}/s/{token}/download-pin", data={**form, "next": link.removeprefix(server.url)})
    assert done.status_code == 200 and done.content == expected_archive(app, album_id)
    # Anywhere else the form still needs the password first.
    elsewhere = visitor.post(f"{server.url}/s/{token}/download-pin", data={**form, "next": f"/s/{token}/prepare"})
    assert elsewhere.status_code in (401, 403) and 'name="password"' in elsewhere.text
