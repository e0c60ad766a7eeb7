"""The production stack: nginx with deploy/nginx.conf in front of gunicorn with deploy/gunicorn.conf.py.

The download suite runs through nginx twice: with SENDFILE_BACKEND=x-accel (nginx sends the files after the
app's checks) and without (the app streams them through nginx). Both behind PROXY_FIX_HOPS=1, with the rate
limits in Redis as in production, so that limits and generated links see the visitor as nginx saw them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from photoshare import albums, create_app
from photoshare.access import create_share_link
from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import Album, Photo, ShareLink, utcnow
from tests.conftest import base_config, make_jpeg
from tests.jobs_support import RedisServer, wait_until
from tests.nginx_support import Reply, Stack, fetch, make_certificate, start_stack, world_readable_tempdir

PASSWORD = "open sesame"
NGINX_ETAG = re.compile(r'^"[0-9a-f]+-[0-9a-f]+"$')
MODES = {
    "x-accel": {"SENDFILE_BACKEND": "x-accel", "PROXY_FIX_HOPS": "1"},
    "app": {"SENDFILE_BACKEND": "", "PROXY_FIX_HOPS": "1"},
}
COMMON = {"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute", "PASSWORD_RATE_LIMIT": "5 per minute", "MAX_UPLOAD_MB": "1",
          "ARCHIVE_PART_MB": "0.4"}  # the album (4 photos of about 180 KB) comes in parts too


@dataclass
class Site:
    """The data every stack serves: one instance folder, database and set of share links."""

    app: Flask
    root: Path
    instance: Path
    cert: Path
    key: Path
    owner_id: int
    album_id: int
    photo_ids: list[int]
    other_photo_id: int
    tokens: dict[str, str]

    def new_share(self, **kwargs: Any) -> str:
        with self.app.app_context():
            return create_share_link(db.session.get(Album, self.album_id), **kwargs).token

    def photo(self, photo_id: int) -> Photo:
        with self.app.app_context():
            photo = db.session.get(Photo, photo_id)
            db.session.expunge(photo)
            return photo

    def original(self, photo_id: int) -> bytes:
        return (self.instance / "uploads" / albums.photo_key(self.photo(photo_id))).read_bytes()

    def version(self) -> str:
        with self.app.app_context():
            return db.session.get(Album, self.album_id).version

    def downloads(self, token: str) -> int:
        with self.app.app_context():
            return db.session.execute(db.select(ShareLink.download_count).where(ShareLink.token == token)).scalar_one()

    def cached_archive(self) -> Path:
        return self.instance / "zip-cache" / f"album-{self.album_id}-{self.version()}.zip"


def noise_jpeg(side: int, seed: int) -> bytes:
    return make_jpeg(side, side, color=(seed * 50 % 256, 90, 120), noise=1)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    root = world_readable_tempdir("photoshare-nginx-")
    instance = root / "instance"
    instance.mkdir()
    redis = RedisServer(root / "redis")
    # The limiter's counters in Redis, shared by every gunicorn worker (REDIS_URL would also turn on Celery).
    (instance / "config.py").write_text(f"RATELIMIT_STORAGE_URI = {redis.url!r}\n")
    cert, key = make_certificate(root)
    app = create_app(base_config(instance))
    with app.app_context():
        db.create_all()
        owner = create_user("owner@example.com", "correct horse battery")
        album = albums.create_album(owner, "Été à Nice")
        names = ["IMG_0001.jpg", "Plage d'été.jpg", "IMG_0003.jpg", "IMG_0004.jpg"]
        for index, name in enumerate(names):
            albums.add_photo(album, name, io.BytesIO(noise_jpeg(420, index)), commit=False)
        albums.refresh_version(album)
        other = albums.create_album(owner, "Other")
        other_photo = albums.add_photo(other, "secret.jpg", io.BytesIO(noise_jpeg(64, 9)))
        albums.refresh_version(other)
        tokens = {
            "open": create_share_link(album).token,
            "password": create_share_link(album, password=PASSWORD).token,
            "expired": create_share_link(album, expires_at=utcnow() - timedelta(hours=1)).token,
            "no-downloads": create_share_link(album, downloads_allowed=False).token,
        }
        revoked = create_share_link(album)
        revoked.revoked = True
        db.session.commit()
        tokens["revoked"] = revoked.token
        site = Site(app, root, instance, cert, key, owner.id, album.id, [p.id for p in album.photos], other_photo.id,
                    tokens)
    yield site
    redis.stop()
    with app.app_context():
        db.engine.dispose()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", params=list(MODES))
def stack(request, site: Site) -> Iterator[Stack]:
    mode = request.param
    started = start_stack(site.root / f"nginx-{mode}", site.instance, cert=site.cert, key=site.key,
                          database_url=site.app.config["SQLALCHEMY_DATABASE_URI"], settings={**COMMON, **MODES[mode]})
    yield started
    started.stop()


def curl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["curl", "--silent", "--show-error", "--insecure", *map(str, args)],
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def read_then_hang_up(url: str, count: int) -> bytes:
    """The first `count` bytes of a download, then the client closes the connection mid-body."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    context = ssl._create_unverified_context()
    connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        assert response.status == 200 and int(response.headers["Content-Length"]) > count
        return response.read(count)
    finally:
        connection.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_served_by(stack: Stack, reply: Reply, app_etag: str) -> None:
    """With X-Accel nginx sent the bytes (its ETag, from mtime and size); without, the app did (its ETag)."""
    assert "X-Accel-Redirect" not in reply.headers
    if stack.x_accel:
        assert NGINX_ETAG.match(reply.header("ETag") or ""), reply.header("ETag")
    else:
        assert reply.header("ETag") == f'"{app_etag}"'


# ---- one photo -----------------------------------------------------------------------------------------------


def test_photo_download_keeps_name_type_and_bytes(stack: Stack, site: Site):
    photo_id = site.photo_ids[1]
    photo, original = site.photo(photo_id), site.original(photo_id)
    reply = fetch(f"{stack.url}/api/share/{site.tokens['open']}/download/{photo_id}")
    assert reply.status == 200 and reply.body == original
    assert reply.header("Content-Type") == "image/jpeg"
    assert reply.header("Content-Length") == str(len(original))
    assert reply.header("Accept-Ranges") == "bytes"
    assert reply.header("Content-Disposition") == (
        "attachment; filename=\"Plage d'ete.jpg\"; filename*=UTF-8''Plage%20d%27%C3%A9t%C3%A9.jpg"
    )
    assert_served_by(stack, reply, photo.sha256)
    head = fetch(f"{stack.url}/api/share/{site.tokens['open']}/download/{photo_id}", method="HEAD")
    assert head.status == 200 and head.body == b"" and head.header("Content-Length") == str(len(original))


def test_photo_ranges_suffix_open_and_unsatisfiable(stack: Stack, site: Site):
    photo_id = site.photo_ids[0]
    original = site.original(photo_id)
    size = len(original)
    url = f"{stack.url}/api/share/{site.tokens['open']}/download/{photo_id}"
    first = fetch(url, headers={"Range": "bytes=0-999"})
    assert first.status == 206 and first.body == original[:1000]
    assert first.header("Content-Range") == f"bytes 0-999/{size}"
    rest = fetch(url, headers={"Range": "bytes=1000-"})
    assert rest.status == 206 and first.body + rest.body == original
    suffix = fetch(url, headers={"Range": f"bytes=-{size + 5000}"})  # longer than the file: all of it
    assert suffix.status == 206 and suffix.body == original
    assert suffix.header("Content-Range") == f"bytes 0-{size - 1}/{size}"
    beyond = fetch(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status == 416 and beyond.header("Content-Range") == f"bytes */{size}"
    other_unit = fetch(url, headers={"Range": "pages=1-2"})
    assert other_unit.status == 200 and other_unit.body == original


def test_photo_if_range_current_etag_resumes_and_stale_gives_whole_file(stack: Stack, site: Site):
    photo_id = site.photo_ids[2]
    original = site.original(photo_id)
    url = f"{stack.url}/api/share/{site.tokens['open']}/download/{photo_id}"
    etag = fetch(url, method="HEAD").header("ETag")
    resumed = fetch(url, headers={"Range": "bytes=100-", "If-Range": etag})
    assert resumed.status == 206 and resumed.body == original[100:]
    stale = fetch(url, headers={"Range": "bytes=100-", "If-Range": '"not-the-current-one"'})
    assert stale.status == 200 and stale.body == original
    assert fetch(url, headers={"If-None-Match": etag}).status == 304


def test_photo_of_another_album_is_404_like_an_unknown_one(stack: Stack, site: Site):
    base = f"{stack.url}/api/share/{site.tokens['open']}/download"
    other, unknown = fetch(f"{base}/{site.other_photo_id}"), fetch(f"{base}/999999")
    assert other.status == unknown.status == 404
    assert other.body == unknown.body and b"secret" not in other.body


def test_internal_locations_cannot_be_fetched_directly(stack: Stack, site: Site):
    photo = site.photo(site.photo_ids[0])
    assert fetch(f"{stack.url}/_accel/uploads/{albums.photo_key(photo)}").status == 404
    assert fetch(f"{stack.url}/_accel/zip-cache/").status == 404


# ---- share rules -----------------------------------------------------------------------------------------------


def test_password_rules_apply_through_nginx(stack: Stack, site: Site):
    token = site.tokens["password"]
    url = f"{stack.url}/api/share/{token}/download/{site.photo_ids[0]}"
    original = site.original(site.photo_ids[0])
    assert fetch(url).status == 401
    assert fetch(url, headers={"X-Share-Password": "wrong"}, source="127.0.0.9").status == 403
    assert fetch(url, headers={"X-Share-Password": PASSWORD}).body == original
    assert fetch(f"{url}?password={PASSWORD.replace(' ', '%20')}").body == original


@pytest.mark.parametrize("kind, status", [("expired", 410), ("revoked", 410), ("no-downloads", 403)])
def test_closed_links_answer_with_the_apps_page_through_nginx(stack: Stack, site: Site, kind: str, status: int):
    token = site.tokens[kind]
    api = fetch(f"{stack.url}/api/share/{token}/download-all")
    assert api.status == status and api.header("Content-Type") == "application/json"
    if kind != "no-downloads":
        page = fetch(f"{stack.url}/s/{token}")
        assert page.status == status and b"<html" in page.body.lower() and b"Traceback" not in page.body
    assert fetch(f"{stack.url}/s/no-such-token").status == 404
    assert fetch(f"{stack.url}/api/share/no-such-token/download-all").status == 404


# ---- the whole album -------------------------------------------------------------------------------------------


@pytest.fixture
def full_archive(stack: Stack, site: Site, tmp_path: Path) -> tuple[str, Path]:
    url = f"{stack.url}/api/share/{site.tokens['open']}/download-all"
    path = tmp_path / "full.zip"
    curl("--output", path, url)
    assert zipfile.ZipFile(path).testzip() is None
    return url, path


def test_download_all_resumes_with_curl(stack: Stack, site: Site, full_archive, tmp_path: Path):
    url, full = full_archive
    partial = tmp_path / "partial.zip"
    partial.write_bytes(full.read_bytes()[: full.stat().st_size // 3])  # what an interrupted download leaves
    curl("--continue-at", "-", "--output", partial, url)
    assert sha256(partial.read_bytes()) == sha256(full.read_bytes())
    assert subprocess.run(["unzip", "-tq", str(partial)], capture_output=True).returncode == 0


def test_download_all_resumes_with_wget(stack: Stack, site: Site, full_archive, tmp_path: Path):
    url, full = full_archive
    partial = tmp_path / "wget.zip"
    partial.write_bytes(full.read_bytes()[:123_457])
    done = subprocess.run(["wget", "--quiet", "--no-check-certificate", "--continue", "--output-document",
                           str(partial), url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sha256(partial.read_bytes()) == sha256(full.read_bytes())
    assert subprocess.run(["unzip", "-tq", str(partial)], capture_output=True).returncode == 0


def test_download_all_really_interrupted_then_resumed(stack: Stack, site: Site, full_archive, tmp_path: Path):
    url, full = full_archive
    partial = tmp_path / "cut.zip"
    partial.write_bytes(read_then_hang_up(url, 100_000))  # the connection drops after 100 kB
    curl("--continue-at", "-", "--output", partial, url)
    assert partial.read_bytes() == full.read_bytes()


def test_download_all_if_range_and_ranges_fit_together(stack: Stack, site: Site, full_archive):
    url, full = full_archive
    data = full.read_bytes()
    head = fetch(url, method="HEAD")
    assert head.status == 200 and head.header("Content-Length") == str(len(data))
    assert head.header("Content-Type") == "application/zip"
    assert head.header("Content-Disposition") == (
        'attachment; filename="Ete a Nice.zip"; filename*=UTF-8\'\'%C3%89t%C3%A9%20%C3%A0%20Nice.zip'
    )
    etag = head.header("ETag")
    assert_served_by(stack, head, f"zip-{site.version()}")
    first = fetch(url, headers={"Range": "bytes=0-999", "If-Range": etag})
    rest = fetch(url, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert (first.status, rest.status) == (206, 206) and first.body + rest.body == data
    stale = fetch(url, headers={"Range": "bytes=1000-", "If-Range": '"stale"'})
    assert stale.status == 200 and stale.body == data


def test_download_counts_once_per_download_through_nginx(stack: Stack, site: Site):
    token = site.new_share()
    url = f"{stack.url}/api/share/{token}/download/{site.photo_ids[0]}"
    fetch(url, headers={"Range": "bytes=0-99"})
    assert site.downloads(token) == 0
    fetch(url)
    wait_until(lambda: site.downloads(token) == 1, timeout=5, what="the download to count")
    fetch(url, method="HEAD")
    time.sleep(0.2)
    assert site.downloads(token) == 1


def test_cached_archive_keeps_nginx_etag_across_a_rebuild(stack: Stack, site: Site, tmp_path: Path):
    """Prepared ("Download all" of a big album) ZIPs come from the cache; a rebuilt one resumes the first."""
    token = site.tokens["open"]

    def prepared_url() -> str:
        job = fetch(f"{stack.url}/api/share/{token}/prepare-download", method="POST")
        assert job.status in (200, 202), job.body
        job_id = re.search(rb'"job_id": ?"([^"]+)"', job.body).group(1).decode()

        def ready() -> str | None:
            status = fetch(f"{stack.url}/api/share/{token}/download-status/{job_id}")
            found = re.search(rb'"download_url": ?"([^"]+)"', status.body)
            return found.group(1).decode() if found else None

        return wait_until(ready, timeout=30, what="the archive to be prepared")

    url = prepared_url()
    assert url.startswith(stack.url + "/d/")  # BASE_URL is nginx's https address
    first = fetch(url)
    assert first.status == 200 and zipfile.ZipFile(io.BytesIO(first.body)).testzip() is None
    etag = first.header("ETag")
    assert_served_by(stack, first, f"zip-{site.version()}")

    site.cached_archive().unlink()  # swept from the cache: the next "Download all" builds it again
    time.sleep(1.1)  # a rebuild one second later would get another mtime if nothing pinned it
    rebuilt = fetch(f"{stack.url}/api/share/{token}/download-all", method="HEAD")
    assert rebuilt.status == 200 and rebuilt.header("ETag") == etag
    site.cached_archive().unlink(missing_ok=True)  # (x-accel put it back) once more, by a background preparation
    url = prepared_url()
    again = fetch(url, method="HEAD")
    assert again.header("ETag") == etag
    resumed = fetch(url, headers={"Range": "bytes=5000-", "If-Range": etag})
    assert resumed.status == 206 and resumed.body == first.body[5000:]


def test_a_selection_and_a_part_resume_and_keep_their_etag_through_nginx(stack: Stack, site: Site, tmp_path: Path):
    """A selection and part 2 of the album: whole, cut at 100 KB and resumed with `curl -C -`, each entry the
    original's bytes; the second request is handed to nginx (X-Accel) under the same ETag as the first."""
    token = site.tokens["open"]
    listing = json.loads(fetch(f"{stack.url}/api/share/{token}").body)
    assert len(listing["archives"]) >= 2
    part = listing["archives"][1]
    made = fetch(f"{stack.url}/api/share/{token}/selections", method="POST",
                 headers={"Content-Type": "application/json"},
                 body=json.dumps({"photo_ids": [site.photo_ids[3], site.photo_ids[1]]}).encode())
    assert made.status in (200, 201), made.body
    selection = json.loads(made.body)
    for url, photo_ids in ((selection["download_url"], [site.photo_ids[1], site.photo_ids[3]]),
                           (part["download_url"], None)):
        assert url.startswith(stack.url)  # BASE_URL is nginx's https address
        whole, cut = tmp_path / "whole.zip", tmp_path / "cut.zip"
        curl("-o", whole, url)
        data = whole.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            if photo_ids is not None:
                assert [archive.read(info) for info in archive.infolist()] == [site.original(i) for i in photo_ids]
        subprocess.run(["bash", "-c", f"curl -sk '{url}' | head -c 100000 > '{cut}'"], check=True, timeout=60)
        assert cut.stat().st_size == 100_000
        curl("-C", "-", "-o", cut, url)
        assert cut.read_bytes() == data
        first, second = fetch(url, method="HEAD"), fetch(url, method="HEAD")
        assert first.header("ETag") == second.header("ETag")
        assert int(first.header("Content-Length")) == len(data)
        resumed = fetch(url, headers={"Range": "bytes=5000-", "If-Range": first.header("ETag")})
        assert resumed.status == 206 and resumed.body == data[5000:]
        if stack.x_accel:
            assert NGINX_ETAG.match(first.header("ETag") or "")


# ---- static files, uploads, HTTPS ----------------------------------------------------------------------------


def test_static_files_come_from_nginx_not_the_app(stack: Stack, site: Site):
    reply = fetch(f"{stack.url}/static/css/app.css")
    assert reply.status == 200 and reply.header("Content-Type") == "text/css"
    assert NGINX_ETAG.match(reply.header("ETag") or "")
    assert "/static/css/app.css" not in stack.gunicorn.log.read_text()


def test_thumbnails_come_from_nginx_once_the_app_checked_the_share(stack: Stack, site: Site):
    photo = site.photo(site.photo_ids[0])
    url = f"{stack.url}/s/{site.tokens['open']}/thumb/{photo.id}"
    reply = fetch(url)
    assert reply.status == 200 and reply.header("Content-Type") == "image/jpeg"
    assert reply.body == (site.instance / "uploads" / albums.thumbnail_key(photo)).read_bytes()
    assert reply.header("Cache-Control") == "private, max-age=31536000, immutable"
    app_etag = f"{photo.sha256}-t{site.app.config['THUMBNAIL_SIZE']}"
    assert_served_by(stack, reply, app_etag)
    assert fetch(url, headers={"If-None-Match": reply.header("ETag") or ""}).status == 304
    locked = fetch(f"{stack.url}/s/{site.tokens['password']}/thumb/{photo.id}")
    assert locked.status == 401 and locked.body[:2] != b"\xff\xd8"  # no JPEG without the password


def test_upload_over_the_limit_is_refused_by_nginx(stack: Stack, site: Site):
    body = b"x" * (1024 * 1024 + 10)
    reply = fetch(f"{stack.url}/albums/{site.album_id}/photos", method="POST", body=body,
                  headers={"Content-Type": "application/octet-stream"})
    assert reply.status == 413 and b"nginx" in reply.body


def test_owner_logs_in_and_uploads_through_nginx(stack: Stack, site: Site):
    """Log-in and upload over HTTPS behind the proxy: CSRF's referrer check sees nginx's scheme, host and port."""
    import requests
    import urllib3

    from tests.conftest import OWNER_PASSWORD, csrf_token

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    with requests.Session() as browser:
        browser.verify, browser.trust_env = False, False  # our own certificate; CURL_CA_BUNDLE would win
        login_page = browser.get(f"{stack.url}/login")
        browser.post(f"{stack.url}/login", data={"email": "owner@example.com", "password": OWNER_PASSWORD,
                                                 "csrf_token": csrf_token(login_page.text)},
                     headers={"Referer": f"{stack.url}/login"})
        album_page = f"{stack.url}/albums/{site.album_id}"
        token = csrf_token(browser.get(album_page).text)
        photo = noise_jpeg(200, 7)
        reply = browser.post(f"{album_page}/photos", files={"photos": ("Upload via nginx.jpg", photo, "image/jpeg")},
                             headers={"Accept": "application/json", "X-CSRFToken": token, "Referer": album_page})
    assert reply.status_code == 200, reply.text
    assert reply.json()["saved"] == 1
    with site.app.app_context():
        album = db.session.get(Album, site.album_id)
        uploaded = [p for p in album.photos if p.original_filename == "Upload via nginx.jpg"]
        assert len(uploaded) == 1
        albums.delete_photo(uploaded[0])  # leave the album as the other tests know it


def test_plain_http_redirects_to_https(stack: Stack):
    reply = fetch(f"http://127.0.0.1:{stack.nginx.http_port}/s/abc?x=1")
    assert reply.status == 301
    assert reply.header("Location") == "https://127.0.0.1/s/abc?x=1"


def test_healthz_answers_through_nginx(stack: Stack):
    reply = fetch(f"{stack.url}/healthz")
    assert reply.status == 200 and b'"status":"ok"' in reply.body.replace(b" ", b"")


# ---- behind a proxy: ProxyFix ------------------------------------------------------------------------------------


def wrong_password_statuses(url: str, source: str, count: int, headers: dict[str, str] | None = None) -> list[int]:
    return [fetch(url, headers={"X-Share-Password": "wrong", **(headers or {})}, source=source).status
            for _ in range(count)]


def access_cookie(stack: Stack, token: str) -> str:
    reply = fetch(f"{stack.url}/s/{token}?password={PASSWORD.replace(' ', '%20')}")
    cookies = [c for c in reply.headers.get_all("Set-Cookie") or [] if not c.startswith("session=")]
    assert reply.status == 303 and len(cookies) == 1, cookies
    return cookies[0]


def test_password_limit_counts_each_visitor_nginx_sees(stack: Stack, site: Site):
    token = site.new_share(password=PASSWORD)
    url = f"{stack.url}/api/share/{token}"
    assert wrong_password_statuses(url, "127.0.0.2", 6) == [403] * 5 + [429]  # PASSWORD_RATE_LIMIT: 5 per minute
    # Claiming another address does not help: ProxyFix believes only the entry nginx appended.
    assert wrong_password_statuses(url, "127.0.0.2", 1, {"X-Forwarded-For": "203.0.113.7"}) == [429]
    # Another visitor behind the same nginx keeps a bucket of its own.
    assert wrong_password_statuses(url, "127.0.0.3", 1) == [403]


def test_app_sees_https_from_nginx(stack: Stack, site: Site):
    cookie = access_cookie(stack, site.tokens["password"])
    assert "; Secure" in cookie  # request.is_secure: the scheme came from X-Forwarded-Proto


@pytest.fixture
def stack_without_proxy_fix(site: Site) -> Iterator[Stack]:
    started = start_stack(site.root / "nginx-no-proxy-fix", site.instance, cert=site.cert, key=site.key,
                          database_url=site.app.config["SQLALCHEMY_DATABASE_URI"], gunicorn_workers=1,
                          settings={**COMMON, "PROXY_FIX_HOPS": "0"})
    yield started
    started.stop()


def test_without_proxy_fix_every_visitor_is_nginx(stack_without_proxy_fix: Stack, site: Site):
    """What PROXY_FIX_HOPS=1 prevents: one visitor's wrong guesses lock out everyone, cookies lose Secure."""
    stack = stack_without_proxy_fix
    token = site.new_share(password=PASSWORD)
    url = f"{stack.url}/api/share/{token}"
    assert wrong_password_statuses(url, "127.0.0.2", 6)[-1] == 429
    assert wrong_password_statuses(url, "127.0.0.3", 1) == [429]
    assert "; Secure" not in access_cookie(stack, site.tokens["password"])


def test_every_answer_through_nginx_has_one_of_each_security_header(stack: Stack, site: Site):
    """nginx drops the app's headers when it follows X-Accel-Redirect, and sends its own files: it adds the
    headers there, and never a second copy of a header the app already sent."""
    token, photo_id = site.tokens["open"], site.photo_ids[0]
    urls = {
        "gallery page": f"/s/{token}",
        "photo download": f"/api/share/{token}/download/{photo_id}",
        "thumbnail": f"/s/{token}/thumb/{photo_id}",
        "static file": "/static/css/app.css",
        "app's 404": "/s/no-such-link-xxxxxxxxxxxxxxxxxxxx",
        "nginx's 404": "/static/no-such-file.css",
    }
    problems = []
    for kind, path in urls.items():
        reply = fetch(stack.url + path)
        for name in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
                     "Strict-Transport-Security"):
            values = reply.headers.get_all(name) or []
            if len(values) != 1:
                problems.append(f"{kind} ({reply.status}): {name} {values}")
        policy = reply.header("Content-Security-Policy") or ""
        if "frame-ancestors 'none'" not in policy or "unsafe" in policy:
            problems.append(f"{kind}: Content-Security-Policy {policy!r}")
    assert not problems, "\n".join(problems)


def test_download_all_streams_from_the_app_until_built_then_nginx_sends_the_same_bytes(stack: Stack, site: Site):
    """A version not in the ZIP cache is streamed by gunicorn while it is built (nginx cannot send a growing
    file), under the validators nginx gives it once cached: a resume against the stream is answered by nginx.
    Without X-Accel the app answers both, with the same bytes and validators."""
    site.cached_archive().unlink(missing_ok=True)
    url = f"{stack.url}/api/share/{site.tokens['open']}/download-all"
    streamed = fetch(url)
    assert streamed.status == 200
    if stack.x_accel:
        assert NGINX_ETAG.match(streamed.header("ETag") or "")
        wait_until(lambda: site.cached_archive().is_file(), timeout=10, what="the archive to reach the ZIP cache")
    handed = fetch(url)
    assert handed.body == streamed.body and handed.header("ETag") == streamed.header("ETag")
    assert handed.header("Last-Modified") == streamed.header("Last-Modified")
    resumed = fetch(url, headers={"Range": "bytes=1000-", "If-Range": streamed.header("ETag")})
    assert resumed.status == 206 and resumed.body == streamed.body[1000:]
    assert zipfile.ZipFile(io.BytesIO(handed.body)).testzip() is None
