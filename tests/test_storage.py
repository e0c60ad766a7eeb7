"""The storage contract, the same tests on both backends: `local` and `s3` (a real moto S3 server over HTTP).

Plus what only a remote store has: presigned and CDN URLs, start-up checks, outages, and the migration.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from photoshare import albums, create_app
from photoshare.archive import plan_archive, write_archive
from photoshare.auth import create_user
from photoshare.config import ConfigError
from photoshare.extensions import db
from photoshare.models import Photo
from photoshare.names import content_disposition
from photoshare.sizes import large_key
from photoshare.storage import LocalStorage, StorageError, get_storage
from photoshare.storage.s3 import IMMUTABLE_CACHE_CONTROL, S3Storage
from tests.conftest import ROOT, S3_TEST_KEYS, MotoServer, base_config, free_port, make_jpeg

MiB = 1024 * 1024
DATA = os.urandom(300_000)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path):
    """The same contract on each backend; S3 uploads go in 5 MiB parts (S3's smallest) so 20 MB is multipart."""
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    config = request.getfixturevalue("s3_config")
    return S3Storage.from_config(config | {"S3_MULTIPART_CHUNK_MB": 5})


@pytest.fixture
def s3_store(s3_config: dict[str, Any]) -> S3Storage:
    return S3Storage.from_config(s3_config)


class TrackingReader(io.BytesIO):
    """An upload source that remembers how much each read asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


# The contract, on both backends.


def test_saved_object_reads_back_with_its_size_and_the_source_stays_open(store):
    source = io.BytesIO(DATA)
    assert store.save("originals/a.bin", source) == len(DATA)
    source.seek(0)  # the caller goes on to make a thumbnail from it
    assert store.exists("originals/a.bin")
    assert store.size("originals/a.bin") == len(DATA)
    with store.open("originals/a.bin") as handle:
        assert handle.read() == DATA


def test_open_reads_the_right_bytes_after_every_kind_of_seek(store):
    store.save("originals/a.bin", io.BytesIO(DATA))
    with store.open("originals/a.bin") as handle:
        assert handle.read(10) == DATA[:10]
        assert handle.tell() == 10
        handle.seek(200_000)
        assert handle.read(1000) == DATA[200_000:201_000]
        handle.seek(-50, io.SEEK_CUR)
        assert handle.read(100) == DATA[200_950:201_050]
        handle.seek(-7, io.SEEK_END)
        assert handle.read() == DATA[-7:]
        assert handle.read(10) == b""
        handle.seek(5)
        assert handle.tell() == 5
        assert handle.read(5) == DATA[5:10]


def test_missing_key_is_file_not_found_and_deleting_it_is_harmless(store):
    assert not store.exists("originals/none.jpg")
    with pytest.raises(FileNotFoundError):
        store.open("originals/none.jpg")
    with pytest.raises(FileNotFoundError):
        store.size("originals/none.jpg")
    store.delete("originals/none.jpg")


def test_delete_removes_the_object(store):
    store.save("thumbs/a.jpg", io.BytesIO(b"abc"))
    store.delete("thumbs/a.jpg")
    assert not store.exists("thumbs/a.jpg")


def test_save_replaces_an_object_and_empty_objects_work(store):
    store.save("zips/a.zip", io.BytesIO(b"first version"))
    assert store.save("zips/a.zip", io.BytesIO(b"")) == 0
    assert store.size("zips/a.zip") == 0
    with store.open("zips/a.zip") as handle:
        assert handle.read() == b""


def test_large_object_streams_in_parts_and_is_never_read_whole(store):
    data = os.urandom(20 * MiB)
    source = TrackingReader(data)
    assert store.save("originals/big.bin", source) == len(data)
    assert source.reads and all(0 < size <= 8 * MiB for size in source.reads), source.reads
    digest = hashlib.sha256()
    with store.open("originals/big.bin") as handle:
        while chunk := handle.read(64 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    if isinstance(store, S3Storage):  # a multipart object's ETag ends in its number of parts
        assert store.client.head_object(Bucket=store.bucket, Key="originals/big.bin")["ETag"].endswith('-4"')


def test_pillow_reads_a_photo_straight_from_the_store(store):
    store.save("originals/p.jpg", io.BytesIO(make_jpeg(320, 200, noise=1)))
    with store.open("originals/p.jpg") as handle, Image.open(handle) as image:
        image.load()
        assert image.size == (320, 200)


def test_archive_built_from_s3_is_byte_identical_to_the_local_one(tmp_path, s3_config):
    local, remote = LocalStorage(tmp_path / "store"), S3Storage.from_config(s3_config)
    photos = []
    for i, name in enumerate(["b.jpg", "a.jpg", "B.JPG"]):
        data, key = make_jpeg(color=(i * 60, 10, 10), noise=1), f"originals/{i}.jpg"
        local.save(key, io.BytesIO(data))
        remote.save(key, io.BytesIO(data))
        photos.append((name, key, len(data), hashlib.sha256(data).hexdigest(), datetime(2024, 5, i + 1, 12)))
    entries = plan_archive(photos)
    built = {}
    for label, storage in [("local", local), ("s3", remote)]:
        out = io.BytesIO()
        write_archive(entries, out, storage.open)
        built[label] = out.getvalue()
    assert built["s3"] == built["local"]
    assert zipfile.ZipFile(io.BytesIO(built["s3"])).namelist() == ["b.jpg", "a.jpg", "B_1.JPG"]


# Delivery URLs.


def test_local_store_hands_out_no_urls(tmp_path):
    local = LocalStorage(tmp_path)
    assert local.presigned_url("originals/a.jpg", expires_in=60, download_name="a.jpg") is None
    assert local.public_url("originals/a.jpg") is None


def test_presigned_url_carries_expiry_filename_and_type(s3_store):
    s3_store.save("originals/x.jpg", io.BytesIO(DATA))
    url = s3_store.presigned_url("originals/x.jpg", expires_in=600, download_name="Été à Paris.jpg",
                                 content_type="image/jpeg")
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert query["X-Amz-Expires"] == "600"
    disposition = query["response-content-disposition"]
    assert disposition == content_disposition("Été à Paris.jpg")  # the same header local delivery sends
    assert 'attachment; filename="Ete a Paris.jpg"; ' in disposition
    assert "filename*=UTF-8''%C3%89t%C3%A9%20%C3%A0%20Paris.jpg" in disposition
    assert query["response-content-type"] == "image/jpeg"
    inline = s3_store.presigned_url("originals/x.jpg", expires_in=60, download_name="x.jpg", inline=True)
    assert parse_qs(urlsplit(inline).query)["response-content-disposition"] == ['inline; filename="x.jpg"']
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["Content-Disposition"] == disposition
    assert response.headers["Content-Type"] == "image/jpeg"


def test_range_and_resume_through_the_presigned_url_return_the_right_bytes(s3_store):
    s3_store.save("originals/x.jpg", io.BytesIO(DATA))
    url = s3_store.presigned_url("originals/x.jpg", expires_in=3600, download_name="x.jpg")
    part = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert part.status_code == 206
    assert part.content == DATA[1000:2000]
    assert part.headers["Content-Range"].lower() == f"bytes 1000-1999/{len(DATA)}"
    rest = requests.get(url, headers={"Range": "bytes=250000-"}, timeout=10)
    assert rest.status_code == 206
    assert rest.content == DATA[250_000:]


def test_presigned_url_refuses_a_lifetime_s3_would_not_honour(s3_store):
    with pytest.raises(ValueError):
        s3_store.presigned_url("originals/x.jpg", expires_in=8 * 24 * 3600)


def test_cdn_urls_only_when_enabled_and_content_addressed_objects_are_immutable(s3_config):
    plain = S3Storage.from_config(s3_config)
    assert plain.public_url("originals/x.jpg") is None
    cdn = S3Storage.from_config(s3_config | {"CDN_ENABLED": True, "CDN_BASE_URL": "https://cdn.example.com/"})
    assert cdn.public_url("thumbs/ab c.jpg") == "https://cdn.example.com/thumbs/ab%20c.jpg"
    assert (cdn.public_url("originals/x.jpg", download_name="Été 1/2.jpg")
            == "https://cdn.example.com/originals/x.jpg?download=%C3%89t%C3%A9%201%2F2.jpg")
    with pytest.raises(ConfigError, match="CDN_BASE_URL"):
        S3Storage.from_config(s3_config | {"CDN_ENABLED": True})
    plain.save("originals/x.jpg", io.BytesIO(b"jpeg"))
    plain.save("zips/x.zip", io.BytesIO(b"zip"))
    head = plain.client.head_object(Bucket=plain.bucket, Key="originals/x.jpg")
    assert (head["CacheControl"], head["ContentType"]) == (IMMUTABLE_CACHE_CONTROL, "image/jpeg")
    assert plain.client.head_object(Bucket=plain.bucket, Key="zips/x.zip")["CacheControl"] == "private, no-cache"


# Start-up: a store that cannot be used stops the app with one line.


def assert_one_line_config_error(config: dict[str, Any], match: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match=match) as caught:
        create_app(config)
    assert "\n" not in str(caught.value)
    assert time.monotonic() - started < 20


def test_start_with_unreachable_store_fails_in_one_line(instance, s3_config):
    dead = f"http://127.0.0.1:{free_port()}"
    assert_one_line_config_error(base_config(instance) | s3_config | {"S3_ENDPOINT_URL": dead}, "unreachable")


def test_start_with_missing_bucket_fails_in_one_line(instance, s3_config):
    assert_one_line_config_error(base_config(instance) | s3_config | {"S3_BUCKET": "no-such-bucket"}, "does not exist")


def test_start_with_wrong_credentials_fails_in_one_line(instance):
    server = MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})  # moto then checks keys like AWS does
    try:
        config = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "photos", "S3_ENDPOINT_URL": server.url, **S3_TEST_KEYS}
        assert_one_line_config_error(base_config(instance) | config, "refused the credentials")
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"STORAGE_BACKEND": "r2", "S3_BUCKET": "photos"}, "S3_ENDPOINT_URL"),
        ({"STORAGE_BACKEND": "s3"}, "S3_BUCKET"),
        ({"STORAGE_BACKEND": "ftp"}, "not supported"),
    ],
)
def test_incomplete_storage_settings_fail_in_one_line(instance, settings, match):
    assert_one_line_config_error(base_config(instance) | settings, match)


def test_gunicorn_entry_point_prints_one_line_and_no_traceback(instance):
    env = {**os.environ, "PHOTOSHARE_INSTANCE": str(instance), "STORAGE_BACKEND": "s3", "S3_BUCKET": "photos",
           "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", **S3_TEST_KEYS}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 3  # gunicorn's WORKER_BOOT_ERROR: the arbiter halts
    assert result.stderr.startswith("photoshare: configuration error: S3 bucket 'photos' at")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_r2_is_s3_at_the_given_endpoint_with_region_auto(s3_config):
    r2 = S3Storage.from_config(s3_config | {"STORAGE_BACKEND": "r2"}, "r2")
    r2.check()
    assert r2.client.meta.region_name == "auto"
    assert r2.presigned_url("a.jpg", expires_in=60).startswith(f"{s3_config['S3_ENDPOINT_URL']}/{r2.bucket}/a.jpg?")


# A store that goes away while the app runs.


@pytest.fixture
def doomed_server():
    """A moto server of the test's own, to be stopped half-way."""
    server = MotoServer()
    server.client().create_bucket(Bucket="photos")
    yield server
    server.stop()


def test_store_unreachable_mid_request_raises_storage_error(doomed_server):
    store = S3Storage("photos", endpoint_url=doomed_server.url, access_key="k", secret_key="s", max_attempts=1,
                      connect_timeout=1)
    store.save("originals/a.bin", io.BytesIO(DATA))
    handle = store.open("originals/a.bin")
    assert handle.read(10) == DATA[:10]
    doomed_server.stop()
    handle.seek(290_000)  # outside what was buffered: the next read must ask the store again
    with pytest.raises(StorageError):
        handle.read(100)
    handle.close()
    for attempt in (lambda: store.exists("originals/a.bin"), lambda: store.open("originals/a.bin"),
                    lambda: store.save("originals/b.bin", io.BytesIO(b"x")), lambda: store.delete("originals/a.bin")):
        with pytest.raises(StorageError):
            attempt()


def test_app_answers_503_and_keeps_nothing_half_done_when_the_store_fails(instance, doomed_server):
    config = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "photos", "S3_ENDPOINT_URL": doomed_server.url, **S3_TEST_KEYS}
    app = create_app(base_config(instance) | config)
    app.add_url_rule("/api/share/probe", "probe_api", lambda: str(get_storage().exists("originals/a.jpg")))
    app.add_url_rule("/probe", "probe_page", lambda: str(get_storage().exists("originals/a.jpg")))
    with app.app_context():
        db.create_all()
        album = albums.create_album(create_user("o@example.com", "long enough password"), "Trip")
        doomed_server.stop()
        with pytest.raises(StorageError):
            albums.add_photo(album, "a.jpg", io.BytesIO(make_jpeg()))
        db.session.rollback()
        assert db.session.query(Photo).count() == 0
        assert album.version == albums.EMPTY_VERSION
    client = app.test_client()
    api = client.get("/api/share/probe")
    assert api.status_code == 503
    assert api.json["error"] == "storage_unavailable"
    assert api.headers["Retry-After"] == "30"
    page = client.get("/probe", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert "try again" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)


# The app on S3, and moving an existing deployment there.


def test_app_on_s3_puts_uploaded_photos_and_thumbnails_in_the_bucket(s3_app, s3_server):
    data = make_jpeg(200, 150, noise=1)
    with s3_app.app_context():
        album = albums.create_album(create_user("o@example.com", "long enough password"), "Trip")
        photo = albums.add_photo(album, "beach.jpg", io.BytesIO(data))
        original_key, thumb_key = albums.photo_key(photo), albums.thumbnail_key(photo)
        bucket = s3_app.config["S3_BUCKET"]
        client = s3_server.client()
        assert client.get_object(Bucket=bucket, Key=original_key)["Body"].read() == data
        client.delete_object(Bucket=bucket, Key=thumb_key)
        assert albums.ensure_thumbnail(photo) == thumb_key  # remade by Pillow reading the original from S3
        with Image.open(io.BytesIO(client.get_object(Bucket=bucket, Key=thumb_key)["Body"].read())) as thumb:
            assert max(thumb.size) <= s3_app.config["THUMBNAIL_SIZE"]
    assert not [p for p in Path(s3_app.config["UPLOAD_DIR"]).rglob("*") if p.is_file()]


@pytest.fixture
def local_app_with_bucket(instance, database_config, s3_config):
    """A deployment still on local disk, with the bucket it is moving to configured."""
    app = create_app(base_config(instance) | database_config | s3_config | {"STORAGE_BACKEND": "local"})
    with app.app_context():
        db.create_all()
        album = albums.create_album(create_user("o@example.com", "long enough password"), "Trip")
        for i in range(3):
            albums.add_photo(album, f"IMG_{i}.jpg", io.BytesIO(make_jpeg(color=(i * 80, 0, 0))), commit=False)
        albums.refresh_version(album)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def bucket_digests(client, bucket: str) -> dict[str, str]:
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: hashlib.sha256(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()).hexdigest()
        for item in listing
    }


def test_migration_copies_every_file_verified_and_a_second_run_copies_nothing(local_app_with_bucket, s3_server):
    app, runner = local_app_with_bucket, local_app_with_bucket.test_cli_runner()
    root, bucket, client = Path(app.config["UPLOAD_DIR"]), app.config["S3_BUCKET"], s3_server.client()
    local = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in root.rglob("*") if p.is_file()}
    assert len(local) == 12 and {key.split("/")[0] for key in local} == {"large", "originals", "thumbs", "views"}

    first = runner.invoke(args=["storage-migrate", "--to", "s3"])
    assert first.exit_code == 0, first.output
    assert "[12/12]" in first.output and "done: 12 copied, 0 already present, 0 failed" in first.output
    assert bucket_digests(client, bucket) == local

    second = runner.invoke(args=["storage-migrate", "--to", "s3"])
    assert second.exit_code == 0, second.output
    assert "done: 0 copied, 12 already present, 0 failed" in second.output

    damaged, lost = sorted(local)[:2]
    client.put_object(Bucket=bucket, Key=damaged, Body=b"not the photo")
    client.delete_object(Bucket=bucket, Key=lost)
    third = runner.invoke(args=["storage-migrate", "--to", "s3"])
    assert "done: 2 copied, 10 already present, 0 failed" in third.output
    assert bucket_digests(client, bucket) == local
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == set(local)


def test_migration_makes_older_photos_views_under_names_that_hide_the_original(local_app_with_bucket, s3_server):
    app, runner = local_app_with_bucket, local_app_with_bucket.test_cli_runner()
    root, bucket = Path(app.config["UPLOAD_DIR"]), app.config["S3_BUCKET"]
    with app.app_context():
        photos = db.session.execute(db.select(Photo).order_by(Photo.id)).scalars().all()
        for photo in photos:  # as photos were kept before: no view, the thumbnail named after the original
            old_thumb = albums.legacy_keys(photo)[0]
            (root / albums.thumbnail_key(photo)).rename(root / old_thumb)
            (root / albums.view_key(photo)).unlink()
        expected = sorted(key for photo in photos for key in (albums.photo_key(photo), albums.thumbnail_key(photo),
                                                              albums.view_key(photo), large_key(photo)))

    result = runner.invoke(args=["storage-migrate", "--to", "s3"])

    assert result.exit_code == 0, result.output
    assert "made the thumbnail and view of 3 older photos" in result.output
    assert sorted(bucket_digests(s3_server.client(), bucket)) == expected
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == expected
    originals = {PurePosixPath(key).stem for key in expected if key.startswith("originals/")}
    renditions = {PurePosixPath(key).stem for key in expected if not key.startswith("originals/")}
    assert len(originals) == len(renditions) == 3 and not originals & renditions  # nothing named after an original


def test_migration_to_an_unusable_store_fails_in_one_line(local_app_with_bucket):
    runner = local_app_with_bucket.test_cli_runner()
    local_app_with_bucket.config["S3_BUCKET"] = "no-such-bucket"
    result = runner.invoke(args=["storage-migrate", "--to", "s3"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "does not exist" in result.output


def test_documented_lifecycle_rule_is_accepted_by_s3_and_expires_prepared_zips(s3_config, s3_server):
    import json
    import re

    rule_file = (ROOT / "deploy" / "s3-lifecycle.json").read_text()
    documented = re.search(r"```json\n(\{\n  \"Rules\".*?)```", (ROOT / "deploy" / "cdn.md").read_text(), re.S)
    assert documented and json.loads(documented.group(1)) == json.loads(rule_file)
    client, bucket = s3_server.client(), s3_config["S3_BUCKET"]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=json.loads(rule_file))
    rules = {rule["ID"]: rule for rule in client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["photoshare-expire-prepared-zips"]["Filter"]["Prefix"] == "zips/"
    assert rules["photoshare-expire-prepared-zips"]["Expiration"]["Days"] == 2


@pytest.mark.parametrize("key", [
    "../secret.txt", "originals/../../secret.txt", "/etc/passwd", "originals//../../secret.txt", "..",
    "originals/x.jpg/../../../secret.txt",
])
def test_local_keys_that_would_leave_the_root_are_refused(tmp_path, key):
    """The fast pattern for the app's own keys lets nothing past that safe_join would refuse."""
    store = LocalStorage(tmp_path / "uploads")
    with pytest.raises(ValueError, match="unsafe storage key"):
        store.local_file(key)


def test_local_keys_the_app_makes_map_under_the_root(tmp_path):
    store = LocalStorage(tmp_path / "uploads")
    root = tmp_path / "uploads"
    for key in ("originals/0a1b.jpg", "web/IMG_1.large.jpg", "zips/album-1_2.zip", "x"):
        assert Path(store.local_file(key)) == root / key
        assert Path(store.local_file(key)).resolve().is_relative_to(root.resolve())
    assert Path(store.local_file("originals/.hidden")) == root / "originals/.hidden"  # safe_join's answer, as before


def test_local_files_checks_every_key_like_local_file(tmp_path):
    """The one-scan check of many keys gives local_file's answers, and refuses what it refuses."""
    store = LocalStorage(tmp_path / "uploads")
    plain = [f"originals/{index:032x}.jpg" for index in range(50)] + ["web/a.large.jpg"]
    assert store.local_files(plain) == [store.local_file(key) for key in plain]
    odd = ["originals/a.jpg", "originals/.hidden", "originals/x\ny.jpg"]  # not plain: each through safe_join
    assert store.local_files(odd) == [store.local_file(key) for key in odd]
    for bad in ("../secret.txt", "originals/a.jpg\n/../../../secret.txt", "/etc/passwd"):
        with pytest.raises(ValueError, match="unsafe storage key"):
            store.local_files(["originals/a.jpg", bad])
