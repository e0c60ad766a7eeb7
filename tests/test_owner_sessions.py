"""Owner log-in over HTTP against a real gunicorn: where `next` may lead, what the session cookie promises, that
logging out and a password change end copied cookies, that unknown e-mails answer as slowly as wrong passwords,
and that parallel log-in guesses are counted before they are checked."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from urllib.parse import urljoin, urlsplit

import requests

from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, LiveServer, csrf_token
from tests.jobs_support import RedisServer, at_once
from tests.test_password_guessing import CountingServer


def browser(server: LiveServer) -> tuple[requests.Session, str]:
    """A new browser that has opened the login page: its session and the form's CSRF token."""
    session = requests.Session()
    return session, csrf_token(session.get(f"{server.url}/login", timeout=30).text)


def log_in(server: LiveServer, *, query: str = "", email: str = OWNER_EMAIL, password: str = OWNER_PASSWORD,
           headers: dict[str, str] | None = None) -> tuple[requests.Session, requests.Response]:
    session, token = browser(server)
    response = session.post(f"{server.url}/login{query}", data={"email": email, "password": password, "csrf_token": token},
                            headers=headers, allow_redirects=False, timeout=30)
    return session, response


def copy_of(session: requests.Session) -> requests.Session:
    """Another client holding the same cookies, as someone who copied them would."""
    thief = requests.Session()
    thief.cookies.update(session.cookies)
    return thief


def sees_albums(server: LiveServer, session: requests.Session) -> bool:
    response = session.get(f"{server.url}/albums", allow_redirects=False, timeout=30)
    assert response.status_code in (200, 302)
    return response.status_code == 200


# ---- where `next` may lead -----------------------------------------------------------------------------------

# Raw query strings (already percent-encoded as a browser or attacker would send them).
BYPASSES = [
    "//evil.example/", "///evil.example/", "////evil.example/", "/%09/evil.example/", "/%0A/evil.example/",
    "/%0D%0A/evil.example/", "%2F%2Fevil.example/", "%2F%09%2Fevil.example/", "/%5Cevil.example/",
    "%5C%5Cevil.example/", "/%5C/evil.example/", "%5C/evil.example/", "%09//evil.example/", "%20//evil.example/",
    "https:evil.example", "https://evil.example/", "http:/evil.example", "HTTPS://evil.example",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "%0Ajavascript:alert(1)", "java%09script:alert(1)",
    "data:text/html,hi", "evil.example", "/%00/evil.example", "%E3%80%82/evil.example",
]


def test_next_never_leads_off_the_site(live_server, owner):
    locations = {}
    for raw_next in BYPASSES:
        _, response = log_in(live_server, query=f"?next={raw_next}")
        if "%00" in raw_next:  # a NUL in any field is refused before the view runs (bad_input.py)
            assert response.status_code == 400 and "Location" not in response.headers
            continue
        assert response.status_code == 302, (raw_next, response.text[:500])
        locations[raw_next] = location = response.headers["Location"]
        # Read as a browser would: tabs and newlines dropped, "\" as "/", resolved against the page's address.
        resolved = urlsplit(urljoin(live_server.url + "/login", location.replace("\t", "").replace("\\", "/")))
        assert (resolved.scheme, resolved.netloc) == ("http", urlsplit(live_server.url).netloc), (raw_next, location)
    assert set(locations.values()) == {"/albums"}, locations


def test_next_keeps_a_path_on_the_site_with_its_query(live_server, owner):
    _, response = log_in(live_server, query="?next=/albums/7/shares%3Fpage%3D2")
    assert response.status_code == 302 and response.headers["Location"] == "/albums/7/shares?page=2"


# ---- the session cookie --------------------------------------------------------------------------------------


def session_cookie(response: requests.Response) -> str:
    [cookie] = [value for value in response.raw.headers.getlist("Set-Cookie") if value.startswith("session=")]
    return cookie


def login_page_cookie(server: LiveServer, headers: dict[str, str] | None = None) -> str:
    """The session cookie the login page sets (it holds the CSRF token): a browser on plain HTTP would not even
    send a Secure one back, so these tests read it from the page instead of logging in."""
    return session_cookie(requests.get(f"{server.url}/login", headers=headers, timeout=30))


def test_session_cookie_is_httponly_lax_and_not_secure_on_plain_http(live_server, owner):
    _, response = log_in(live_server)
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_when_base_url_is_https(app, instance, owner):
    server = LiveServer(instance, env={"BASE_URL": "https://photos.example"},
                        database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        cookie = login_page_cookie(server)
    finally:
        server.stop()
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_is_secure_when_the_proxy_says_https(app, instance, owner):
    server = LiveServer(instance, env={"PROXY_FIX_HOPS": "1"}, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        over_https = login_page_cookie(server, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
        over_http = login_page_cookie(server)
    finally:
        server.stop()
    assert "; Secure" in over_https and "Secure" not in over_http


# ---- sessions end on the server ------------------------------------------------------------------------------


def test_logging_out_ends_a_copied_session_cookie_too(live_server, owner):
    owner_browser, response = log_in(live_server)
    assert response.status_code == 302
    thief = copy_of(owner_browser)
    assert sees_albums(live_server, thief)
    token = csrf_token(owner_browser.get(f"{live_server.url}/albums", timeout=30).text)
    assert owner_browser.post(f"{live_server.url}/logout", data={"csrf_token": token}, allow_redirects=False,
                              timeout=30).status_code == 302
    assert not sees_albums(live_server, thief) and not sees_albums(live_server, owner_browser)
    again, _ = log_in(live_server)
    assert sees_albums(live_server, again)  # logging in again works, with a new cookie


def test_a_password_change_ends_every_session_of_the_owner(app, live_server, owner):
    first, _ = log_in(live_server)
    second, _ = log_in(live_server)
    thief = copy_of(first)
    assert sees_albums(live_server, thief) and sees_albums(live_server, second)
    result = app.test_cli_runner().invoke(args=["set-password", OWNER_EMAIL, "--password", "a new long password"])
    assert result.exit_code == 0, result.output
    assert not any(sees_albums(live_server, client) for client in (first, second, thief))
    assert log_in(live_server)[1].status_code == 401  # the old password is gone
    assert sees_albums(live_server, log_in(live_server, password="a new long password")[0])


def test_a_password_change_on_the_account_page_ends_the_other_sessions_and_keeps_this_one(live_server, owner):
    owner_browser, _ = log_in(live_server)
    thief = copy_of(owner_browser)
    token = csrf_token(owner_browser.get(f"{live_server.url}/account", timeout=30).text)
    changed = owner_browser.post(f"{live_server.url}/account", allow_redirects=False, timeout=30, data={
        "current_password": OWNER_PASSWORD, "new_password": "a new long password", "confirm": "a new long password",
        "csrf_token": token})
    assert changed.status_code == 302
    assert sees_albums(live_server, owner_browser) and not sees_albums(live_server, thief)


# ---- guessing ------------------------------------------------------------------------------------------------


def test_an_unknown_email_answers_as_slowly_as_a_wrong_password(app, instance, owner):
    server = LiveServer(instance, env={"LOGIN_RATE_LIMIT": "1000 per minute"}, workers=1,
                        database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    try:
        session, token = browser(server)
        for _ in range(9):  # interleaved, so that a busy moment of the machine slows both alike
            for kind, email in (("unknown", "nobody@example.com"), ("wrong", OWNER_EMAIL)):
                started = time.perf_counter()
                response = session.post(f"{server.url}/login",
                                        data={"email": email, "password": "not it at all", "csrf_token": token},
                                        timeout=30)
                timings[kind].append(time.perf_counter() - started)
                assert response.status_code == 401
    finally:
        server.stop()
    unknown, wrong = statistics.median(timings["unknown"]), statistics.median(timings["wrong"])
    assert 0.5 < unknown / wrong < 2, timings  # before: 8 ms against 146 ms


def test_parallel_wrong_log_ins_are_counted_before_checking(app, instance, tmp_path, owner):
    redis = RedisServer(tmp_path / "redis")
    (instance / "config.py").write_text(f"RATELIMIT_STORAGE_URI = {redis.url!r}\n")
    server = CountingServer(app, instance)
    try:
        session, token = browser(server)

        def guess() -> int:
            return requests.post(f"{server.url}/login", cookies=session.cookies.get_dict(), timeout=60,
                                 data={"email": OWNER_EMAIL, "password": "wrong guess", "csrf_token": token}).status_code

        statuses = Counter(at_once(guess, 64))
    finally:
        server.stop()
        redis.stop()
    assert statuses == Counter({401: 20, 429: 44}), statuses  # LOGIN_RATE_LIMIT: 20 per minute per address
    assert len(server.hashes()) == 20
