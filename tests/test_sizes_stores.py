"""Web size and location removed behind nginx (X-Accel on and off) and on S3 (a real moto server): the same files,
names and archives as from gunicorn alone (tests/test_sizes_http.py)."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from photoshare import albums, create_app
from photoshare.access import create_share_link
from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import Album, Photo, User
from photoshare.names import content_disposition
from photoshare.sizes import clean_key, large_key
from tests.conftest import LiveServer, base_config, make_jpeg
from tests.location_support import gps_of, has_place_words, jpeg_scan_data, located_image, pixels
from tests.nginx_support import Stack, fetch, make_certificate, start_stack, world_readable_tempdir

NGINX_ETAG = re.compile(r'^"[0-9a-f]+-[0-9a-f]+"$')
MODES = {
    "x-accel": {"SENDFILE_BACKEND": "x-accel", "PROXY_FIX_HOPS": "1"},
    "app": {"SENDFILE_BACKEND": "", "PROXY_FIX_HOPS": "1"},
}
FILES = {
    "IMG_1.png": located_image("PNG", (2400, 1600), noise=False),
    "IMG_1.jpg": located_image("JPEG", (1200, 900)),
    "plain.jpg": make_jpeg(300, 200, noise=1),
}


def add_album(app) -> tuple[int, dict[str, int]]:
    with app.app_context():
        owner = db.session.execute(db.select(User)).scalars().first() or create_user("o@example.com", "long password")
        album = albums.create_album(owner, "Trip")
        for name, data in FILES.items():
            albums.add_photo(album, name, io.BytesIO(data), commit=False)
        albums.refresh_version(album)
        return album.id, {photo.original_filename: photo.id for photo in album.photos}


def share(app, album_id: int, **kwargs: Any) -> str:
    with app.app_context():
        return create_share_link(db.session.get(Album, album_id), **kwargs).token


def photo_row(app, photo_id: int) -> Photo:
    with app.app_context():
        photo = db.session.get(Photo, photo_id)
        db.session.expunge(photo)
        return photo


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def curl(*args: str | Path) -> None:
    subprocess.run(["curl", "--silent", "--show-error", "--fail", "--insecure", "--location", *map(str, args)],
                   check=True, capture_output=True, timeout=60)


def assert_resumes(url: str, tmp_path: Path) -> bytes:
    """The whole download, and the same bytes from a copy cut at a third and continued with `curl -C -`."""
    whole = tmp_path / "whole"
    curl("-o", whole, url)
    partial = tmp_path / "partial"
    partial.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    curl("-C", "-", "-o", partial, url)
    assert partial.read_bytes() == whole.read_bytes()
    return whole.read_bytes()


# ---- nginx ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_site() -> Iterator[dict[str, Any]]:
    root = world_readable_tempdir("photoshare-sizes-nginx-")
    instance = root / "instance"
    instance.mkdir()
    cert, key = make_certificate(root)
    app = create_app(base_config(instance))
    with app.app_context():
        db.create_all()
    album_id, ids = add_album(app)
    yield {"app": app, "root": root, "instance": instance, "cert": cert, "key": key, "album_id": album_id, "ids": ids}
    with app.app_context():
        db.engine.dispose()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", params=list(MODES))
def stack(request, nginx_site) -> Iterator[Stack]:
    mode = request.param
    started = start_stack(nginx_site["root"] / f"nginx-{mode}", nginx_site["instance"], cert=nginx_site["cert"],
                          key=nginx_site["key"], database_url=nginx_site["app"].config["SQLALCHEMY_DATABASE_URI"],
                          settings={"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute", **MODES[mode]})
    yield started
    started.stop()


def test_web_size_and_location_free_photos_through_nginx(stack: Stack, nginx_site):
    app, ids = nginx_site["app"], nginx_site["ids"]
    token = share(app, nginx_site["album_id"])
    base = f"{stack.url}/api/share/{token}/download"
    png, jpg = photo_row(app, ids["IMG_1.png"]), photo_row(app, ids["IMG_1.jpg"])

    large = fetch(f"{base}/{png.id}?size=large")
    assert large.status == 200 and large.body == (nginx_site["instance"] / "uploads" / large_key(png)).read_bytes()
    assert large.header("Content-Type") == "image/jpeg"
    assert large.header("Content-Disposition") == content_disposition("IMG_1.jpg")
    cleaned = fetch(f"{base}/{jpg.id}")
    assert gps_of(cleaned.body) == {} and not has_place_words(cleaned.body)
    assert jpeg_scan_data(cleaned.body) == jpeg_scan_data(FILES["IMG_1.jpg"])
    part = fetch(f"{base}/{jpg.id}", headers={"Range": "bytes=100-"})
    assert part.status == 206 and part.body == cleaned.body[100:]
    for reply, etag in ((large, png.large_sha256), (cleaned, jpg.clean_sha256)):
        if stack.x_accel:  # nginx sent the file itself
            assert NGINX_ETAG.match(reply.header("ETag") or "") and "X-Accel-Redirect" not in reply.headers
        else:
            assert reply.header("ETag") == f'"{etag}"'


def test_web_size_and_location_free_archives_through_nginx_resume_and_unzip(stack: Stack, nginx_site, tmp_path):
    app, ids = nginx_site["app"], nginx_site["ids"]
    token = share(app, nginx_site["album_id"])
    url = f"{stack.url}/api/share/{token}/download-all"
    (tmp_path / "large").mkdir()
    (tmp_path / "clean").mkdir()
    large = zip_entries(assert_resumes(f"{url}?size=large", tmp_path / "large"))
    assert list(large) == ["IMG_1.jpg", "IMG_1_1.jpg", "plain.jpg"]
    assert [sha256(data) for data in large.values()] == [photo_row(app, ids[n]).large_sha256 for n in FILES]
    clean = zip_entries(assert_resumes(url, tmp_path / "clean"))
    assert clean["plain.jpg"] == FILES["plain.jpg"]
    for name in ("IMG_1.png", "IMG_1.jpg"):
        assert gps_of(clean[name]) == {} and not has_place_words(clean[name])
        assert pixels(clean[name]) == pixels(FILES[name])
    for folder in ("large", "clean"):
        subprocess.run(["unzip", "-tq", str(tmp_path / folder / "whole")], check=True, capture_output=True, timeout=60)


# ---- S3 -----------------------------------------------------------------------------------------------------


def test_s3_redirects_name_the_web_size_and_location_free_files(make_site, s3_config):
    app = make_site(s3_config)
    album_id, ids = add_album(app)
    token = share(app, album_id)
    client = app.test_client()
    expected = {  # photo: (key in the bucket, download name, type, checks on the bytes)
        ("IMG_1.png", "large"): (large_key(photo_row(app, ids["IMG_1.png"])), "IMG_1.jpg", "image/jpeg"),
        ("IMG_1.jpg", None): (clean_key(photo_row(app, ids["IMG_1.jpg"])), "IMG_1.jpg", "image/jpeg"),
        ("plain.jpg", None): (albums.photo_key(photo_row(app, ids["plain.jpg"])), "plain.jpg", "image/jpeg"),
    }
    for (name, size), (key, filename, content_type) in expected.items():
        query = f"?size={size}" if size else ""
        response = client.get(f"/api/share/{token}/download/{ids[name]}{query}")
        assert response.status_code == 302
        location = response.headers["Location"]
        assert urlsplit(location).path == f"/{s3_config['S3_BUCKET']}/{key}"
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert params["response-content-disposition"] == content_disposition(filename)
        assert params["response-content-type"] == content_type
        body = requests.get(location, timeout=10).content
        if size == "large":
            assert Image.open(io.BytesIO(body)).size == (2048, 1365)
        elif name == "plain.jpg":
            assert body == FILES[name]
        else:
            assert gps_of(body) == {} and jpeg_scan_data(body) == jpeg_scan_data(FILES[name])


def test_s3_web_size_and_location_free_archives_from_the_bucket(make_site, s3_config, instance, tmp_path):
    app = make_site(s3_config)
    album_id, ids = add_album(app)
    token = share(app, album_id)
    env = {name: str(value) for name, value in s3_config.items()}
    server = LiveServer(instance, env=env, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        url = f"{server.url}/api/share/{token}/download-all"
        (tmp_path / "large").mkdir()
        (tmp_path / "clean").mkdir()
        large = zip_entries(assert_resumes(f"{url}?size=large", tmp_path / "large"))
        assert [sha256(data) for data in large.values()] == [photo_row(app, ids[n]).large_sha256 for n in FILES]
        clean = zip_entries(assert_resumes(url, tmp_path / "clean"))
        assert gps_of(clean["IMG_1.jpg"]) == {} and clean["plain.jpg"] == FILES["plain.jpg"]
        assert requests.get(url, params={"size": "original"}, timeout=30).content == (tmp_path / "clean" / "whole").read_bytes()
    finally:
        server.stop()
