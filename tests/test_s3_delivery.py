"""Delivery from object storage and a CDN: the same download tests on `local` and `s3` (a real moto S3 server
over HTTP), plus what only a bucket or a CDN has.

Moto does not check presigned signatures or expiry (real S3 does), so these tests check what the app controls:
a URL is handed out only after every share check, with the expected lifetime, filename, type and method (the
signature is verified here with SigV4's own recipe), and the bytes behind it are the right ones.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import subprocess
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import pytest
import requests

from photoshare import activity, albums
from photoshare.access import create_share_link, revoke_share_link
from photoshare.archive import write_archive
from photoshare.delivery import bucket, links
from photoshare.extensions import db
from photoshare.jobs import store
from photoshare.jobs.sweep import sweep
from photoshare.models import Album, DownloadJob, Photo, ShareLink, User, utcnow
from photoshare.names import content_disposition
from photoshare.storage import LocalStorage, get_storage
from photoshare.storage.s3 import IMMUTABLE_CACHE_CONTROL, S3Storage
from tests.conftest import S3_TEST_KEYS, LiveServer, MotoServer, csrf_token, make_jpeg
from tests.jobs_support import wait_until

CDN = "https://cdn.example.com"
PHOTO = make_jpeg(400, 300, noise=1)  # ~300 KB of noise: ranges and resumes have room to matter


@pytest.fixture(autouse=True)
def embedded_jobs(monkeypatch):
    """Background preparation in the app's own pool (no broker), like a small deployment."""
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["local", "s3"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(request, backend: str) -> dict[str, Any]:
    """The backend's settings: nothing for local, a fresh bucket of the test's own for s3."""
    return {} if backend == "local" else request.getfixturevalue("s3_config")


@pytest.fixture
def site(make_site, settings):
    return make_site(settings)


@pytest.fixture
def s3_site(make_site, s3_config):
    return make_site(s3_config)


def add_album(app, files: dict[str, bytes] | None = None, title: str = "Trip") -> int:
    files = files or {"beach.jpg": PHOTO}
    with app.app_context():
        album = albums.create_album(db.session.execute(db.select(User)).scalars().first(), title)
        for name, data in files.items():
            albums.add_photo(album, name, io.BytesIO(data), commit=False)
        albums.refresh_version(album)
        return album.id


def add_share(app, album_id: int, **kwargs: Any) -> str:
    with app.app_context():
        return create_share_link(db.session.get(Album, album_id), **kwargs).token


def photo_ids(app, album_id: int) -> list[int]:
    with app.app_context():
        return [photo.id for photo in db.session.get(Album, album_id).photos]


def downloads_of(app, token: str) -> int:
    activity.flush(app)  # counters are added by the activity writer, off the request path
    with app.app_context():
        return db.session.execute(db.select(ShareLink.download_count).where(ShareLink.token == token)).scalar_one()


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def sigv4_signature(method: str, url: str, secret: str) -> str:
    """The signature AWS computes for a presigned URL and `method` (SigV4, query-string form, host header only):
    what real S3 compares with X-Amz-Signature. A URL signed for GET fails for HEAD, and the reverse."""
    parts = urlsplit(url)
    params = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature")
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params)
    canonical = "\n".join([method, parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"])
    fields = dict(params)
    scope = fields["X-Amz-Credential"].split("/", 1)[1]
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join(["AWS4-HMAC-SHA256", fields["X-Amz-Date"], scope, digest])
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def reference_archive(app, album_id: int, tmp_path: Path) -> bytes:
    """The album's ZIP as phase 1 writes it from local files: the originals copied out of the store first."""
    local = LocalStorage(tmp_path / "reference")
    with app.app_context():
        entries = albums.archive_plan(db.session.get(Album, album_id))
        for entry in entries:
            with get_storage().open(entry.storage_key) as source:
                local.save(entry.storage_key, source)
    out = io.BytesIO()
    write_archive(entries, out, local.open)
    return out.getvalue()


def unlock(client, token: str, password: str) -> None:
    """The password form, as a browser sends it: this client then holds the share's cookie."""
    form = client.get(f"/s/{token}").get_data(as_text=True)
    assert client.post(f"/s/{token}", data={"password": password, "csrf_token": csrf_token(form)}).status_code == 303


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The storage additions, on both backends.


def test_store_lists_objects_under_a_prefix_with_size_and_write_time(site):
    with site.app_context():
        storage, before = get_storage(), time.time() - 5
        storage.save("zips/album-1-abc.zip", io.BytesIO(b"z" * 10))
        storage.save("zips/album-2-def.zip", io.BytesIO(b"z" * 20))
        storage.save("thumbs/x.jpg", io.BytesIO(b"t"))
        listed = {item.key: item for item in storage.objects("zips/")}
        sizes = {key: item.size for key, item in listed.items()}
        assert sizes == {"zips/album-1-abc.zip": 10, "zips/album-2-def.zip": 20}
        assert all(before <= item.modified <= time.time() + 5 for item in listed.values())
        assert storage.stat("zips/album-1-abc.zip") == listed["zips/album-1-abc.zip"]
        with pytest.raises(FileNotFoundError):
            storage.stat("zips/none.zip")


# Photo downloads: every share check first, then the bytes (local) or a redirect to the store (s3).


def test_photo_download_keeps_every_share_check_before_any_redirect(site, backend):
    album_id = add_album(site)
    photo = photo_ids(site, album_id)[0]
    tokens = {
        "password": add_share(site, album_id, password="open sesame"),
        "expired": add_share(site, album_id, expires_at=utcnow() - timedelta(minutes=1)),
        "revoked": add_share(site, album_id),
        "no downloads": add_share(site, album_id, downloads_allowed=False),
    }
    with site.app_context():
        revoke_share_link(db.session.execute(db.select(ShareLink).filter_by(token=tokens["revoked"])).scalar_one())
    client = site.test_client()
    url = "/api/share/{}/download/" + str(photo)
    refused = [
        (client.get(url.format(tokens["password"])), 401, "password_required"),
        (client.get(url.format(tokens["password"]), headers={"X-Share-Password": "wrong"}), 403, "wrong_password"),
        (client.get(url.format(tokens["expired"])), 410, "expired"),
        (client.get(url.format(tokens["revoked"])), 410, "revoked"),
        (client.get(url.format(tokens["no downloads"])), 403, "downloads_disabled"),
        (client.head(url.format(tokens["no downloads"])), 403, None),
    ]
    for response, status, error in refused:
        assert response.status_code == status
        assert "Location" not in response.headers
        assert response.headers["Cache-Control"] == "private, no-store"
        if error:
            assert response.get_json()["error"] == error
    assert all(downloads_of(site, token) == 0 for token in tokens.values())

    allowed = client.get(url.format(tokens["password"]), headers={"X-Share-Password": "open sesame"})
    assert allowed.status_code == (200 if backend == "local" else 302)


def test_s3_photo_redirect_names_the_file_expires_and_counts_once(make_site, s3_config):
    app = make_site(s3_config | {"SIGNED_URL_TTL_SECONDS": 900})
    album_id = add_album(app, {"Été à Paris.jpg": PHOTO})
    token = add_share(app, album_id)
    client = app.test_client()
    url = f"/api/share/{token}/download/{photo_ids(app, album_id)[0]}"

    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "private, no-store"
    location = response.headers["Location"]
    assert location.startswith(f"{s3_config['S3_ENDPOINT_URL']}/{s3_config['S3_BUCKET']}/originals/")
    query = query_of(location)
    assert query["X-Amz-Expires"] == "900"
    assert query["response-content-disposition"] == content_disposition("Été à Paris.jpg")
    assert query["response-content-type"] == "image/jpeg"
    assert sigv4_signature("GET", location, S3_TEST_KEYS["S3_SECRET_KEY"]) == query["X-Amz-Signature"]
    fetched = requests.get(location, timeout=10)
    assert fetched.content == PHOTO
    assert fetched.headers["Content-Disposition"] == content_disposition("Été à Paris.jpg")
    assert fetched.headers["Content-Type"] == "image/jpeg"
    assert downloads_of(app, token) == 1

    head = client.head(url)  # S3 signs the method: a HEAD gets a URL signed for HEAD, and counts nothing
    assert head.status_code == 302
    head_url, secret = head.headers["Location"], S3_TEST_KEYS["S3_SECRET_KEY"]
    assert sigv4_signature("HEAD", head_url, secret) == query_of(head_url)["X-Amz-Signature"]
    assert sigv4_signature("GET", head_url, secret) != query_of(head_url)["X-Amz-Signature"]
    assert requests.head(head_url, timeout=10).headers["Content-Length"] == str(len(PHOTO))
    assert client.get(url, headers={"Range": "bytes=5000-"}).status_code == 302  # a resume: not a new download
    assert downloads_of(app, token) == 1
    assert client.get(url, headers={"Range": "bytes=0-999"}).status_code == 302  # a download from its start
    assert downloads_of(app, token) == 2


def test_s3_redirect_names_the_file_exactly_and_never_with_a_bidi_control(make_site, s3_config):
    """The store sends the header the app would (downloads.content_disposition): the exact name in `filename*`,
    a safe ASCII `filename`; a name stored before bidi controls were removed still reaches no header with one."""
    app = make_site(s3_config)
    album_id = add_album(app, {'quote"and;semi 😀.jpg': PHOTO, "legacy.jpg": PHOTO})
    token = add_share(app, album_id)
    exact_id, legacy_id = photo_ids(app, album_id)
    with app.app_context():
        db.session.execute(db.update(Photo).where(Photo.id == legacy_id).values(original_filename="x\u202egpj.exe"))
        db.session.commit()
    expected = {
        exact_id: "attachment; filename=\"quote_and_semi _.jpg\"; filename*=UTF-8''quote%22and%3Bsemi%20%F0%9F%98%80.jpg",
        legacy_id: 'attachment; filename="xgpj.exe"',
    }
    for photo_id, header in expected.items():
        location = app.test_client().get(f"/api/share/{token}/download/{photo_id}").headers["Location"]
        assert query_of(location)["response-content-disposition"] == header
        assert requests.get(location, timeout=10).headers["Content-Disposition"] == header


def test_range_and_resume_through_the_download_url_on_a_real_server(site, settings, backend, instance, tmp_path):
    album_id = add_album(site)
    token = add_share(site, album_id)
    env = {name: str(value) for name, value in settings.items()}
    server = LiveServer(instance, env=env, database_url=site.config["SQLALCHEMY_DATABASE_URI"])
    try:
        url = f"{server.url}/api/share/{token}/download/{photo_ids(site, album_id)[0]}"
        first = requests.get(url, headers={"Range": "bytes=0-99999"}, timeout=10)
        rest = requests.get(url, headers={"Range": "bytes=100000-"}, timeout=10)  # requests keeps Range on redirect
        assert (first.status_code, rest.status_code) == (206, 206)
        assert first.content == PHOTO[:100_000]
        assert first.content + rest.content == PHOTO
        assert rest.headers["Content-Range"].lower() == f"bytes 100000-{len(PHOTO) - 1}/{len(PHOTO)}"
        if backend == "s3":  # the bytes came from the store, after a redirect from the app
            assert [r.status_code for r in first.history] == [302]
            assert first.url.startswith(settings["S3_ENDPOINT_URL"])
        else:
            assert first.history == []
        head = requests.head(url, allow_redirects=True, timeout=10)
        assert head.status_code == 200 and head.headers["Content-Length"] == str(len(PHOTO))

        out = tmp_path / "photo.jpg"  # curl, interrupted after 50 KB, then resumed with -C -
        subprocess.run(["curl", "-sSfL", "-r", "0-49999", "-o", str(out), url], check=True, timeout=30)
        assert out.stat().st_size == 50_000
        subprocess.run(["curl", "-sSfL", "-C", "-", "-o", str(out), url], check=True, timeout=30)
        assert out.read_bytes() == PHOTO
    finally:
        server.stop()


# Prepared ZIPs in the bucket.


def test_prepared_zip_in_the_bucket_is_the_phase_1_archive_and_is_served_by_redirect(s3_site, tmp_path):
    app, client = s3_site, s3_site.test_client()
    album_id = add_album(app, {f"IMG_{i}.jpg": make_jpeg(200, 150, color=(i * 70, 20, 20), noise=1) for i in range(3)})
    token = add_share(app, album_id)
    reference = reference_archive(app, album_id, tmp_path)

    built_now = client.get(f"/api/share/{token}/download-all")  # no prepared ZIP yet: built as phase 1 does
    assert built_now.status_code == 200 and sha(built_now.data) == sha(reference)

    started = client.post(f"/api/share/{token}/prepare-download")
    assert started.status_code in (200, 202)
    job_id = started.get_json()["job_id"]
    ready = wait_until(lambda: (lambda d: d if d["status"] in ("ready", "failed") else None)(
        client.get(f"/api/share/{token}/download-status/{job_id}").get_json()), what="the job")
    assert ready["status"] == "ready", ready
    with app.app_context():
        version = db.session.get(Album, album_id).version
        key = bucket.archive_key(album_id, version)
        assert key == f"zips/album-{album_id}-{version}.zip"
        with get_storage().open(key) as stored:
            assert sha(stored.read()) == sha(reference)
    assert not list(Path(app.config["ZIP_CACHE_DIR"]).iterdir())  # the partial file is gone, nothing kept locally

    signed = client.get(urlsplit(ready["download_url"]).path)
    assert signed.status_code == 302 and signed.headers["Cache-Control"] == "private, no-store"
    location = signed.headers["Location"]
    query = query_of(location)
    assert f"/zips/album-{album_id}-" in location
    assert links.LINK_MAX_AGE - 60 <= int(query["X-Amz-Expires"]) <= links.LINK_MAX_AGE
    assert query["response-content-disposition"] == content_disposition("Trip.zip")
    downloaded = requests.get(location, timeout=10).content
    assert sha(downloaded) == sha(reference)
    assert zipfile.ZipFile(io.BytesIO(downloaded)).testzip() is None
    resumed = requests.get(location, headers={"Range": "bytes=1000-"}, timeout=10)
    assert resumed.status_code == 206 and resumed.content == reference[1000:]

    with app.app_context():  # a link made 20 hours ago: its presigned URL lives only the 4 hours it has left
        old = links.url(links.Grant(album_id, version, 1), issued_at=time.time() - 20 * 3600)
    late = int(query_of(client.get(urlsplit(old).path).headers["Location"])["X-Amz-Expires"])
    assert 4 * 3600 - 60 <= late <= 4 * 3600

    direct = client.get(f"/api/share/{token}/download-all")  # "Download all" now hands out the prepared ZIP
    assert direct.status_code == 302 and f"/zips/album-{album_id}-{version}.zip?" in direct.headers["Location"]

    with app.app_context():
        albums.add_photo(db.session.get(Album, album_id), "new.jpg", io.BytesIO(make_jpeg()))
    gone = client.get(urlsplit(ready["download_url"]).path, headers={"Accept": "application/json"})
    assert gone.status_code == 410 and gone.get_json()["error"] == "album_changed"
    assert client.get(f"/api/share/{token}/download-all").status_code == 200  # the new version, built now


def test_sweeper_removes_zip_objects_once_no_link_can_reach_them(s3_site, tmp_path):
    app = s3_site
    album_id = add_album(app)
    archive = tmp_path / "album.zip"
    archive.write_bytes(reference_archive(app, album_id, tmp_path))
    with app.app_context():
        version = db.session.get(Album, album_id).version
        bucket.upload(album_id, version, archive, keep_alive=lambda: None)
        bucket.upload(album_id, "0123456789abcdef", archive, keep_alive=lambda: None)  # an outdated version
        get_storage().save("zips/README.txt", io.BytesIO(b"not an archive"))
        job, _ = store.create_or_join(album_id, version, ready_size=archive.stat().st_size)
        keeping = app.config["ZIP_CACHE_TTL_HOURS"] * 3600 + links.LINK_MAX_AGE

        early = sweep(revive=False, now=time.time() + keeping - 120)  # a link made just in time is still valid
        assert (early.expired, early.outdated) == (0, 0)
        assert len(list(get_storage().objects("zips/"))) == 3

        late = sweep(revive=False, now=time.time() + keeping + 120)
        assert (late.expired, late.outdated) == (1, 1) and late.freed == 2 * archive.stat().st_size
        assert [item.key for item in get_storage().objects("zips/")] == ["zips/README.txt"]
        swept = db.session.get(DownloadJob, job.id, populate_existing=True)
        assert (swept.status, swept.error) == (store.FAILED, store.EXPIRED)


def test_archive_past_its_ttl_gets_no_new_links_but_a_link_already_made_still_works(make_site, s3_config, tmp_path):
    app = make_site(s3_config | {"ZIP_CACHE_TTL_HOURS": 1 / 3600})  # fresh for one second
    client = app.test_client()
    album_id = add_album(app)
    token = add_share(app, album_id)
    archive = tmp_path / "album.zip"
    archive.write_bytes(reference_archive(app, album_id, tmp_path))
    with app.app_context():
        version = db.session.get(Album, album_id).version
        bucket.upload(album_id, version, archive, keep_alive=lambda: None)
        first_written = get_storage().stat(bucket.archive_key(album_id, version)).modified
        job_id = store.create_or_join(album_id, version, ready_size=archive.stat().st_size)[0].id
        made = links.url(links.Grant(album_id, version, 1)).removeprefix(app.config["BASE_URL"])
        wait_until(lambda: bucket.find_fresh(album_id, version) is None, what="the archive to age")

    expired = client.get(f"/api/share/{token}/download-status/{job_id}").get_json()
    assert expired["status"] == "failed" and "download_url" not in expired  # no new link to an aging archive
    still = client.get(made)  # but the one handed out before goes on working until it expires
    assert still.status_code == 302 and int(query_of(still.headers["Location"])["X-Amz-Expires"]) > 23 * 3600
    again = client.post(f"/api/share/{token}/prepare-download").get_json()  # built again, same key, same bytes
    ready = wait_until(lambda: (lambda d: d if d["status"] in ("ready", "failed") else None)(
        client.get(f"/api/share/{token}/download-status/{again['job_id']}").get_json()), what="the rebuild")
    assert ready["status"] == "ready" or ready["error"] == store.EXPIRED  # (it may age again at once)
    with app.app_context():
        rebuilt = get_storage().stat(bucket.archive_key(album_id, version))
        assert rebuilt.modified > first_written and rebuilt.size == archive.stat().st_size
        with get_storage().open(rebuilt.key) as stored:
            assert stored.read() == archive.read_bytes()


# A store that goes away while the app runs.


def test_store_unreachable_mid_request_answers_503_and_loses_nothing(make_site, tmp_path):
    doomed = MotoServer()
    try:
        doomed.client().create_bucket(Bucket="photos")
        app = make_site({"STORAGE_BACKEND": "s3", "S3_BUCKET": "photos", "S3_ENDPOINT_URL": doomed.url, **S3_TEST_KEYS})
        # One attempt and a short connect timeout: the same store, failing fast enough for a test.
        app.extensions["photoshare.storage"] = S3Storage("photos", endpoint_url=doomed.url, max_attempts=1,
                                                         connect_timeout=1, access_key="k", secret_key="s")
        album_id = add_album(app)
        token = add_share(app, album_id)
        photo = photo_ids(app, album_id)[0]
        archive = tmp_path / "album.zip"
        archive.write_bytes(reference_archive(app, album_id, tmp_path))
        with app.app_context():
            version = db.session.get(Album, album_id).version
            bucket.upload(album_id, version, archive, keep_alive=lambda: None)
            job_id = store.create_or_join(album_id, version, ready_size=archive.stat().st_size)[0].id
            signed = links.url(links.Grant(album_id, version, 1)).removeprefix(app.config["BASE_URL"])
        doomed.stop()

        client = app.test_client()
        api = f"/api/share/{token}"
        download = client.get(f"{api}/download/{photo}")  # the database answers this one: no store round trip
        assert download.status_code == 302 and "/originals/" in download.headers["Location"]
        for method, url in [("GET", f"{api}/download-all"),
                            ("POST", f"{api}/prepare-download"), ("GET", f"{api}/download-status/{job_id}")]:
            response = client.open(url, method=method)
            assert response.status_code == 503, (url, response.data)
            assert response.get_json()["error"] == "storage_unavailable"
            assert "Retry-After" in response.headers
        for url in (f"/s/{token}/thumb/{photo}", signed):
            page = client.get(url, headers={"Accept": "text/html"})
            assert page.status_code == 503 and "try again" in page.get_data(as_text=True)
            assert "Traceback" not in page.get_data(as_text=True)
        assert downloads_of(app, token) == 1  # the redirect above, and nothing else
        with app.app_context():  # the prepared ZIP's job still stands for when the store is back
            assert db.session.get(DownloadJob, job_id, populate_existing=True).status == store.READY
            assert len(db.session.get(Album, album_id).photos) == 1
    finally:
        doomed.stop()


# CDN.


def test_s3_cdn_serves_gallery_images_from_the_cdn_and_keeps_downloads_on_the_origin(make_site, s3_config):
    app = make_site(s3_config | {"CDN_ENABLED": True, "CDN_BASE_URL": CDN + "/"})
    album_id = add_album(app, {"beach.jpg": PHOTO})
    token = add_share(app, album_id)  # without a password (a password share's images stay on the app)
    photo = photo_ids(app, album_id)[0]
    client = app.test_client()
    with app.app_context():
        stored = db.session.get(Album, album_id).photos[0]
        thumb_key, view_key = albums.thumbnail_key(stored), albums.view_key(stored)

    page = client.get(f"/s/{token}")
    html = page.get_data(as_text=True)
    assert f'<img src="{CDN}/{thumb_key}"' in html
    assert f'href="/s/{token}/view/{photo}"' in html  # views are made on first use: the app makes it, then redirects
    assert f'href="/api/share/{token}/download/{photo}"' in html  # downloads need the share checks
    assert page.headers["Cache-Control"] == "private, no-cache"

    for route, key in ((f"/s/{token}/thumb/{photo}", thumb_key), (f"/s/{token}/view/{photo}", view_key)):
        response = client.get(route)
        assert response.status_code == 302 and response.headers["Location"] == f"{CDN}/{key}"
        assert response.headers["Cache-Control"] == "private, no-store"
    with app.app_context():
        made = get_storage().client.head_object(Bucket=s3_config["S3_BUCKET"], Key=view_key)
        assert made["CacheControl"] == IMMUTABLE_CACHE_CONTROL  # immutable; the edge's own rule caches it

    download = client.get(f"/api/share/{token}/download/{photo}")  # no signing key: never a permanent CDN URL
    assert download.status_code == 302 and download.headers["Cache-Control"] == "private, no-store"
    assert download.headers["Location"].startswith(f"{s3_config['S3_ENDPOINT_URL']}/{s3_config['S3_BUCKET']}/")
    assert client.get(f"/api/share/{token}").headers["Cache-Control"] == "private, no-store"


def test_local_cdn_caches_images_of_open_shares_only(make_site):
    app = make_site({"CDN_ENABLED": True, "CDN_BASE_URL": CDN})
    album_id = add_album(app)
    photo = photo_ids(app, album_id)[0]
    open_token, locked_token = add_share(app, album_id), add_share(app, album_id, password="open sesame")
    client = app.test_client()

    html = client.get(f"/s/{open_token}").get_data(as_text=True)
    assert f'<img src="{CDN}/s/{open_token}/thumb/{photo}"' in html
    assert f'href="{CDN}/s/{open_token}/view/{photo}"' in html
    assert f'href="/api/share/{open_token}/download/{photo}"' in html
    thumb = client.get(f"/s/{open_token}/thumb/{photo}")
    assert thumb.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again = client.get(f"/s/{open_token}/thumb/{photo}", headers={"If-None-Match": thumb.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Cache-Control"] == "public, max-age=31536000, immutable"

    unlock(client, locked_token, "open sesame")
    html = client.get(f"/s/{locked_token}").get_data(as_text=True)
    assert f'<img src="/s/{locked_token}/thumb/{photo}"' in html and CDN not in html
    for route in (f"/s/{locked_token}/thumb/{photo}", f"/s/{locked_token}/view/{photo}"):
        cache = client.get(route).headers["Cache-Control"]
        assert cache == "private, max-age=31536000, immutable" and "public" not in cache
    refused = app.test_client().get(f"/s/{locked_token}/thumb/{photo}")  # no cookie: the edge must not keep it
    assert refused.status_code == 401 and refused.headers["Cache-Control"] == "no-store"
    download = client.get(f"/api/share/{open_token}/download/{photo}")
    assert download.status_code == 200 and "public" not in download.headers["Cache-Control"]


def test_a_selection_and_a_part_from_the_bucket_stream_at_once_then_redirect_once_prepared(
        make_site, s3_config, instance, tmp_path):
    """With s3, a selection and part 2 are built from the store's originals and streamed by the app; once
    prepared they live in `zips/` under their own versions and every download is a redirect to the store,
    where Range and `curl -C -` resume the same bytes."""
    settings = {**s3_config, "ARCHIVE_PART_MB": "0.3"}  # 4 photos of about 110 KB: 2 parts or more
    app = make_site(settings)
    album_id = add_album(app, {f"IMG_{i}.jpg": make_jpeg(400, 300, color=(i * 60, 20, 20), noise=1) for i in range(4)})
    token = add_share(app, album_id)
    ids = photo_ids(app, album_id)
    server = LiveServer(instance, env=settings, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        api = f"{server.url}/api/share/{token}"
        parts = requests.get(api, timeout=10).json()["archives"]
        assert len(parts) >= 2
        selection = requests.post(f"{api}/selections", json={"photo_ids": [ids[2], ids[0]]}, timeout=10).json()
        cases = [(selection["download_url"], {"selection_id": selection["selection_id"]}, "Trip (2 photos).zip"),
                 (parts[1]["download_url"], {"part": 2}, f"Trip (part 2 of {len(parts)}).zip")]
        for url, plan, name in cases:
            direct = requests.get(url, allow_redirects=False, timeout=30)
            assert direct.status_code == 200 and zipfile.ZipFile(io.BytesIO(direct.content)).testzip() is None
            job_id = requests.post(f"{api}/prepare-download", json=plan, timeout=10).json()["job_id"]
            ready = wait_until(lambda job_id=job_id: (lambda d: d if d["status"] in ("ready", "failed") else None)(
                requests.get(f"{api}/download-status/{job_id}", timeout=10).json()), what="the job")
            assert ready["status"] == "ready", ready
            signed = requests.get(ready["download_url"], allow_redirects=False, timeout=10)
            assert signed.status_code == 302 and f"/zips/album-{album_id}-" in signed.headers["Location"]
            assert query_of(signed.headers["Location"])["response-content-disposition"] == content_disposition(name)
            assert requests.get(signed.headers["Location"], timeout=10).content == direct.content
            again = requests.get(url, allow_redirects=False, timeout=10)  # now handed to the store as well
            assert again.status_code == 302 and again.headers["Location"].startswith(s3_config["S3_ENDPOINT_URL"])
            resumed = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=10)
            assert resumed.status_code == 206 and resumed.content == direct.content[1000:]
            out = tmp_path / "resumed.zip"
            subprocess.run(["curl", "-sSfL", "-r", "0-9999", "-o", str(out), url], check=True, timeout=30)
            subprocess.run(["curl", "-sSfL", "-C", "-", "-o", str(out), url], check=True, timeout=30)
            assert out.read_bytes() == direct.content
    finally:
        server.stop()
