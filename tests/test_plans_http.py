"""Selections and parts (plans.py) against a real gunicorn: ids, bytes and ETags stable whatever the order of
the request, every entry's sha256, `unzip -t`, `curl -C -` resumes, plain ZIPs under the part limit, the
400/404/410 answers, and the prepare flow with its signed link.

One gunicorn for the module with ARCHIVE_PART_MB at 0.25 (262,144 bytes) so that albums of a few noise
JPEGs come in parts; each test makes its own album.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from photoshare import albums, plans
from photoshare.access import create_share_link
from photoshare.extensions import db
from photoshare.models import Album, Photo, Selection, ShareLink
from tests.conftest import Site, database_settings, module_instance
from tests.jobs_support import JOB_ENV, http, poll_status, wait_until
from tests.test_downloads_http import curl, run

PART_MB = 0.25
PART_LIMIT = int(PART_MB * 1024 * 1024)
SETTINGS = {"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute", "ARCHIVE_PART_MB": str(PART_MB), **JOB_ENV}


@pytest.fixture(scope="module")
def site(tmp_path_factory, postgres_server) -> Iterator[Site]:
    site = Site.start(module_instance(tmp_path_factory, "plans-http"),
                      database_settings(postgres_server) | {"ARCHIVE_PART_MB": PART_MB}, env=SETTINGS)
    yield site
    site.stop()


def photos_of(site: Site, album_id: int) -> list[tuple[int, str, str]]:
    """(id, file name, sha256) of every photo, in album order."""
    with site.app.app_context():
        return [(p.id, p.original_filename, p.sha256) for p in db.session.get(Album, album_id).photos]


def api(site: Site, token: str, what: str = "") -> str:
    return f"{site.server.url}/api/share/{token}{what}"


def select(site: Site, token: str, ids: Any, headers: dict[str, str] | None = None):
    return http("POST", api(site, token, "/selections"), data={"photo_ids": ids}, headers=headers)


def entries(data: bytes) -> list[tuple[str, str]]:
    """(name, sha256) of every entry, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, hashlib.sha256(archive.read(info)).hexdigest()) for info in archive.infolist()]


def assert_plain_zip(data: bytes) -> None:
    """No ZIP64 anywhere: no ZIP64 end record or locator, no 0x0001 extra field in a local or central header."""
    assert b"PK\x06\x06" not in data and b"PK\x06\x07" not in data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            assert info.extra == b"", info.filename  # central directory
            local = struct.unpack("<4s5H3L2H", data[info.header_offset:info.header_offset + 30])
            assert local[0] == b"PK\x03\x04" and local[-1] == 0, info.filename  # local header: no extra


def download_name(headers: dict[str, str]) -> str:
    value = headers["content-disposition"]
    match = re.search(r"filename\*=UTF-8''([^;]+)", value) or re.search(r'filename="([^"]+)"', value)
    assert match, value
    return unquote(match.group(1))


def selection_count(site: Site) -> int:
    with site.app.app_context():
        return db.session.execute(db.select(db.func.count()).select_from(Selection)).scalar_one()


# ---- selections -------------------------------------------------------------------------------------------


def test_the_same_photos_in_any_order_give_one_selection_with_the_same_bytes_and_etag(site, tmp_path):
    album_id, token = site.album(photos=5, side=120, title="Holiday")
    photos = photos_of(site, album_id)
    first = select(site, token, [photos[3][0], photos[0][0], photos[1][0]])
    again = select(site, token, [photos[1][0], photos[3][0], photos[0][0]])
    assert (first.status, again.status) == (201, 200)
    body = first.json()
    assert body == again.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["selection_id"])
    assert body["photo_count"] == 3 and body["archives"] == []
    sizes = _sizes(site, album_id)
    assert body["total_bytes"] == sizes[0] + sizes[1] + sizes[3]
    assert body["download_url"].startswith(site.server.url)  # BASE_URL of the server
    one, two = http("GET", body["download_url"]), http("GET", body["download_url"])
    assert one.status == two.status == 200 and one.body == two.body
    assert one.headers["etag"] == two.headers["etag"] != http("HEAD", api(site, token, "/download-all")).headers["etag"]
    assert int(one.headers["content-length"]) == len(one.body) == body["size"]
    assert download_name(one.headers) == "Holiday (3 photos).zip"
    # Album order inside, whatever the order asked; each entry is the photo's exact bytes.
    assert entries(one.body) == [(name, sha) for _id, name, sha in (photos[0], photos[1], photos[3])]
    target = tmp_path / "selection.zip"
    target.write_bytes(one.body)
    assert run("unzip", "-tq", target).returncode == 0
    assert site.wait_temp_empty() == []


def _sizes(site: Site, album_id: int) -> list[int]:
    with site.app.app_context():
        return [p.size for p in db.session.get(Album, album_id).photos]


def test_a_selection_download_resumes_with_curl_C_and_answers_head_and_ranges(site, tmp_path):
    album_id, token = site.album(photos=4, side=700)
    photos = photos_of(site, album_id)
    url = select(site, token, [photos[2][0], photos[1][0]]).json()["download_url"]
    whole = tmp_path / "whole.zip"
    curl("-o", whole, url)
    head = http("HEAD", url)
    assert head.status == 200 and int(head.headers["content-length"]) == whole.stat().st_size
    assert head.headers["accept-ranges"] == "bytes"
    target = tmp_path / "resumed.zip"
    run("bash", "-c", f"curl --silent '{url}' | head -c 500000 > '{target}'")
    assert target.stat().st_size == 500_000 < whole.stat().st_size
    assert site.wait_temp_empty() == []
    curl("-C", "-", "-o", target, url)
    assert target.read_bytes() == whole.read_bytes() and run("unzip", "-tq", target).returncode == 0
    ranged = http("GET", url, headers={"Range": "bytes=100-199", "If-Range": head.headers["etag"]})
    assert ranged.status == 206 and ranged.body == whole.read_bytes()[100:200]
    assert site.wait_temp_empty() == []


@pytest.mark.parametrize("case", ["other album", "unknown", "empty", "duplicates", "too many", "not a list",
                                  "text ids", "booleans", "no body"])
def test_a_bad_selection_is_a_400_with_a_clear_message_and_stores_nothing(site, case):
    album_id, token = site.album(photos=2, side=64)
    other_id, _other = site.album(photos=1, side=64)
    ids = [p[0] for p in photos_of(site, album_id)]
    body = {
        "other album": [ids[0], photos_of(site, other_id)[0][0]],
        "unknown": [ids[0], 2_000_000_000],
        "empty": [],
        "duplicates": [ids[0], ids[0]],
        "too many": ids + ids + [1],
        "not a list": ids[0],
        "text ids": [str(ids[0])],
        "booleans": [True],
        "no body": None,
    }[case]
    before = selection_count(site)
    reply = (http("POST", api(site, token, "/selections")) if case == "no body" else select(site, token, body))
    assert reply.status == 400, reply.body
    data = reply.json()
    assert data["error"] == "bad_selection" and len(data["message"]) > 10
    assert selection_count(site) == before
    assert site.wait_temp_empty() == []


def test_a_selection_made_before_the_album_changed_answers_410_select_again(site):
    album_id, token = site.album(photos=3, side=64)
    photos = photos_of(site, album_id)
    url = select(site, token, [photos[0][0]]).json()["download_url"]
    assert http("HEAD", url).status == 200
    with site.app.app_context():
        albums.rename_photo(db.session.get(Photo, photos[2][0]), "renamed.jpg")  # not even a selected photo
    gone = http("GET", url)
    assert gone.status == 410 and gone.json()["error"] == "selection_outdated"
    assert "select" in gone.json()["message"].lower()
    assert select(site, token, [photos[0][0]]).status == 201  # selecting again gives a new, working one
    assert site.wait_temp_empty() == []


def test_an_unknown_or_malformed_selection_id_is_404(site):
    _album_id, token = site.album(photos=1, side=64)
    for selection_id in ("0" * 32, "not-a-selection", "A" * 32):
        reply = http("GET", api(site, token, f"/selections/{quote(selection_id)}/download"))
        assert reply.status == 404 and reply.json()["error"] == "selection_not_found"


def test_a_selection_of_another_share_s_album_is_404(site):
    album_id, token = site.album(photos=2, side=64)
    _other_id, other_token = site.album(photos=2, side=64)
    selection = select(site, token, [photos_of(site, album_id)[0][0]]).json()["selection_id"]
    reply = http("GET", api(site, other_token, f"/selections/{selection}/download"))
    assert reply.status == 404


def test_the_share_rules_apply_to_selections_as_to_download_all(site):
    album_id, _token = site.album(photos=2, side=64)
    photo = photos_of(site, album_id)[0][0]
    with site.app.app_context():
        album = db.session.get(Album, album_id)
        locked = create_share_link(album, password="open sesame").token
        no_downloads = create_share_link(album, downloads_allowed=False).token
        revoked_link = create_share_link(album)
        revoked_link.revoked = True
        db.session.commit()
        revoked = revoked_link.token
    assert select(site, locked, [photo]).status == 401
    made = select(site, locked, [photo], headers={"X-Share-Password": "open sesame"})
    assert made.status == 201
    url = made.json()["download_url"]
    assert http("GET", url).status == 401
    assert http("GET", url, headers={"X-Share-Password": "open sesame"}).status == 200
    assert select(site, no_downloads, [photo]).status == 403
    assert http("GET", url.replace(locked, no_downloads)).status == 403
    assert select(site, revoked, [photo]).status == 410
    assert http("GET", url.replace(locked, revoked)).status == 410


def test_a_finished_selection_download_counts_on_the_link(site):
    album_id, token = site.album(photos=2, side=64)
    url = select(site, token, [photos_of(site, album_id)[1][0]]).json()["download_url"]
    before = site.downloads(token)
    assert http("GET", url).status == 200
    assert http("HEAD", url).status == 200
    wait_until(lambda: site.downloads(token) == before + 1, timeout=10, what="the download to count")


# ---- parts ------------------------------------------------------------------------------------------------


def expected_parts(site: Site, album_id: int) -> list[list[str]]:
    """The entry names of each part, as plans.split makes them in-process."""
    with site.app.app_context():
        album = db.session.get(Album, album_id)
        return [[e.name for e in part.entries] for part in plans.split(plans.album_plan(album))]


def test_a_large_album_lists_its_parts_and_each_is_a_plain_zip_under_the_limit(site, tmp_path):
    album_id, token = site.album(photos=7, side=200, title="Été / big")  # about 7 × 70 KB: 2 or 3 parts
    listing = http("GET", api(site, token)).json()
    parts = listing["archives"]
    assert len(parts) == len(expected_parts(site, album_id)) >= 2
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert {p["parts"] for p in parts} == {len(parts)}
    assert sum(p["photo_count"] for p in parts) == 7
    seen = []
    for listed in parts:
        reply = http("GET", listed["download_url"])
        assert reply.status == 200
        assert len(reply.body) == int(reply.headers["content-length"]) == listed["size"] <= PART_LIMIT
        assert download_name(reply.headers) == f"Été - big (part {listed['part']} of {len(parts)}).zip"
        assert_plain_zip(reply.body)
        target = tmp_path / f"part{listed['part']}.zip"
        target.write_bytes(reply.body)
        assert run("unzip", "-tq", target).returncode == 0
        assert len(entries(reply.body)) == listed["photo_count"]
        seen += entries(reply.body)
        assert http("GET", listed["download_url"]).body == reply.body  # byte-stable
    # Every photo once, in album order, under its "Download all" name and with its exact bytes.
    assert seen == [(name, sha) for _id, name, sha in photos_of(site, album_id)]
    whole = http("GET", listing["download_all_url"])
    assert whole.status == 200 and entries(whole.body) == seen  # the single archive stays available
    etags = {http("HEAD", p["download_url"]).headers["etag"] for p in parts} | {whole.headers["etag"]}
    assert len(etags) == len(parts) + 1  # each part its own version
    assert site.wait_temp_empty() == []


def test_part_2_resumes_with_curl_C(site, tmp_path):
    _album_id, token = site.album(photos=6, side=260)
    url = http("GET", api(site, token)).json()["archives"][1]["download_url"]
    assert url.endswith("download-all?part=2")
    whole = tmp_path / "whole.zip"
    curl("-o", whole, url)
    target = tmp_path / "resumed.zip"
    run("bash", "-c", f"curl --silent '{url}' | head -c 50000 > '{target}'")
    assert target.stat().st_size == 50_000 < whole.stat().st_size
    curl("-C", "-", "-o", target, url)
    assert target.read_bytes() == whole.read_bytes() and run("unzip", "-tq", target).returncode == 0
    assert site.wait_temp_empty() == []


def test_a_part_out_of_range_is_404_and_a_malformed_one_400(site):
    _album_id, token = site.album(photos=6, side=260)
    parts = len(http("GET", api(site, token)).json()["archives"])
    for part in ("0", str(parts + 1), "999999"):
        reply = http("GET", api(site, token, f"/download-all?part={part}"))
        assert reply.status == 404 and reply.json()["error"] == "part_not_found", part
    for part in ("two", "-1", "1.5", "1e3", "١", "9" * 40):
        reply = http("GET", api(site, token, f"/download-all?part={quote(part)}"))
        assert reply.status == 400 and reply.json()["error"] == "bad_part", part
    assert site.wait_temp_empty() == []


def test_a_small_album_lists_no_parts_and_has_none(site):
    _album_id, token = site.album(photos=2, side=64)
    assert http("GET", api(site, token)).json()["archives"] == []
    assert http("GET", api(site, token, "/download-all?part=1")).status == 404


def test_a_large_selection_comes_in_parts_too(site, tmp_path):
    album_id, token = site.album(photos=8, side=200, title="Big")
    photos = photos_of(site, album_id)
    chosen = [p[0] for p in photos[1:8]]
    body = select(site, token, chosen).json()
    assert len(body["archives"]) >= 2 and sum(p["photo_count"] for p in body["archives"]) == 7
    seen = []
    for listed in body["archives"]:
        reply = http("GET", listed["download_url"])
        assert reply.status == 200 and len(reply.body) == listed["size"] <= PART_LIMIT
        assert download_name(reply.headers) == f"Big (7 photos) (part {listed['part']} of {len(body['archives'])}).zip"
        assert_plain_zip(reply.body)
        seen += entries(reply.body)
    assert seen == [(name, sha) for _id, name, sha in photos[1:8]]
    assert http("GET", body["download_url"] + "?part=99").status == 404
    assert site.wait_temp_empty() == []


# ---- prepared downloads of a selection and of a part ---------------------------------------------------------


def test_a_selection_can_be_prepared_and_its_signed_link_gives_the_same_bytes(site):
    album_id, token = site.album(photos=3, side=150, title="Prep")
    photos = photos_of(site, album_id)
    body = select(site, token, [photos[2][0], photos[0][0]]).json()
    direct = http("GET", body["download_url"])
    page = http("GET", site.server.url + body["prepare_page_url"])  # where the gallery goes for a big selection
    assert page.status == 200 and b"2 photos" in page.body
    assert f"prepare-download?selection_id={body['selection_id']}".encode() in page.body
    started = http("POST", api(site, token, "/prepare-download"), data={"selection_id": body["selection_id"]})
    assert started.status in (200, 202), started.body
    ready = poll_status(site.server.url, token, started.json()["job_id"])
    assert ready["status"] == "ready", ready
    prepared = http("GET", ready["download_url"])
    assert prepared.status == 200 and prepared.body == direct.body
    assert prepared.headers["etag"] == direct.headers["etag"]
    assert download_name(prepared.headers) == "Prep (2 photos).zip"
    # The album as a whole is another job, another archive.
    whole = http("POST", api(site, token, "/prepare-download"), data={})
    assert whole.json()["job_id"] != started.json()["job_id"]
    # Once the album changes, the selection's link is gone like an album's.
    with site.app.app_context():
        albums.rename_photo(db.session.get(Photo, photos[1][0]), "other.jpg")
    gone = http("GET", ready["download_url"], headers={"Accept": "application/json"})
    assert gone.status == 410


def test_a_part_can_be_prepared_through_the_preparing_page_s_query(site):
    _album_id, token = site.album(photos=6, side=260)
    part = http("GET", api(site, token)).json()["archives"][1]
    page = http("GET", f"{site.server.url}/s/{token}/prepare?part=2")
    assert page.status == 200 and b"prepare-download?part=2" in page.body
    started = http("POST", api(site, token, "/prepare-download?part=2"), data={})
    ready = poll_status(site.server.url, token, started.json()["job_id"])
    prepared = http("GET", ready["download_url"])
    assert prepared.status == 200 and prepared.body == http("GET", part["download_url"]).body
    assert download_name(prepared.headers).endswith(f"(part 2 of {part['parts']}).zip")
    assert http("POST", api(site, token, "/prepare-download?part=77"), data={}).status == 404
    assert http("POST", api(site, token, "/prepare-download"), data={"part": "x"}).status == 400
    assert http("POST", api(site, token, "/prepare-download"), data={"selection_id": "f" * 32}).status == 404


def test_the_sweeper_keeps_prepared_parts_and_selections_of_the_current_album(site):
    album_id, token = site.album(photos=6, side=260)
    selection = select(site, token, [photos_of(site, album_id)[0][0]]).json()["selection_id"]
    for data in ({"part": 2}, {"selection_id": selection}):
        started = http("POST", api(site, token, "/prepare-download"), data=data)
        assert poll_status(site.server.url, token, started.json()["job_id"])["status"] == "ready"
    cache = Path(site.app.config["ZIP_CACHE_DIR"])
    before = sorted(p.name for p in cache.glob(f"album-{album_id}-*.zip"))
    assert len(before) == 2
    with site.app.app_context():
        from photoshare.jobs.sweep import sweep

        report = sweep(revive=False)
        assert report.outdated == 0
    assert sorted(p.name for p in cache.glob(f"album-{album_id}-*.zip")) == before
    with site.app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        albums.rename_photo(link.album.photos[5], "changed.jpg")  # the selection and every part change
    assert sorted(p.name for p in cache.glob(f"album-{album_id}-*.zip")) != before
