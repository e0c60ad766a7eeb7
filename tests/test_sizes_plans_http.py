"""Web size together with selections and parts, black-box against a real gunicorn: a selection at `size=large`
holds the large JPEGs (a PNG named .jpg), has its own ETag and resumes; part 2 at `size=large` is cut from the
web-size archive; a "web-size only" link refuses `size=original` on selections, parts and prepared downloads
(403) and sends web size without asking.

LARGE_SIZE is 400 and ARCHIVE_PART_MB 0.25 here, so that a few small noise photos make an album in parts.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from photoshare import albums, create_app, plans
from photoshare.access import create_share_link
from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import Album
from photoshare.sizes import LARGE, Variant
from tests.conftest import LiveServer, base_config, make_jpeg, module_instance, stop_serving

SETTINGS = {"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute", "ARCHIVE_PART_MB": "0.25", "LARGE_SIZE": "400"}


def noise_png(width: int, height: int) -> bytes:
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class Site:
    def __init__(self, instance: Path) -> None:
        self.app = create_app(base_config(instance) | {"ARCHIVE_PART_MB": 0.25, "LARGE_SIZE": 400,
                                                       "DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute"})
        with self.app.app_context():
            db.create_all()
            owner = create_user("owner@example.com", "correct horse battery")
            album = albums.create_album(owner, "Sizes and plans")
            files = {"IMG_1.png": noise_png(640, 480)}
            files |= {f"IMG_{n}.jpg": make_jpeg(640, 480, noise=1) for n in range(2, 6)}
            for name, data in files.items():
                albums.add_photo(album, name, io.BytesIO(data), commit=False)
            albums.refresh_version(album)
            self.album_id = album.id
            self.photos = {p.original_filename: (p.id, p.sha256, p.large_sha256) for p in album.photos}
        self.server = LiveServer(instance, env=SETTINGS, database_url=self.app.config["SQLALCHEMY_DATABASE_URI"])

    def share(self, **kwargs: Any) -> str:
        with self.app.app_context():
            return create_share_link(db.session.get(Album, self.album_id), **kwargs).token

    def api(self, token: str, what: str = "") -> str:
        return f"{self.server.url}/api/share/{token}{what}"

    def large_parts(self) -> list[list[str]]:
        """The entry names of each part of the web-size archive, as plans.split makes them in-process."""
        with self.app.app_context():
            album = db.session.get(Album, self.album_id)
            plan = plans.album_plan(album, Variant(LARGE, strip_location=True))
            return [[entry.name for entry in part.entries] for part in plans.split(plan)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    site = Site(module_instance(tmp_path_factory, "sizes-plans"))
    yield site
    stop_serving(site.app, site.server)


def entries(data: bytes) -> dict[str, str]:
    """name → sha256 of every entry, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: hashlib.sha256(archive.read(info)).hexdigest() for info in archive.infolist()}


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-800:]
    return result


def resumed(url: str, tmp_path: Path, cut: int) -> bytes:
    """The download broken off after `cut` bytes and finished with `curl -C -`."""
    target = tmp_path / "resumed.zip"
    subprocess.run(["bash", "-c", f"curl --silent '{url}' | head -c {cut} > '{target}'"], check=False, timeout=60)
    assert 0 < target.stat().st_size == cut
    run("curl", "--silent", "--show-error", "--fail", "-C", "-", "-o", target, url)
    run("unzip", "-tq", target)
    return target.read_bytes()


def test_a_selection_at_web_size_holds_the_large_jpegs_has_its_own_etag_and_resumes(site, tmp_path):
    token = site.share()
    ids = [site.photos["IMG_4.jpg"][0], site.photos["IMG_1.png"][0], site.photos["IMG_2.jpg"][0]]
    made = requests.post(site.api(token, "/selections"), json={"photo_ids": ids, "size": "large"}, timeout=30)
    assert made.status_code == 201, made.text
    listing = made.json()
    assert listing["photo_size"] == "large" and "size=large" in listing["download_url"]
    large = requests.get(listing["download_url"], timeout=60)
    assert large.status_code == 200 and len(large.content) == listing["size"] == int(large.headers["Content-Length"])
    files = entries(large.content)
    # Album order, the PNG named .jpg, every entry the photo's large JPEG.
    assert list(files) == ["IMG_1.jpg", "IMG_2.jpg", "IMG_4.jpg"]
    assert list(files.values()) == [site.photos[n][2] for n in ("IMG_1.png", "IMG_2.jpg", "IMG_4.jpg")]
    # The same selection in original size: the same id, other bytes, another ETag.
    again = requests.post(site.api(token, "/selections"), json={"photo_ids": ids}, timeout=30).json()
    assert again["selection_id"] == listing["selection_id"] and again["photo_size"] == "original"
    original = requests.get(again["download_url"], timeout=60)
    assert original.status_code == 200 and list(entries(original.content)) == ["IMG_1.png", "IMG_2.jpg", "IMG_4.jpg"]
    assert original.headers["ETag"] != large.headers["ETag"]
    album_large = requests.head(site.api(token, "/download-all?size=large"), timeout=60)
    assert album_large.headers["ETag"] not in (large.headers["ETag"], original.headers["ETag"])
    # Byte-stable and resumable: HEAD gives the same ETag, a range the same bytes, curl -C - the whole file.
    assert requests.head(listing["download_url"], timeout=30).headers["ETag"] == large.headers["ETag"]
    ranged = requests.get(listing["download_url"], headers={"Range": "bytes=1000-1999",
                                                            "If-Range": large.headers["ETag"]}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == large.content[1000:2000]
    assert resumed(listing["download_url"], tmp_path, 20_000) == large.content


def test_part_2_at_web_size_is_cut_from_the_web_size_archive_and_resumes(site, tmp_path):
    token = site.share()
    expected = site.large_parts()
    assert len(expected) >= 2
    url = site.api(token, "/download-all?part=2&size=large")
    part = requests.get(url, timeout=60)
    assert part.status_code == 200, part.text
    files = entries(part.content)
    assert list(files) == expected[1]
    large_of = {name.replace(".png", ".jpg"): large for name, (_id, _sha, large) in site.photos.items()}
    assert all(files[name] == large_of[name] for name in files)
    assert 'part 2 of' in part.headers["Content-Disposition"]
    original = requests.head(site.api(token, "/download-all?part=2"), timeout=60)
    assert original.status_code == 200 and original.headers["ETag"] != part.headers["ETag"]
    assert resumed(url, tmp_path, len(part.content) // 2) == part.content


def test_a_web_size_only_link_refuses_original_on_selections_and_parts_and_sends_web_size(site):
    token = site.share(web_size_only=True)
    ids = [site.photos["IMG_1.png"][0], site.photos["IMG_3.jpg"][0]]
    refused = requests.post(site.api(token, "/selections"), json={"photo_ids": ids, "size": "original"}, timeout=30)
    assert refused.status_code == 403 and refused.json()["error"] == "web_size_only"
    made = requests.post(site.api(token, "/selections"), json={"photo_ids": ids}, timeout=30)
    assert made.status_code in (200, 201) and made.json()["photo_size"] == "large"
    selection = made.json()["selection_id"]
    for what in (f"/selections/{selection}/download?size=original", "/download-all?part=2&size=original",
                 f"/prepare-download?selection_id={selection}&size=original"):
        method = requests.post if "prepare" in what else requests.get
        answer = method(site.api(token, what), timeout=30)
        assert answer.status_code == 403 and answer.json()["error"] == "web_size_only", what
    sent = requests.get(site.api(token, f"/selections/{selection}/download"), timeout=60)
    assert sent.status_code == 200
    assert list(entries(sent.content).values()) == [site.photos["IMG_1.png"][2], site.photos["IMG_3.jpg"][2]]
