"""X-Accel-Redirect without nginx: what the app hands over, when, and the stable mtime of cached archives.
(tests/test_nginx.py runs the same through a real nginx.)"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from werkzeug.http import http_date

from photoshare import activity
from photoshare.delivery import accel, cache, ranges
from photoshare.extensions import db
from photoshare.models import Album, Photo, ShareLink
from tests.conftest import make_jpeg
from tests.jobs_support import wait_until


@pytest.fixture
def accel_app(app):
    app.config["SENDFILE_BACKEND"] = "x-accel"
    return app


def first_photo(app, album_id: int) -> Photo:
    with app.app_context():
        photo = db.session.get(Album, album_id).photos[0]
        db.session.expunge(photo)
        return photo


def download_count(app, token: str) -> int:
    activity.flush(app)  # counters are added by the activity writer, off the request path
    with app.app_context():
        return db.session.execute(db.select(ShareLink.download_count).where(ShareLink.token == token)).scalar_one()


def test_photo_is_handed_to_nginx_with_its_name_and_type(accel_app, client, make_album, make_share):
    album_id = make_album(files={"Été.jpg": make_jpeg()})
    token = make_share(album_id)
    photo = first_photo(accel_app, album_id)
    response = client.get(f"/api/share/{token}/download/{photo.id}")
    assert response.status_code == 200 and response.data == b""
    assert response.headers["X-Accel-Redirect"] == f"/_accel/uploads/originals/{photo.stored_name}"
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == "attachment; filename=\"Ete.jpg\"; filename*=UTF-8''%C3%89t%C3%A9.jpg"
    assert "ETag" not in response.headers  # nginx makes its own; the app's would be dropped anyway


def test_checks_come_before_the_hand_over(accel_app, client, make_album, make_share):
    album_id = make_album()
    photo = first_photo(accel_app, album_id)
    locked = make_share(album_id, password="long enough")
    refused = client.get(f"/api/share/{locked}/download/{photo.id}", headers={"X-Share-Password": "wrong"})
    assert refused.status_code == 403 and "X-Accel-Redirect" not in refused.headers
    no_downloads = make_share(album_id, downloads_allowed=False)
    assert "X-Accel-Redirect" not in client.get(f"/api/share/{no_downloads}/download/{photo.id}").headers


def test_thumbnails_and_views_are_handed_to_nginx_after_the_share_check(accel_app, client, make_album, make_share):
    from photoshare import albums

    album_id = make_album()
    photo = first_photo(accel_app, album_id)
    token, locked = make_share(album_id), make_share(album_id, password="long enough")
    assert "X-Accel-Redirect" not in client.get(f"/s/{locked}/thumb/{photo.id}").headers  # 401 first
    for route, key in (("thumb", albums.thumbnail_key(photo)), ("view", albums.view_key(photo))):
        response = client.get(f"/s/{token}/{route}/{photo.id}")
        assert response.status_code == 200 and response.data == b""
        assert response.headers["X-Accel-Redirect"] == f"/_accel/uploads/{key}"
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["Content-Disposition"].startswith("inline;")
        assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"


def test_without_the_setting_the_app_sends_the_bytes(app, client, make_album, make_share):
    album_id = make_album()
    photo = first_photo(app, album_id)
    response = client.get(f"/api/share/{make_share(album_id)}/download/{photo.id}")
    assert "X-Accel-Redirect" not in response.headers and len(response.data) == photo.size


def test_download_counts_when_the_last_byte_is_handed_over(accel_app, client, make_album, make_share):
    album_id = make_album()
    token = make_share(album_id)
    url = f"/api/share/{token}/download/{first_photo(accel_app, album_id).id}"
    for headers in ({"Range": "bytes=0-99"}, {}, {"Range": "bytes=100-"}):
        client.get(url, headers=headers).close()
    client.head(url).close()
    assert download_count(accel_app, token) == 2  # the whole file, and the resumption that ends it
    with accel_app.app_context():
        started = db.select(ShareLink.download_started_count).where(ShareLink.token == token)
        assert db.session.execute(started).scalar_one() == 2  # the two GETs from byte 0


def test_download_all_streams_while_built_then_goes_to_the_cache_with_an_mtime_from_the_version(
    accel_app, client, make_album, make_share
):
    """nginx cannot send a growing file: the first download comes from the app, under the validators nginx
    gives the cached file later (so a resume fits), and once whole the archive is linked into the cache."""
    album_id = make_album(count=3)
    token = make_share(album_id)
    with accel_app.app_context():
        version = db.session.get(Album, album_id).version
    cached = Path(accel_app.config["ZIP_CACHE_DIR"]) / f"album-{album_id}-{version}.zip"
    stable = accel.stable_mtime(f"zip-{version}")
    streamed = client.get(f"/api/share/{token}/download-all")
    body = streamed.get_data()
    streamed.close()
    assert "X-Accel-Redirect" not in streamed.headers and streamed.headers["Content-Type"] == "application/zip"
    assert streamed.headers["ETag"] == f'"{stable:x}-{len(body):x}"'
    assert streamed.last_modified.timestamp() == stable
    temp_dir = accel_app.config["TEMP_DIR"]
    wait_until(lambda: os.listdir(temp_dir) == [], timeout=10, what="temp archive removed")  # linked, removed
    response = client.get(f"/api/share/{token}/download-all")
    response.close()
    assert response.headers["X-Accel-Redirect"] == f"/_accel/zip-cache/{cached.name}"
    assert cached.stat().st_mtime == stable and cached.read_bytes() == body

    cached.unlink()
    time.sleep(1.05)
    rebuilt = client.get(f"/api/share/{token}/download-all")
    assert rebuilt.get_data() == body and rebuilt.headers["ETag"] == streamed.headers["ETag"]
    rebuilt.close()
    assert cached.stat().st_mtime == stable and cached.read_bytes() == body


def test_stable_mtime_differs_between_versions_and_stays_for_one():
    assert accel.stable_mtime("zip-a") == accel.stable_mtime("zip-a")
    assert accel.stable_mtime("zip-a") != accel.stable_mtime("zip-b")
    assert accel.STABLE_EPOCH <= accel.stable_mtime("zip-a") < accel.STABLE_EPOCH + accel.STABLE_SPAN


def test_cache_use_moves_atime_not_mtime(accel_app):
    with accel_app.app_context():
        path = cache.archive_path(1, "abc")
        path.write_bytes(b"zip")
        os.utime(path, (1_000_000_000, 1_000_000_000))
        cache.touch(path)
        assert path.stat().st_mtime == 1_000_000_000  # nginx's ETag unchanged
        [entry] = cache.entries()
        assert entry.used_at > time.time() - 60  # the sweeper sees it as used just now


def test_files_nginx_cannot_open_are_not_handed_over(accel_app, tmp_path):
    with accel_app.app_context():
        elsewhere = tmp_path / "x.jpg"
        elsewhere.write_bytes(b"x")
        assert accel.handoff(elsewhere, etag="e") is None  # outside UPLOAD_DIR and ZIP_CACHE_DIR
        temp = Path(accel_app.config["TEMP_DIR"]) / "album-x.zip"
        temp.write_bytes(b"zip")
        assert accel.handoff(temp, etag="e") is None  # temp archives go when the response closes
        inside = Path(accel_app.config["UPLOAD_DIR"]) / "originals" / "gone.jpg"
        inside.parent.mkdir(parents=True, exist_ok=True)
        inside.write_bytes(b"x")
        with open(inside, "rb") as handle:
            inside.unlink()
            assert accel.handoff(handle, etag="e") is None  # removed since opened: nginx would 404
        accel_app.config["SENDFILE_BACKEND"] = ""
        again = Path(accel_app.config["UPLOAD_DIR"]) / "originals" / "here.jpg"
        again.write_bytes(b"x")
        assert accel.handoff(again, etag="e") is None


HANDED = accel.Handoff(uri="/_accel/uploads/a.jpg", size=1000, mtime=1_700_000_000)


@pytest.mark.parametrize("headers, expected", [
    ({}, (200, 0, 1000)),
    ({"HTTP_RANGE": "bytes=0-99"}, (206, 0, 100)),
    ({"HTTP_RANGE": "bytes=-5000"}, (206, 0, 1000)),
    ({"HTTP_RANGE": "bytes=900-"}, (206, 900, 1000)),
    ({"HTTP_RANGE": "bytes=1000-"}, (416, 0, 0)),
    ({"HTTP_RANGE": "pages=1-2"}, (200, 0, 1000)),
    ({"HTTP_RANGE": "bytes=0-9,20-29"}, (200, 0, 1000)),
    ({"HTTP_RANGE": "bytes=900-", "HTTP_IF_RANGE": HANDED.nginx_etag}, (206, 900, 1000)),
    ({"HTTP_RANGE": "bytes=900-", "HTTP_IF_RANGE": http_date(HANDED.mtime)}, (206, 900, 1000)),
    ({"HTTP_RANGE": "bytes=900-", "HTTP_IF_RANGE": '"stale"'}, (200, 0, 1000)),
    ({"HTTP_IF_NONE_MATCH": HANDED.nginx_etag}, (304, 0, 0)),
])
def test_expected_delivery_follows_nginx(headers, expected):
    delivery = ranges.nginx_delivery({"REQUEST_METHOD": "GET", **headers}, size=HANDED.size, mtime=HANDED.mtime)
    assert (delivery.status, delivery.start, delivery.stop) == expected
