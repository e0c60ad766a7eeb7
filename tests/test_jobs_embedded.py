"""Background ZIP preparation in the embedded mode (no broker): the job pool runs inside the app's processes.

HTTP behaviour is checked against a real gunicorn (two workers, so jobs, locks and state must work across
processes); rules that do not depend on the server use the test client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from photoshare import albums
from photoshare.delivery import cache, links
from photoshare.extensions import db
from photoshare.jobs import store
from photoshare.models import Album, DownloadJob, utcnow
from tests.conftest import LiveServer, make_jpeg
from tests.jobs_support import (
    SlowPhoto,
    at_once,
    expected_archive,
    http,
    job_count,
    job_row,
    leave_dead_archive,
    poll_status,
    sha256,
    wait_until,
    zip_cache,
)

pytestmark = pytest.mark.usefixtures("embedded_jobs")


@pytest.fixture
def server(app, instance):
    server = LiveServer(instance, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    yield server
    server.stop()


def big_album(make_album, count: int = 3, title: str = "Wedding") -> int:
    """Photos of noise (~200 KB each): big enough for progress to move in visible steps."""
    return make_album([(f"IMG_{i:04d}.jpg", make_jpeg(300, 300, noise=1)) for i in range(count)], title=title)


def prepare(base: str, token: str, **kwargs) -> tuple[int, dict]:
    reply = http("POST", f"{base}/api/share/{token}/prepare-download", **kwargs)
    return reply.status, reply.json()


def client_poll(client, token: str, job_id: str, until=("ready", "failed"), timeout: float = 20) -> dict:
    def check():
        data = client.get(f"/api/share/{token}/download-status/{job_id}").get_json()
        return data if data["status"] in until else None

    return wait_until(check, timeout=timeout, interval=0.05, what=f"job {job_id}")


def local(url: str) -> str:
    """A download_url (absolute, on BASE_URL) as a path for the test client."""
    return url.removeprefix("http://photoshare.test")


def test_prepare_reports_progress_then_ready_link_resumes_with_range_and_needs_no_password(app, server, make_album, make_share):
    album_id = big_album(make_album)
    token = make_share(album_id, password="open sesame")
    expected = expected_archive(app, album_id)
    slow = SlowPhoto(app, album_id, index=1)
    try:
        assert prepare(server.url, token)[0] == 401  # same password rules as every share endpoint
        status, data = prepare(server.url, token, headers={"X-Share-Password": "open sesame"})
        assert status == 202 and data["status"] == "queued" and data["progress"] == 0
        slow.feed(until=len(slow.data) // 2)  # the build stops half-way through the second photo until the rest
        seen: list[dict] = []

        def midway() -> dict | None:
            reply = http("GET", f"{server.url}/api/share/{token}/download-status/{data['job_id']}",
                         headers={"X-Share-Password": "open sesame"})
            seen.append(reply.json())
            return seen[-1] if 0 < seen[-1]["progress"] < 100 else None

        wait_until(midway, timeout=30, interval=0.1, what="progress between 0 and 100")
        slow.finish()
        ready = poll_status(server.url, token, data["job_id"], seen=seen, headers={"X-Share-Password": "open sesame"})
    finally:
        slow.restore()
    progress = [answer["progress"] for answer in seen]
    assert ready["status"] == "ready" and ready["progress"] == 100
    assert any(0 < p < 100 for p in progress), progress
    assert progress == sorted(progress)
    assert {"processing"} <= {answer["status"] for answer in seen}

    url = ready["download_url"]
    assert url.startswith(f"{server.url}/d/")  # absolute, from BASE_URL
    head = http("HEAD", url)  # no password, no cookie: the signed link is the proof
    assert head.status == 200 and int(head.headers["content-length"]) == len(expected)
    etag = head.headers["etag"]
    assert etag == f'"zip-{job_row(app, data["job_id"]).album_version}"'  # the album version's, as phase 1
    first = http("GET", url, headers={"Range": "bytes=0-999"})
    rest = http("GET", url, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert (first.status, rest.status) == (206, 206)
    assert rest.headers["content-range"] == f"bytes 1000-{len(expected) - 1}/{len(expected)}"
    assert sha256(first.body + rest.body) == sha256(expected)
    assert http("GET", url, headers={"Range": "bytes=1000-", "If-Range": '"zip-stale"'}).status == 200
    assert http("GET", url, headers={"If-None-Match": etag}).status == 304


def test_curl_resumes_an_interrupted_prepared_download(app, server, make_album, make_share, tmp_path):
    album_id = big_album(make_album, count=2)
    token = make_share(album_id)
    _status, data = prepare(server.url, token)
    url = poll_status(server.url, token, data["job_id"])["download_url"]
    out = tmp_path / "album.zip"
    subprocess.run(["curl", "-sS", "-r", "0-4999", "-o", str(out), url], check=True)
    assert out.stat().st_size == 5000
    subprocess.run(["curl", "-sS", "-C", "-", "-o", str(out), url], check=True)
    assert sha256(out.read_bytes()) == sha256(expected_archive(app, album_id))
    subprocess.run(["unzip", "-tq", str(out)], check=True)


def test_download_link_still_works_after_the_server_restarts(app, instance, server, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id)
    url = poll_status(server.url, token, prepare(server.url, token)[1]["job_id"])["download_url"]
    server.stop()  # every process that made or knew the link is gone
    restarted = LiveServer(instance, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        reply = http("GET", restarted.url + url.removeprefix(server.url))  # a new port here, same path
    finally:
        restarted.stop()
    assert reply.status == 200 and sha256(reply.body) == sha256(expected_archive(app, album_id))


def test_cache_hit_answers_ready_at_once_without_building_again(app, client, make_album, make_share):
    album_id = make_album(count=3)
    token = make_share(album_id)
    first = client.post(f"/api/share/{token}/prepare-download")
    assert first.status_code == 202
    client_poll(client, token, first.get_json()["job_id"])
    with app.app_context():
        archive = cache.archive_path(album_id, db.session.get(Album, album_id).version)
    inode = archive.stat().st_ino

    other_visitor = make_share(album_id)
    started = time.monotonic()
    again = client.post(f"/api/share/{other_visitor}/prepare-download")
    elapsed = time.monotonic() - started
    data = again.get_json()
    assert again.status_code == 200 and data["status"] == "ready" and data["progress"] == 100
    assert data["job_id"] == first.get_json()["job_id"] and job_count(app, album_id) == 1
    assert elapsed < 1.0 and archive.stat().st_ino == inode  # nothing was rebuilt
    download = client.get(local(data["download_url"]))
    assert download.status_code == 200 and download.data == expected_archive(app, album_id)


def test_album_change_deletes_cached_zip_and_old_link_answers_410_with_prepare_again(app, client, make_album, make_share):
    album_id = make_album(count=3)
    token = make_share(album_id)
    job_id = client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"]
    old_url = local(client_poll(client, token, job_id)["download_url"])
    assert len(zip_cache(app)) == 1

    with app.app_context():
        albums.rename_photo(db.session.get(Album, album_id).photos[0], "renamed.jpg")

    assert zip_cache(app) == []  # no stale archive left to serve
    page = client.get(old_url)
    assert page.status_code == 410 and f"/s/{token}/prepare" in page.get_data(as_text=True)
    as_json = client.get(old_url, headers={"Accept": "application/json"})
    assert as_json.status_code == 410 and as_json.get_json()["error"] == "album_changed"
    old = client.get(f"/api/share/{token}/download-status/{job_id}").get_json()
    assert old["status"] == "failed" and "album changed" in old["error"]
    fresh = client.post(f"/api/share/{token}/prepare-download").get_json()
    assert fresh["job_id"] != job_id
    new_url = local(client_poll(client, token, fresh["job_id"])["download_url"])
    assert client.get(new_url).data == expected_archive(app, album_id)


def test_concurrent_prepares_from_many_clients_share_one_job(app, server, make_album, make_share):
    album_id = big_album(make_album, count=2)
    token = make_share(album_id)
    slow = SlowPhoto(app, album_id, index=0)  # holds the job mid-build while everyone asks
    try:
        answers = at_once(lambda: prepare(server.url, token))
        slow.finish()
        ready = poll_status(server.url, token, answers[0][1]["job_id"])
    finally:
        slow.restore()
    assert len(answers) == 16 and {status for status, _ in answers} == {202}
    assert len({data["job_id"] for _, data in answers}) == 1
    assert job_count(app, album_id) == 1 and ready["status"] == "ready"
    assert [name for name in zip_cache(app) if name.startswith(".partial")] == []


def test_killed_worker_job_is_failed_partial_removed_and_a_new_prepare_rebuilds(app, server, make_album, make_share):
    album_id = big_album(make_album, count=3)
    token = make_share(album_id)
    slow = SlowPhoto(app, album_id, index=1)
    try:
        job_id = prepare(server.url, token)[1]["job_id"]
        slow.feed(until=len(slow.data) // 2)
        wait_until(lambda: job_row(app, job_id).status == "processing" and any(
            name.startswith(".partial") for name in zip_cache(app)), what="the job to be mid-build")
        pid = int(job_row(app, job_id).worker.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)  # the gunicorn worker running the job dies; the master starts another
        failed = poll_status(server.url, token, job_id, timeout=15)
    finally:
        slow.restore()
    assert failed["status"] == "failed" and failed["error"] == store.INTERRUPTED
    assert zip_cache(app) == []
    status, again = prepare(server.url, token)
    assert status == 202 and again["job_id"] != job_id
    assert poll_status(server.url, token, again["job_id"])["status"] == "ready"


def test_missing_photo_fails_the_job_in_plain_words_and_leaves_no_file(app, client, make_album, make_share):
    album_id = make_album([("beach.jpg", make_jpeg()), ("gone.jpg", make_jpeg(color=(1, 2, 3)))])
    token = make_share(album_id)
    with app.app_context():
        photo = db.session.get(Album, album_id).photos[1]
        Path(app.config["UPLOAD_DIR"], albums.photo_key(photo)).unlink()
    job_id = client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"]
    failed = client_poll(client, token, job_id)
    assert failed["status"] == "failed" and "gone.jpg" in failed["error"] and "Traceback" not in failed["error"]
    assert "download_url" not in failed
    assert zip_cache(app) == []
    assert client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"] != job_id  # retry starts anew


def test_full_disk_fails_the_job_and_leaves_no_partial(app, client, make_album, make_share):
    album_id = big_album(make_album, count=4)  # ~800 KB, on a 256 KB disk
    token = make_share(album_id)
    cache_dir = app.config["ZIP_CACHE_DIR"]
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", cache_dir], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        job_id = client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"]
        failed = client_poll(client, token, job_id)
        leftovers = zip_cache(app)
    finally:
        subprocess.run(["umount", "-l", cache_dir], check=False)
    assert failed["status"] == "failed" and failed["error"] == store.DISK_FULL
    assert leftovers == []


def test_expired_link_is_410_page_offering_to_prepare_again(app, client, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id)
    client_poll(client, token, client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"])
    with app.app_context():
        share_id = db.session.get(Album, album_id).share_links[0].id
        version = db.session.get(Album, album_id).version
        grant = links.Grant(album_id, version, share_id)
        fresh = local(links.url(grant, issued_at=time.time() - 23 * 3600))
        expired = local(links.url(grant, issued_at=time.time() - 25 * 3600))
    assert client.get(fresh).status_code == 200
    page = client.get(expired)
    html = page.get_data(as_text=True)
    assert page.status_code == 410 and f"http://photoshare.test/s/{token}/prepare" in html and "Traceback" not in html
    assert client.get(expired, headers={"Accept": "application/json"}).get_json()["error"] == "link_expired"


def test_tampered_or_foreign_links_are_404_and_revoked_share_is_410(app, client, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id)
    url = local(client_poll(client, token, client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"])["download_url"])
    signed = url.removeprefix("/d/")
    # Change the signature's first character: its last one may only carry base64 padding bits, which decode
    # to the same bytes.
    head, _, signature = signed.rpartition(".")
    flipped = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    payload, _, _rest = signed.partition(".")
    with app.app_context():
        from photoshare.access import access_cookie_value
        from photoshare.models import ShareLink

        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        other_salt = access_cookie_value(link, app.config["SECRET_KEY"])  # signed by us, for something else
    for bad in (flipped, "x" + signed, payload, "not-a-link", other_salt, "..%2f..%2fetc%2fpasswd", "é"):
        response = client.get(f"/d/{bad}")
        assert response.status_code == 404, (bad, response.status_code)
    assert client.head(url).status_code == 200
    with app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        link.revoked = True
        db.session.commit()
    assert client.get(url).status_code == 410


def test_status_of_a_job_from_another_share_or_an_unknown_id_is_404(app, client, make_album, make_share):
    mine, theirs = make_share(make_album(count=1, title="Mine")), make_share(make_album(count=1, title="Theirs"))
    job_id = client.post(f"/api/share/{theirs}/prepare-download").get_json()["job_id"]
    assert client.get(f"/api/share/{mine}/download-status/{job_id}").status_code == 404
    assert client.get(f"/api/share/{mine}/download-status/{'0' * 32}").status_code == 404
    assert client.get(f"/api/share/{mine}/download-status/{'x' * 300}").status_code == 404
    assert client.get(f"/api/share/{theirs}/download-status/{job_id}").status_code == 200


def test_prepare_refuses_when_downloads_are_off_or_album_is_empty(app, client, make_album, make_share):
    no_downloads = make_share(make_album(count=1), downloads_allowed=False)
    assert client.post(f"/api/share/{no_downloads}/prepare-download").status_code == 403
    empty = make_share(make_album(files=[]))
    response = client.post(f"/api/share/{empty}/prepare-download")
    assert response.status_code == 404 and response.get_json()["error"] == "empty_album"


def test_cleanup_fails_stuck_jobs_and_sweeps_expired_outdated_and_over_budget_zips_but_not_one_in_use(
    app, client, runner, make_album, make_share
):
    kept, expired, in_use = (make_album(count=1, title=t) for t in ("Kept", "Expired", "In use"))
    for album_id in (kept, expired, in_use):
        token = make_share(album_id)
        client_poll(client, token, client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"])
    with app.app_context():
        version = {a: db.session.get(Album, a).version for a in (kept, expired, in_use)}
        path = {a: cache.archive_path(a, version[a]) for a in version}
        old = time.time() - 25 * 3600
        os.utime(path[expired], (old, old))
        os.utime(path[in_use], (old, old))
        outdated = cache.archive_path(kept, "0123456789abcdef")  # a version the album no longer has
        outdated.write_bytes(b"old")
        stuck = DownloadJob(id="f" * 32, album_id=kept, album_version="x", status="processing",
                            heartbeat_at=utcnow() - timedelta(seconds=10), active_key=f"{kept}:x")
        db.session.add(stuck)
        db.session.commit()
        cache.partial_path(stuck.id).write_bytes(b"half")
        held = cache.open_cached(in_use, version[in_use])  # a download of it is running
        abandoned = Path(app.config["TEMP_DIR"], "album-deadbeef.zip")  # left by a killed "Download all"
        abandoned.write_bytes(b"half")
        app.config["ZIP_CACHE_MAX_GB"] = 0  # everything is over budget

    try:
        result = runner.invoke(args=["cleanup"])
    finally:
        held.release()
    assert result.exit_code == 0 and "stuck jobs failed: 1" in result.output
    assert not path[expired].exists() and not outdated.exists() and not path[kept].exists()
    assert path[in_use].exists()  # never removed while it is being downloaded
    assert not any(name.startswith(".partial") for name in zip_cache(app))
    assert job_row(app, "f" * 32).status == "failed"
    assert not abandoned.exists()


@pytest.fixture
def smtp(app):
    from tests.jobs_support import SmtpSink

    sink = SmtpSink()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_FROM="photos@example.com")
    yield sink
    sink.stop()


def test_email_is_sent_when_ready_with_a_link_that_works(app, client, make_album, make_share, smtp):
    album_id = make_album(count=2, title="Reunion")
    token = make_share(album_id)
    bad = client.post(f"/api/share/{token}/prepare-download", json={"email": "not an address"})
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_email"
    response = client.post(f"/api/share/{token}/prepare-download", json={"email": "Guest@Example.com"})
    assert response.status_code in (200, 202)
    client_poll(client, token, response.get_json()["job_id"])
    wait_until(lambda: smtp.messages, timeout=10, what="the e-mail")

    message = smtp.messages[0]
    assert message["To"] == "Guest@example.com" and "Reunion" in message["Subject"]
    body = message.get_content()
    url = next(word for word in body.split() if word.startswith("http://photoshare.test/d/"))
    assert "24 hours" in body and "UTC" in body
    assert client.get(local(url)).data == expected_archive(app, album_id)

    # Asked once the ZIP is ready: answered at once, and that address gets its e-mail too (each one once).
    late = client.post(f"/api/share/{token}/prepare-download", json={"email": "late@example.com"})
    assert late.status_code == 200 and late.get_json()["status"] == "ready"
    wait_until(lambda: len(smtp.messages) == 2, timeout=10, what="the second e-mail")
    client.post(f"/api/share/{token}/prepare-download", json={"email": "late@example.com"})
    time.sleep(0.3)
    assert [m["To"] for m in smtp.messages] == ["Guest@example.com", "late@example.com"]


def test_a_prepared_selection_e_mails_a_link_to_its_own_photos(app, client, make_album, make_share, smtp):
    album_id = make_album(count=3, title="Reunion")
    token = make_share(album_id)
    with app.app_context():
        ids = [photo.id for photo in db.session.get(Album, album_id).photos]
    selection = client.post(f"/api/share/{token}/selections", json={"photo_ids": [ids[2], ids[0]]}).get_json()
    response = client.post(f"/api/share/{token}/prepare-download",
                           json={"email": "guest@example.com", "selection_id": selection["selection_id"]})
    assert response.status_code in (200, 202)
    client_poll(client, token, response.get_json()["job_id"])
    wait_until(lambda: smtp.messages, timeout=10, what="the e-mail")
    body = smtp.messages[0].get_content()
    assert "(2 photos," in body
    url = next(word for word in body.split() if word.startswith("http://photoshare.test/d/"))
    sent = client.get(local(url))
    assert sent.status_code == 200 and sent.data == client.get(urlsplit(selection["download_url"]).path).data
    assert "Reunion (2 photos).zip" in sent.headers["Content-Disposition"]


def test_email_goes_through_starttls_and_login_when_configured(app, client, make_album, make_share, tmp_path, monkeypatch):
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.jobs_support import SmtpSink

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this test's server, and checks it
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[bytes] = []

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (b"mailer", b"s3cret")
        logins.append(auth_data.login if ok else b"refused")
        return AuthResult(success=ok)

    # The server refuses mail before STARTTLS and before a login: only a client that does both gets through.
    sink = SmtpSink(tls_context=server_tls, require_starttls=True, authenticator=authenticate, auth_required=True)
    app.config.update(SMTP_HOST="localhost", SMTP_PORT=sink.port, SMTP_STARTTLS=True, SMTP_USER="mailer",
                      SMTP_PASSWORD="s3cret", SMTP_FROM="photos@example.com")
    try:
        token = make_share(make_album(count=1, title="Secure"))
        job_id = client.post(f"/api/share/{token}/prepare-download", json={"email": "guest@example.com"}).get_json()["job_id"]
        assert client_poll(client, token, job_id)["status"] == "ready"
        wait_until(lambda: sink.messages, timeout=10, what="the e-mail over STARTTLS")
    finally:
        sink.stop()
    assert logins == [b"mailer"] and "Secure" in sink.messages[0]["Subject"]


def test_email_requests_are_rate_limited_per_client(app, client, make_album, make_share):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=9, NOTIFY_RATE_LIMIT="2 per hour")  # nothing listens
    token = make_share(make_album(count=1))
    codes = [client.post(f"/api/share/{token}/prepare-download", json={"email": f"v{i}@example.com"}).status_code
             for i in range(3)]
    assert set(codes[:2]) <= {200, 202} and codes[2] == 429
    response = client.post(f"/api/share/{token}/prepare-download")
    assert response.status_code in (200, 202)  # no e-mail asked: no limit
    # Nothing listens on the SMTP port: the sends fail, are logged, and the job is still ready.
    assert client_poll(client, token, response.get_json()["job_id"])["status"] == "ready"


def test_preparing_page_has_progress_bar_email_field_and_script(app, client, make_album, make_share):
    token = make_share(make_album(count=2, title="Graduation"))
    html = client.get(f"/s/{token}/prepare").get_data(as_text=True)
    assert "<progress" in html and "js/prepare.js" in html and "Graduation" in html
    assert f"/api/share/{token}/prepare-download" in html
    app.config["SMTP_HOST"] = "127.0.0.1"
    assert 'type="email"' in client.get(f"/s/{token}/prepare").get_data(as_text=True)
    locked = make_share(make_album(count=1), password="secret")
    assert client.get(f"/s/{locked}/prepare").status_code == 401  # the password form, as on the gallery


def test_size_budget_evicts_the_least_recently_used_zip_first(app, client, runner, make_album, make_share):
    older, newer = make_album(count=2, title="Older"), make_album(count=2, title="Newer")
    for album_id in (older, newer):
        token = make_share(album_id)
        client_poll(client, token, client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"])
    with app.app_context():
        path = {a: cache.archive_path(a, db.session.get(Album, a).version) for a in (older, newer)}
    now = time.time()
    os.utime(path[older], (now - 3600, now - 3600))  # used an hour ago; the newer one just now
    os.utime(path[newer], (now - 60, now - 60))
    # Room for the larger of the two, not for both: exactly one has to go, and it must be the older.
    app.config["ZIP_CACHE_MAX_GB"] = max(p.stat().st_size for p in path.values()) / 1024**3

    result = runner.invoke(args=["cleanup"])

    assert result.exit_code == 0 and "1 over budget" in result.output
    assert not path[older].exists() and path[newer].exists()


def test_download_all_goes_through_the_preparing_page_above_the_byte_threshold_too(app, client, make_album, make_share):
    app.config.update(PREPARE_THRESHOLD=100, PREPARE_THRESHOLD_MB=1)
    heavy = make_share(make_album([(f"IMG_{i}.jpg", make_jpeg(700, 700, noise=1)) for i in range(3)]))  # > 1 MB
    light = make_share(make_album(count=6))  # more photos, a few KB
    assert f'href="/s/{heavy}/prepare"' in client.get(f"/s/{heavy}").get_data(as_text=True)
    assert f'href="/api/share/{light}/download-all"' in client.get(f"/s/{light}").get_data(as_text=True)


def test_queued_job_orphaned_by_a_dead_process_is_picked_up_again(app, client, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id)
    with app.app_context():
        version = db.session.get(Album, album_id).version
        # As left by a process that died with the job still waiting in its pool: queued, never claimed.
        db.session.add(DownloadJob(id="a" * 32, album_id=album_id, album_version=version, status="queued",
                                   active_key=f"{album_id}:{version}", created_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
    response = client.post(f"/api/share/{token}/prepare-download")
    assert response.get_json()["job_id"] == "a" * 32  # visitors still join it...
    assert client_poll(client, token, "a" * 32)["status"] == "ready"  # ...and it is taken over and built
    assert job_count(app, album_id) == 1


def test_embedded_sweeper_thread_removes_expired_zips_on_its_own(app, client, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id)
    client_poll(client, token, client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"])
    (archive,) = [Path(app.config["ZIP_CACHE_DIR"], name) for name in zip_cache(app)]
    old = time.time() - 25 * 3600
    os.utime(archive, (old, old))
    runner = app.extensions["photoshare.jobs"]
    runner.stop()
    app.config["JOB_SWEEP_SECONDS"] = 1  # the pool's periodic task, every second
    runner.ensure_started()
    wait_until(lambda: not archive.exists(), timeout=10, what="the periodic sweep")


def test_embedded_sweeper_starts_with_any_request_and_removes_dead_download_all_leftovers(app, client):
    app.config["JOB_SWEEP_SECONDS"] = 1
    client.get("/login")  # no "Download all", no prepare: any request starts this process's sweeper
    files = leave_dead_archive(app.config)
    wait_until(lambda: not any(path.exists() for path in files), timeout=10, what="the periodic sweep")


def test_synchronous_download_all_serves_the_prepared_zip_without_building(app, client, make_album, make_share):
    album_id = make_album(count=3)
    token = make_share(album_id)
    client_poll(client, token, client.post(f"/api/share/{token}/prepare-download").get_json()["job_id"])
    expected = expected_archive(app, album_id)
    with app.app_context():
        album = db.session.get(Album, album_id)
        version = album.version
        # Gone from storage, album unchanged: a build would fail, only the cached ZIP can answer.
        Path(app.config["UPLOAD_DIR"], albums.photo_key(album.photos[2])).unlink()
    response = client.get(f"/api/share/{token}/download-all")
    assert response.status_code == 200 and response.data == expected
    assert response.headers["ETag"] == f'"zip-{version}"'  # the same validator as a built one
    ranged = client.get(f"/api/share/{token}/download-all", headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.data == expected[100:200]
    assert list(Path(app.config["TEMP_DIR"]).iterdir()) == []
