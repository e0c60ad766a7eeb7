"""Whole album: `GET|HEAD /api/share/<token>/download-all`, the album JSON, and the temp-archive lifecycle.

After every scenario the temp folder must be empty: tests count its files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from werkzeug.http import http_date

from photoshare import activity, albums
from photoshare.archive import ArchiveSourceError
from photoshare.delivery import archive_files
from photoshare.extensions import db
from photoshare.models import Album, ShareLink
from photoshare.storage import get_storage
from tests.conftest import make_jpeg
from tests.jobs_support import wait_until


def noise_jpeg(side: int = 300) -> bytes:
    """A real JPEG of random pixels: barely compressible, so its size is close to side² × 3 × ~0.4."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "JPEG", quality=92)
    return out.getvalue()


def temp_files(app) -> list[str]:
    return sorted(os.listdir(app.config["TEMP_DIR"]))


def assert_cleaned_up(app, *, locks: bool = False) -> None:
    """No temp archive (and lock file) is left: the builder thread lets go of them when its build ends, which
    may be a moment after the last response closed."""
    lock_dir = app.config["LOCK_DIR"]
    wait_until(lambda: temp_files(app) == [] and (not locks or os.listdir(lock_dir) == []), timeout=10,
               what="temp archive removed")


def get(client, url: str, **kwargs):
    """Read the whole body and close it, as a server does: the archive's cleanup has run on return."""
    return client.get(url, buffered=True, **kwargs)


def all_url(token: str) -> str:
    return f"/api/share/{token}/download-all"


def album_row(app, album_id: int) -> Album:
    with app.app_context():
        album = db.session.get(Album, album_id)
        db.session.expunge(album)
        return album


@pytest.fixture
def shared_album(app, make_album, make_share):
    """(album id, token) of a three-photo album whose names need de-duplication."""
    files = [("IMG_0001.jpg", make_jpeg(noise=1)), ("img_0001.JPG", make_jpeg(noise=1)), ("IMG_0001.jpg", noise_jpeg())]
    album_id = make_album(files=files, title="Summer / Beach")
    return album_id, make_share(album_id)


# ---- the archive ----------------------------------------------------------------------------------------


def test_download_all_is_a_stored_zip_of_every_photo_in_album_order(app, client, shared_album):
    album_id, token = shared_album
    response = get(client, all_url(token))
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["IMG_0001.jpg", "img_0001_1.JPG", "IMG_0001_2.jpg"]
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
        with app.app_context():
            originals = [get_storage().open(albums.photo_key(p)).read() for p in db.session.get(Album, album_id).photos]
        assert [archive.read(name) for name in archive.namelist()] == originals
    assert_cleaned_up(app)


def test_archive_headers_name_the_album_and_derive_etag_from_its_version(app, client, shared_album):
    album_id, token = shared_album
    album = album_row(app, album_id)
    response = get(client, all_url(token))
    assert response.headers["Content-Disposition"] == 'attachment; filename="Summer - Beach.zip"'
    assert response.headers["ETag"] == f'"zip-{album.version}"'
    assert response.headers["Last-Modified"] == http_date(album.updated_at)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Length"] == str(len(response.data))


def test_the_same_album_version_always_gives_the_same_bytes(app, client, shared_album):
    _, token = shared_album
    first, second = get(client, all_url(token)), get(client, all_url(token))
    assert hashlib.sha256(first.data).digest() == hashlib.sha256(second.data).digest()
    assert first.headers["ETag"] == second.headers["ETag"]


def test_two_ranges_concatenated_are_the_full_archive(app, client, shared_album):
    _, token = shared_album
    full = get(client, all_url(token)).data
    head = get(client, all_url(token), headers={"Range": "bytes=0-999"})
    rest = get(client, all_url(token), headers={"Range": "bytes=1000-"})
    assert (head.status_code, rest.status_code) == (206, 206)
    assert rest.headers["Content-Range"] == f"bytes 1000-{len(full) - 1}/{len(full)}"
    assert head.data + rest.data == full
    assert_cleaned_up(app)


def test_head_gives_the_size_and_leaves_no_temp_file(app, client, shared_album):
    _, token = shared_album
    size = len(get(client, all_url(token)).data)
    response = client.head(all_url(token), buffered=True)
    assert response.status_code == 200 and response.data == b""
    assert response.headers["Content-Length"] == str(size)
    assert_cleaned_up(app)


def test_archive_is_a_file_in_the_temp_folder_while_it_is_served(app, client, shared_album):
    album_id, token = shared_album
    response = client.get(all_url(token))  # streamed, still open
    assert temp_files(app) == [f"album-{album_row(app, album_id).version}.zip"]
    response.close()
    assert_cleaned_up(app, locks=True)


def test_album_change_changes_the_etag_and_a_stale_if_range_gets_the_whole_new_archive(app, client, shared_album):
    album_id, token = shared_album
    old = get(client, all_url(token), headers={"Range": "bytes=0-999"})
    with app.app_context():
        albums.rename_photo(db.session.get(Album, album_id).photos[0], "renamed.jpg")
    response = get(client, all_url(token), headers={"Range": "bytes=1000-", "If-Range": old.headers["ETag"]})
    assert response.status_code == 200 and response.headers["ETag"] != old.headers["ETag"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.namelist()[0] == "renamed.jpg" and archive.testzip() is None
    current = get(client, all_url(token), headers={"Range": "bytes=1000-", "If-Range": response.headers["ETag"]})
    assert current.status_code == 206 and current.data == response.data[1000:]


def test_if_range_with_a_date_never_mixes_two_versions_changed_in_the_same_second(app, client, shared_album):
    """An album can change twice within one second, so its Last-Modified is a weak validator (RFC 9110
    8.8.2.2): If-Range by date gets the whole archive; only the ETag resumes."""
    album_id, token = shared_album
    old = get(client, all_url(token), headers={"Range": "bytes=0-999"})
    with app.app_context():
        album = db.session.get(Album, album_id)
        updated_at = album.updated_at
        albums.rename_photo(album.photos[0], "renamed.jpg")
        album.updated_at = updated_at  # the change fell within the same second
        db.session.commit()
    response = get(client, all_url(token), headers={"Range": "bytes=1000-", "If-Range": old.headers["Last-Modified"]})
    assert response.status_code == 200 and response.headers["Last-Modified"] == old.headers["Last-Modified"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.namelist()[0] == "renamed.jpg" and archive.testzip() is None
    assert_cleaned_up(app)


def test_if_none_match_gives_304_without_building(app, client, shared_album, caplog):
    _, token = shared_album
    etag = get(client, all_url(token)).headers["ETag"]
    caplog.set_level(logging.INFO, logger="photoshare")  # archive_files and archive_stream
    response = get(client, all_url(token), headers={"If-None-Match": etag})
    assert response.status_code == 304 and "built archive" not in caplog.text
    assert_cleaned_up(app)


def test_unsatisfiable_range_on_the_archive_is_416_and_leaves_nothing(app, client, shared_album):
    _, token = shared_album
    response = get(client, all_url(token), headers={"Range": "bytes=999999999-"})
    assert response.status_code == 416 and response.headers["Content-Range"].startswith("bytes */")
    assert_cleaned_up(app)


def test_empty_album_has_nothing_to_download(app, client, make_album, make_share):
    token = make_share(make_album(files={}))
    response = get(client, all_url(token))
    assert response.status_code == 404 and response.json["error"] == "empty_album"


# ---- errors while building --------------------------------------------------------------------------------


def test_missing_photo_file_is_a_clear_error_and_no_partial_archive(app, client, shared_album):
    album_id, token = shared_album
    with app.app_context():
        get_storage().delete(albums.photo_key(db.session.get(Album, album_id).photos[1]))
    response = get(client, all_url(token))
    assert response.status_code == 500 and response.headers["Content-Type"] == "application/json"
    assert response.json["error"] == "archive_failed" and "img_0001_1.JPG" in response.json["message"]
    assert_cleaned_up(app, locks=True)
    page = client.get(all_url(token), headers={"Accept": "text/html"}, buffered=True)
    assert page.status_code == 500 and "Traceback" not in page.get_data(as_text=True)


@pytest.fixture
def small_disk(app, tmp_path: Path):
    """TEMP_DIR on a 512 KiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        if "permission denied" in result.stderr.lower() or "not permitted" in result.stderr.lower():
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        raise AssertionError(result.stderr)
    app.config["TEMP_DIR"] = str(mount)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_answers_507_and_removes_the_partial_archive(app, client, make_album, make_share, small_disk):
    token = make_share(make_album(files={f"p{i}.jpg": noise_jpeg(400) for i in range(6)}))
    response = get(client, all_url(token))
    assert response.status_code == 507
    assert response.json == {"error": "storage_full", "message": archive_files.StorageFull.message}
    assert os.listdir(small_disk) == []


# ---- share rules and limits -------------------------------------------------------------------------------


def test_share_rules_apply_to_download_all(app, client, make_album, make_share):
    album_id = make_album(count=2)
    protected = make_share(album_id, password="let me in")
    assert get(client, all_url(protected)).status_code == 401
    assert get(client, all_url(protected), headers={"X-Share-Password": "wrong"}).status_code == 403
    assert get(client, all_url(protected) + "?password=let+me+in").status_code == 200
    assert get(client, all_url(make_share(album_id, downloads_allowed=False))).status_code == 403
    assert_cleaned_up(app)


def test_download_all_is_rate_limited_with_429_and_retry_after(app, client, shared_album):
    _, token = shared_album
    app.config["DOWNLOAD_ALL_RATE_LIMIT"] = "2 per minute"
    assert [get(client, all_url(token)).status_code for _ in range(2)] == [200, 200]
    refused = get(client, all_url(token))
    assert refused.status_code == 429 and refused.json["error"] == "too_many_attempts"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert_cleaned_up(app)


def test_a_finished_archive_download_counts_once(app, client, shared_album):
    _, token = shared_album
    client.head(all_url(token), buffered=True)
    get(client, all_url(token), headers={"Range": "bytes=0-999"})
    get(client, all_url(token), headers={"Range": "bytes=1000-"})
    activity.flush(app)  # counters are added by the activity writer, off the request path
    with app.app_context():
        count = db.session.execute(db.select(ShareLink.download_count).where(ShareLink.token == token)).scalar_one()
    assert count == 1


# ---- album JSON ----------------------------------------------------------------------------------------------


def test_album_json_lists_photos_with_download_urls(app, client, shared_album):
    album_id, token = shared_album
    album = album_row(app, album_id)
    data = get(client, f"/api/share/{token}").json
    assert data["title"] == "Summer / Beach" and data["photo_count"] == 3 and data["version"] == album.version
    assert data["download_all_url"] == f"http://photoshare.test/api/share/{token}/download-all"
    first = data["photos"][0]
    assert set(first) >= {"id", "filename", "size", "width", "height", "download_url"}
    assert first["download_url"] == f"http://photoshare.test/api/share/{token}/download/{first['id']}"
    assert data["total_bytes"] == sum(photo["size"] for photo in data["photos"])
    assert get(client, first["download_url"].removeprefix("http://photoshare.test")).headers["Content-Length"] == str(
        first["size"]
    )


def test_album_json_needs_the_password(app, client, make_album, make_share):
    token = make_share(make_album(count=1), password="open sesame")
    assert get(client, f"/api/share/{token}").status_code == 401
    assert get(client, f"/api/share/{token}", headers={"X-Share-Password": "open sesame"}).json["photo_count"] == 1


# ---- the lifecycle on its own: threads stand in for gunicorn workers (flock works per open file) --------


@pytest.fixture
def plan(app, make_album):
    """(entries, open_source) of a small album, for calling archive_files directly."""
    album_id = make_album(count=4)
    with app.app_context():
        entries = albums.archive_plan(db.session.get(Album, album_id))
    return entries, get_storage


def test_concurrent_readers_share_one_build_and_the_last_one_removes_it(app, plan, caplog):
    entries, storage = plan
    caplog.set_level(logging.INFO, logger="photoshare")  # archive_files and archive_stream
    barrier, opened, errors = threading.Barrier(8), [], []
    dirs = {"temp_dir": app.config["TEMP_DIR"], "lock_dir": app.config["LOCK_DIR"]}
    with app.app_context():
        store = storage()

    def open_source(key: str):
        time.sleep(0.05)  # a slow disk: the other readers arrive while the archive is being built
        return store.open(key)

    def reader() -> None:
        try:
            barrier.wait()
            opened.append(archive_files.open_shared(entries, version="v1", open_source=open_source, **dirs))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # All 8 hold the archive at once: nobody waited for another's download to finish.
    assert errors == [] and len(opened) == 8
    assert caplog.text.count("built archive album-v1.zip") == 1
    assert len({hashlib.sha256(shared.file.read()).hexdigest() for shared in opened}) == 1
    for shared in opened[:-1]:
        shared.release()
        assert temp_files(app) == ["album-v1.zip"]
    opened[-1].release()
    opened[-1].release()  # twice is harmless
    assert_cleaned_up(app, locks=True)


def test_a_request_within_the_linger_reuses_the_archive_without_a_rebuild_and_then_it_goes(
    app, client, shared_album, caplog
):
    """A download manager reconnects after its first connections closed (aria2c): ARCHIVE_LINGER_SECONDS
    keeps the built archive for it; once that passes without a user, the archive and its locks are gone."""
    _album_id, token = shared_album
    app.config["ARCHIVE_LINGER_SECONDS"] = 1.5
    caplog.set_level(logging.INFO, logger="photoshare")
    whole = get(client, all_url(token))
    assert whole.status_code == 200
    wait_until(lambda: "built archive" in caplog.text, timeout=10, what="the build to end")
    assert len(temp_files(app)) == 1  # the last response closed, the archive stays for a while
    start = len(whole.data) * 9 // 10
    resumed = get(client, all_url(token), headers={"Range": f"bytes={start}-"})
    assert resumed.status_code == 206 and resumed.data == whole.data[start:]
    assert resumed.headers["ETag"] == whole.headers["ETag"]
    assert caplog.text.count("built archive") == 1  # read from the lingering archive, not built again
    assert_cleaned_up(app, locks=True)
    again = get(client, all_url(token))
    assert again.data == whole.data
    wait_until(lambda: caplog.text.count("built archive") == 2, timeout=10, what="a new build after the linger")
    assert_cleaned_up(app, locks=True)


def test_failed_build_raises_and_leaves_neither_archive_nor_lock(app, plan):
    entries, _storage = plan

    def broken(key: str):
        raise FileNotFoundError(key)

    with app.app_context(), pytest.raises(archive_files.ArchiveUnavailable) as caught:
        archive_files.open_shared(
            entries, version="v2", temp_dir=app.config["TEMP_DIR"], lock_dir=app.config["LOCK_DIR"], open_source=broken
        )
    assert isinstance(caught.value.__cause__, ArchiveSourceError)
    # The builder thread lets go of its lock a moment after it reports the failure; the last holder removes all.
    wait_until(lambda: temp_files(app) == [] and os.listdir(app.config["LOCK_DIR"]) == [], timeout=10,
               what="the failed archive and its lock files to go")


def test_remove_stale_clears_leftovers_of_a_killed_worker_but_not_archives_in_use(app, plan):
    entries, storage = plan
    temp, locks = Path(app.config["TEMP_DIR"]), app.config["LOCK_DIR"]
    (temp / "album-dead.zip").write_bytes(b"left by a killed worker")
    (temp / "album-dead2.partial").write_bytes(b"half")
    with app.app_context():
        in_use = archive_files.open_shared(
            entries, version="live", temp_dir=temp, lock_dir=locks, open_source=storage().open
        )
    assert archive_files.remove_stale(temp, locks) == 2
    assert temp_files(app) == ["album-live.zip"]
    in_use.release()
    assert_cleaned_up(app, locks=True)
