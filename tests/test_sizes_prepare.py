"""Prepared (background) archives of web size and of location-free photos: each is its own job, cache file,
version and signed link, the same bytes as the archive streamed at once (embedded job pool, no broker)."""

from __future__ import annotations

import io
import zipfile

import pytest

from photoshare import albums
from photoshare.extensions import db
from photoshare.jobs.sweep import sweep
from photoshare.models import Album
from tests.conftest import LiveServer, make_jpeg
from tests.jobs_support import http, job_row, poll_status, zip_cache
from tests.location_support import gps_of, located_image

pytestmark = pytest.mark.usefixtures("embedded_jobs")


@pytest.fixture
def server(app, instance):
    server = LiveServer(instance, env={"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute"},
                        database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    yield server
    server.stop()


@pytest.fixture
def album_id(make_album) -> int:
    return make_album([("IMG_1.png", located_image("PNG", (2200, 1400), noise=False)),
                       ("IMG_1.jpg", located_image("JPEG", (800, 600))), ("plain.jpg", make_jpeg(200, 150, noise=1))])


def prepared(base: str, token: str, size: str | None = None) -> tuple[str, str]:
    """(job id, signed download URL) of a prepare-download run to the end."""
    reply = http("POST", f"{base}/api/share/{token}/prepare-download" + (f"?size={size}" if size else ""))
    assert reply.status in (200, 202), reply.body
    job_id = reply.json()["job_id"]
    ready = poll_status(base, token, job_id)
    assert ready["status"] == "ready", ready
    return job_id, ready["download_url"]


def test_each_size_and_location_rule_is_its_own_prepared_archive_with_the_streamed_bytes(app, server, album_id,
                                                                                        make_share):
    removed, kept = make_share(album_id), make_share(album_id, strip_location=False)
    with app.app_context():
        version = db.session.get(Album, album_id).version
    jobs = {name: prepared(server.url, token, size) for name, token, size in
            [("large", removed, "large"), ("clean", removed, None), ("original", kept, None)]}
    rows = {name: job_row(app, job_id) for name, (job_id, _url) in jobs.items()}
    assert {name: row.variant for name, row in rows.items()} == {
        "large": "large", "clean": "original-clean", "original": "original"}
    assert rows["original"].album_version == version
    assert len({row.album_version for row in rows.values()}) == 3 and len(zip_cache(app)) == 3

    for name, token, size in [("large", removed, "large"), ("clean", removed, None), ("original", kept, None)]:
        link = http("GET", jobs[name][1])
        streamed = http("GET", f"{server.url}/api/share/{token}/download-all" + (f"?size={size}" if size else ""))
        assert link.status == streamed.status == 200
        assert link.body == streamed.body and link.headers["etag"] == streamed.headers["etag"]
        assert link.headers["etag"] == f'"zip-{rows[name].album_version}"'
        resumed = http("GET", jobs[name][1], headers={"Range": "bytes=500-", "If-Range": link.headers["etag"]})
        assert resumed.status == 206 and resumed.body == link.body[500:]
    with zipfile.ZipFile(io.BytesIO(http("GET", jobs["clean"][1]).body)) as archive:
        assert gps_of(archive.read("IMG_1.jpg")) == {} and archive.namelist() == ["IMG_1.png", "IMG_1.jpg", "plain.jpg"]
    with zipfile.ZipFile(io.BytesIO(http("GET", jobs["large"][1]).body)) as archive:
        assert archive.namelist() == ["IMG_1.jpg", "IMG_1_1.jpg", "plain.jpg"]

    with app.app_context():
        report = sweep(revive=False)
    assert report.outdated == 0 and len(zip_cache(app)) == 3  # variants are current while their jobs are ready


def test_album_change_retires_every_variant_and_its_links_answer_410(app, server, album_id, make_share):
    token = make_share(album_id)
    _job, url = prepared(server.url, token, "large")
    with app.app_context():
        albums.rename_photo(db.session.get(Album, album_id).photos[0], "renamed.png")
    assert zip_cache(app) == []
    gone = http("GET", url, headers={"Accept": "application/json"})
    assert gone.status == 410 and gone.json()["error"] == "album_changed"


def test_a_web_size_only_share_prepares_no_originals(app, client, album_id, make_share):
    capped = make_share(album_id, web_size_only=True)
    refused = client.post(f"/api/share/{capped}/prepare-download?size=original")
    assert refused.status_code == 403 and refused.get_json()["error"] == "web_size_only"
    assert client.post(f"/api/share/{capped}/prepare-download?size=huge").status_code == 400
