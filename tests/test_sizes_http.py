"""Web size and location removed, black-box against a real gunicorn: `?size=original|large` on a photo and on
"Download all", "web-size only" links, and links that remove the location (sizes.py, location.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from photoshare import albums, create_app
from photoshare.access import create_share_link
from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import Album, Photo
from photoshare.sizes import clean_key, large_key
from photoshare.storage import get_storage
from tests.conftest import LiveServer, base_config, make_jpeg, module_instance, stop_serving
from tests.location_support import gps_of, has_place_words, jpeg_scan_data, located_image, pixels, srgb_profile


class Site:
    """One gunicorn for the module and the app it serves; an album of a located PNG, a located JPEG turned by
    EXIF (orientation 6) with a colour profile, and a JPEG without location."""

    def __init__(self, instance: Path) -> None:
        self.app = create_app(base_config(instance) | {"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute"})
        with self.app.app_context():
            db.create_all()
            owner = create_user("owner@example.com", "correct horse battery")
            album = albums.create_album(owner, "Trip / Berlin")
            self.files = {
                "IMG_1.png": located_image("PNG", (3000, 2000), noise=False),
                "IMG_1.jpg": located_image("JPEG", (3000, 2000), orientation=6, icc=srgb_profile()),
                "plain.jpg": make_jpeg(300, 200, noise=1),
            }
            for name, data in self.files.items():
                albums.add_photo(album, name, io.BytesIO(data), commit=False)
            albums.refresh_version(album)
            self.album_id, self.version = album.id, album.version
            self.photo_ids = {photo.original_filename: photo.id for photo in album.photos}
        self.server = LiveServer(instance, env={"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute"},
                                 database_url=self.app.config["SQLALCHEMY_DATABASE_URI"])

    def share(self, **kwargs: Any) -> str:
        with self.app.app_context():
            return create_share_link(db.session.get(Album, self.album_id), **kwargs).token

    def photo(self, name: str) -> Photo:
        with self.app.app_context():
            photo = db.session.get(Photo, self.photo_ids[name])
            db.session.expunge(photo)
            return photo

    def stored(self, key: str) -> bytes:
        with self.app.app_context(), get_storage().open(key) as source:
            return source.read()

    def get(self, token: str, what: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.server.url}/api/share/{token}/{what}", timeout=60, **kwargs)

    def photo_url(self, token: str, name: str) -> str:
        return f"download/{self.photo_ids[name]}"

    def temp_left(self) -> list[str]:
        return sorted(os.listdir(self.app.config["TEMP_DIR"]))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    site = Site(module_instance(tmp_path_factory, "sizes"))
    yield site
    stop_serving(site.app, site.server)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-800:]
    return result


# ---- web size -----------------------------------------------------------------------------------------------


def test_large_photo_is_a_2048_jpeg_turned_upright_with_its_colour_profile_and_no_exif(site):
    token = site.share(strip_location=False)
    photo = site.photo("IMG_1.jpg")
    response = site.get(token, f"download/{photo.id}", params={"size": "large"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["ETag"] == f'"{photo.large_sha256}"' != f'"{photo.sha256}"'
    assert 'filename="IMG_1.jpg"' in response.headers["Content-Disposition"]
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "JPEG" and image.size == (1365, 2048)  # 3000 × 2000 held upright (orientation 6): 2048 on the long side
        assert image.info["icc_profile"] == srgb_profile()
        assert 0x0112 not in image.getexif() and gps_of(response.content) == {}
    assert response.content == site.stored(large_key(photo)) and len(response.content) == photo.large_size
    part = site.get(token, f"download/{photo.id}", params={"size": "large"}, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == response.content[100:200]


def test_a_png_in_web_size_is_a_jpg_of_the_same_name(site):
    token = site.share()
    response = site.get(token, site.photo_url(token, "IMG_1.png"), params={"size": "large"})
    assert response.status_code == 200 and 'filename="IMG_1.jpg"' in response.headers["Content-Disposition"]
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "JPEG" and image.size == (2048, 1365)


def test_size_original_is_the_default_and_gives_the_original(site):
    token = site.share(strip_location=False)
    for params in ({}, {"size": "original"}):
        response = site.get(token, site.photo_url(token, "plain.jpg"), params=params)
        assert response.content == site.files["plain.jpg"]


@pytest.mark.parametrize("what", ["download/PHOTO", "download-all"])
def test_an_unknown_size_is_400_json(site, what):
    token = site.share()
    response = site.get(token, what.replace("PHOTO", str(site.photo_ids["plain.jpg"])), params={"size": "huge"})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_size" and "large" in response.json()["message"]


@pytest.mark.parametrize("what", ["download/PHOTO", "download-all"])
def test_a_web_size_only_link_refuses_originals_with_403_and_sends_web_size_by_default(site, what):
    token = site.share(web_size_only=True)
    path = what.replace("PHOTO", str(site.photo_ids["IMG_1.jpg"]))
    refused = site.get(token, path, params={"size": "original"})
    assert refused.status_code == 403 and refused.json()["error"] == "web_size_only"
    default = site.get(token, path)
    large = site.get(token, path, params={"size": "large"})
    assert default.status_code == 200 and default.content == large.content
    assert default.headers["ETag"] == large.headers["ETag"]


def test_album_json_lists_both_sizes_or_only_web_size(site):
    token = site.share()
    data = requests.get(f"{site.server.url}/api/share/{token}", timeout=30).json()
    photo = next(p for p in data["photos"] if p["filename"] == "IMG_1.jpg")
    assert set(photo["sizes"]) == {"original", "large"} and data["location_removed"] is True
    assert photo["sizes"]["large"]["bytes"] == site.photo("IMG_1.jpg").large_size
    capped = requests.get(f"{site.server.url}/api/share/{site.share(web_size_only=True)}", timeout=30).json()
    assert capped["web_size_only"] is True and set(capped["photos"][0]["sizes"]) == {"large"}
    assert capped["download_all_url"].endswith("?size=large")


def test_web_size_archive_has_jpg_names_deduplicated_after_the_change_and_its_own_etag(site, tmp_path):
    token = site.share(strip_location=False)
    original = site.get(token, "download-all")
    response = site.get(token, "download-all", params={"size": "large"})
    assert response.status_code == 200 and response.headers["ETag"] != original.headers["ETag"]
    assert original.headers["ETag"] == f'"zip-{site.version}"'  # the original archive is unchanged
    files = entries(response.content)
    assert list(files) == ["IMG_1.jpg", "IMG_1_1.jpg", "plain.jpg"]  # IMG_1.png became IMG_1.jpg, first in album order
    for name, entry in zip(["IMG_1.png", "IMG_1.jpg", "plain.jpg"], files.values(), strict=True):
        assert sha256(entry) == site.photo(name).large_sha256
    with Image.open(io.BytesIO(files["IMG_1_1.jpg"])) as image:
        assert image.size == (1365, 2048)
    again = site.get(token, "download-all", params={"size": "large"})
    assert again.content == response.content and again.headers["ETag"] == response.headers["ETag"]
    path = tmp_path / "large.zip"
    path.write_bytes(response.content)
    run("unzip", "-tq", path)
    assert _wait_empty(site)


def test_web_size_archive_resumes_with_curl_C(site, tmp_path):
    token = site.share(strip_location=False)
    url = f"{site.server.url}/api/share/{token}/download-all?size=large"
    whole = tmp_path / "whole.zip"
    run("curl", "--silent", "--show-error", "-o", whole, url)
    target = tmp_path / "resumed.zip"
    subprocess.run(["bash", "-c", f"curl --silent '{url}' | head -c 100000 > '{target}'"], check=False, timeout=60)
    assert 0 < target.stat().st_size < whole.stat().st_size
    run("curl", "--silent", "--show-error", "-C", "-", "-o", target, url)
    assert target.read_bytes() == whole.read_bytes()
    run("unzip", "-tq", target)
    assert _wait_empty(site)


# ---- location removed ---------------------------------------------------------------------------------------


def test_a_location_removing_link_sends_photos_without_gps_with_pixels_and_scan_data_unchanged(site):
    token = site.share()  # new links remove the location
    photo = site.photo("IMG_1.jpg")
    response = site.get(token, f"download/{photo.id}")
    original = site.files["IMG_1.jpg"]
    assert gps_of(original) and has_place_words(original)
    assert gps_of(response.content) == {} and not has_place_words(response.content)
    assert jpeg_scan_data(response.content) == jpeg_scan_data(original)
    assert pixels(response.content) == pixels(original)
    assert response.headers["ETag"] == f'"{photo.clean_sha256}"' and photo.clean_sha256 != photo.sha256
    assert response.content == site.stored(clean_key(photo))
    png = site.get(token, site.photo_url(token, "IMG_1.png")).content
    assert gps_of(png) == {} and not has_place_words(png) and pixels(png) == pixels(site.files["IMG_1.png"])


def test_a_photo_without_location_is_sent_unchanged_with_its_usual_etag(site):
    photo = site.photo("plain.jpg")
    answers = [site.get(site.share(strip_location=strip), f"download/{photo.id}") for strip in (True, False)]
    assert [a.content for a in answers] == [site.files["plain.jpg"]] * 2
    assert [a.headers["ETag"] for a in answers] == [f'"{photo.sha256}"'] * 2
    assert photo.has_location is False and photo.clean_sha256 is None


def test_a_link_that_keeps_the_location_sends_the_original_bytes(site):
    token = site.share(strip_location=False)
    response = site.get(token, site.photo_url(token, "IMG_1.jpg"))
    assert response.content == site.files["IMG_1.jpg"] and gps_of(response.content)


def test_archive_without_location_is_its_own_version_byte_stable_and_whole(site, tmp_path):
    token = site.share()
    response = site.get(token, "download-all")
    assert response.status_code == 200 and response.headers["ETag"] != f'"zip-{site.version}"'
    files = entries(response.content)
    assert list(files) == ["IMG_1.png", "IMG_1.jpg", "plain.jpg"]
    for name in ("IMG_1.png", "IMG_1.jpg"):
        assert gps_of(files[name]) == {} and not has_place_words(files[name])
        assert pixels(files[name]) == pixels(site.files[name])
    assert jpeg_scan_data(files["IMG_1.jpg"]) == jpeg_scan_data(site.files["IMG_1.jpg"])
    assert files["plain.jpg"] == site.files["plain.jpg"]
    again = site.get(token, "download-all")
    assert again.content == response.content and again.headers["ETag"] == response.headers["ETag"]
    resumed = site.get(token, "download-all", headers={"Range": "bytes=1000-", "If-Range": response.headers["ETag"]})
    assert resumed.status_code == 206 and resumed.content == response.content[1000:]
    (tmp_path / "clean.zip").write_bytes(response.content)
    run("unzip", "-tq", tmp_path / "clean.zip")
    large = entries(site.get(token, "download-all", params={"size": "large"}).content)
    assert all(gps_of(data) == {} for data in large.values())  # web size carries no EXIF at all
    assert _wait_empty(site)


def _wait_empty(site: Site) -> bool:
    import time

    deadline = time.monotonic() + 10
    while site.temp_left() and time.monotonic() < deadline:
        time.sleep(0.05)
    return site.temp_left() == []


def test_an_older_photo_gets_its_web_size_and_clean_copy_once_on_first_download(site):
    token = site.share()
    name = "IMG_1.jpg"
    with site.app.app_context():  # as a photo added before either existed
        photo = db.session.get(Photo, site.photo_ids[name])
        storage = get_storage()
        storage.delete(large_key(photo))
        storage.delete(clean_key(photo))
        photo.large_size = photo.large_sha256 = photo.large_crc32 = None
        photo.has_location = photo.clean_size = photo.clean_sha256 = photo.clean_crc32 = None
        db.session.commit()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda size: site.get(token, "download-all", params={"size": size}),
                                ["large", "original"] * 3))
    assert [a.status_code for a in answers] == [200] * 6
    assert len({a.content for a in answers[0::2]}) == 1 and len({a.content for a in answers[1::2]}) == 1
    photo = site.photo(name)
    assert photo.large_sha256 and photo.has_location is True and photo.clean_sha256
    clean_file = Path(site.app.config["UPLOAD_DIR"]) / clean_key(photo)
    made_at = clean_file.stat().st_mtime_ns
    assert gps_of(site.get(token, f"download/{photo.id}").content) == {}
    assert clean_file.stat().st_mtime_ns == made_at  # kept: a visitor's request never makes it again
    assert site.server.log.read_text().count(f"{large_key(photo)} from") == 1


def test_create_share_removes_location_unless_keep_location(site):
    runner = site.app.test_cli_runner()
    tokens = {}
    for flags in ([], ["--keep-location"], ["--web-size-only"]):
        result = runner.invoke(args=["create-share", str(site.album_id), "--json", *flags])
        assert result.exit_code == 0, result.output
        tokens[" ".join(flags)] = json.loads(result.output)["token"]
    plain = site.get(tokens[""], site.photo_url("", "IMG_1.jpg")).content
    kept = site.get(tokens["--keep-location"], site.photo_url("", "IMG_1.jpg")).content
    assert gps_of(plain) == {} and kept == site.files["IMG_1.jpg"]
    assert site.get(tokens["--web-size-only"], "download-all", params={"size": "original"}).status_code == 403
