"""Issue 10, items 3 and 4: what the bucket and the CDN let through without the app, and a store that hangs.

A hung store is a real moto server frozen with SIGSTOP (it still accepts connections, then never answers),
in front of a real gunicorn: the worst kind of outage, since nothing fails until a timeout does.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from photoshare import albums
from photoshare.delivery import bucket
from photoshare.extensions import db
from photoshare.models import Album, Photo
from photoshare.storage import get_storage
from tests.conftest import S3_TEST_KEYS, LiveServer, MotoServer, make_jpeg
from tests.test_s3_delivery import (
    CDN,
    PHOTO,
    add_album,
    add_share,
    embedded_jobs,  # noqa: F401 (autouse there and here: jobs in the app's pool)
    photo_ids,
    query_of,
    unlock,
)

HUNG_STORE_LIMIT = 15  # seconds: the bound for a 503 when the store hangs
FAST = 3  # seconds: a request that does not need the store, however loaded the machine


# Item 4: a store that hangs.


@pytest.fixture
def frozen_store() -> Iterator[MotoServer]:
    """A moto server of the test's own with a bucket "photos"; `os.kill(pid, SIGSTOP)` freezes it. Always thawed
    and stopped at the end, even when the test fails half-way."""
    server = MotoServer()
    server.client().create_bucket(Bucket="photos")
    yield server
    os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def timed(method: str, url: str, **kwargs: Any) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, allow_redirects=False, timeout=300, **kwargs)
    return response, time.monotonic() - started


def test_hung_store_gives_503_within_15_s_and_blocks_nothing_that_does_not_need_it(make_site, frozen_store, instance):
    settings = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "photos", "S3_ENDPOINT_URL": frozen_store.url, **S3_TEST_KEYS}
    site = make_site(settings)  # the deployment's own timeouts: nothing here shortens them
    album_id = add_album(site)
    token, photo = add_share(site, album_id), photo_ids(site, album_id)[0]
    server = LiveServer(instance, env={name: str(value) for name, value in settings.items()}, workers=1,
                        database_url=site.config["SQLALCHEMY_DATABASE_URI"])
    try:
        api = f"{server.url}/api/share/{token}"
        assert requests.get(api, timeout=30).status_code == 200  # the worker is up (its start-up check is done)
        os.kill(frozen_store.process.pid, signal.SIGSTOP)

        with ThreadPoolExecutor(max_workers=6) as pool:
            needs_store = {  # the app must read the bucket to answer these
                "thumbnail page": pool.submit(timed, "GET", f"{server.url}/s/{token}/thumb/{photo}",
                                              headers={"Accept": "text/html"}),
                "download-all JSON": pool.submit(timed, "GET", f"{api}/download-all"),
            }
            time.sleep(0.5)  # both are now waiting on the frozen store, holding two of the worker's threads
            gallery, gallery_took = timed("GET", f"{server.url}/s/{token}")
            album, album_took = timed("GET", api)
            download, download_took = timed("GET", f"{api}/download/{photo}")
            results = {name: future.result() for name, future in needs_store.items()}

        assert (gallery.status_code, album.status_code) == (200, 200)
        assert gallery_took < FAST and album_took < FAST, (gallery_took, album_took)
        # The database knows the original is there: the redirect is made without asking the store.
        assert download.status_code == 302 and download_took < FAST, (download.status_code, download_took)
        assert urlsplit(download.headers["Location"]).path == f"/photos/originals/{photo_stored_name(site, photo)}"
        page, page_took = results["thumbnail page"]
        assert page.status_code == 503 and page_took < HUNG_STORE_LIMIT, (page.status_code, page_took)
        assert "text/html" in page.headers["Content-Type"] and "try again" in page.text
        assert "Retry-After" in page.headers and "Traceback" not in page.text
        archive, archive_took = results["download-all JSON"]
        assert archive.status_code == 503 and archive_took < HUNG_STORE_LIMIT, (archive.status_code, archive_took)
        assert archive.json()["error"] == "storage_unavailable"

        # A gallery's worth of thumbnails at once, five times the worker's threads: the store is known not to
        # answer now, so each fails at once instead of holding a thread for a whole timeout, and the gallery
        # page still gets a thread.
        with ThreadPoolExecutor(max_workers=21) as pool:
            started = time.monotonic()
            thumbs = [pool.submit(timed, "GET", f"{server.url}/s/{token}/thumb/{photo}") for _ in range(20)]
            time.sleep(0.2)
            gallery, gallery_took = timed("GET", f"{server.url}/s/{token}")
            wave = [future.result() for future in thumbs]
            wave_took = time.monotonic() - started
        assert [response.status_code for response, _ in wave] == [503] * 20
        assert wave_took < FAST and gallery.status_code == 200 and gallery_took < FAST, (wave_took, gallery_took)
    finally:
        server.stop()


def photo_stored_name(app, photo_id: int) -> str:
    with app.app_context():
        return db.session.get(Photo, photo_id).stored_name


def test_store_timeouts_and_attempts_come_from_the_settings(frozen_store):
    from photoshare.storage import StorageError
    from photoshare.storage.s3 import S3Storage

    settings = {"S3_BUCKET": "photos", "S3_ENDPOINT_URL": frozen_store.url, **S3_TEST_KEYS, "S3_CONNECT_TIMEOUT": 1,
                "S3_READ_TIMEOUT": 1}
    once, thrice = (S3Storage.from_config(settings | {"S3_MAX_ATTEMPTS": n}) for n in (1, 3))
    os.kill(frozen_store.process.pid, signal.SIGSTOP)
    took = {}
    for name, store in (("once", once), ("thrice", thrice)):
        started = time.monotonic()
        with pytest.raises(StorageError):
            store.exists("originals/a.jpg")
        took[name] = time.monotonic() - started
    assert 1 <= took["once"] < 2.5, took  # one try of one second of silence
    assert 3 <= took["thrice"] < 3 + 2 + 4, took  # three, with standard backoff (at most 1 s, then 2 s) between


def test_after_a_timeout_the_store_is_not_asked_again_until_the_cool_down_ends(frozen_store):
    from photoshare.storage import StorageError
    from photoshare.storage.s3 import S3Storage

    store = S3Storage("photos", endpoint_url=frozen_store.url, access_key="k", secret_key="s", read_timeout=1,
                      max_attempts=1, cool_down=3)
    store.save("thumbs/a.jpg", io.BytesIO(b"jpeg"))
    os.kill(frozen_store.process.pid, signal.SIGSTOP)
    took = []
    for _ in range(3):  # a timeout, then two refusals without a request
        started = time.monotonic()
        with pytest.raises(StorageError) as caught:
            store.exists("thumbs/a.jpg")
        took.append(time.monotonic() - started)
    assert took[0] >= 1 and max(took[1:]) < 0.1, took
    assert "not asking it again" in str(caught.value)
    os.kill(frozen_store.process.pid, signal.SIGCONT)
    time.sleep(3)  # the cool-down is over: the store, answering again, is asked again
    assert store.exists("thumbs/a.jpg") and not store.exists("thumbs/b.jpg")  # a 404 is an answer, not an outage
    assert store.exists("thumbs/a.jpg")


# Item 3: nothing in the bucket or on the CDN outlives the share's checks.


def bucket_objects(app) -> dict[str, dict[str, Any]]:
    """Every object in the app's bucket with its Cache-Control and ACL grants, as the store itself reports."""
    with app.app_context():
        client, name = get_storage().client, app.config["S3_BUCKET"]
        keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=name)
                for item in page.get("Contents", [])]
        return {key: {"cache": client.head_object(Bucket=name, Key=key).get("CacheControl", ""),
                      "grantees": [grant["Grantee"].get("URI", grant["Grantee"].get("ID"))
                                   for grant in client.get_object_acl(Bucket=name, Key=key)["Grants"]]}
                for key in keys}


def test_bucket_holds_no_public_original_zip_or_password_share_image(make_site, s3_config, tmp_path):
    app = make_site(s3_config | {"CDN_ENABLED": True, "CDN_BASE_URL": CDN})
    locked_album, open_album = add_album(app, title="Locked"), add_album(app, {"sea.jpg": make_jpeg(noise=1)})
    locked, opened = add_share(app, locked_album, password="open sesame"), add_share(app, open_album)
    client = app.test_client()
    unlock(client, locked, "open sesame")
    for token, album_id in ((locked, locked_album), (opened, open_album)):
        assert client.get(f"/s/{token}/view/{photo_ids(app, album_id)[0]}").status_code in (200, 302)  # views/ made
    archive = tmp_path / "album.zip"
    archive.write_bytes(client.get(f"/api/share/{locked}/download-all").data)
    with app.app_context():
        bucket.upload(locked_album, db.session.get(Album, locked_album).version, archive, keep_alive=lambda: None)

    listed = bucket_objects(app)
    assert {key.split("/")[0] for key in listed} == {"large", "originals", "thumbs", "views", "zips"}
    for key, found in listed.items():
        assert found["cache"].startswith("private") and "public" not in found["cache"], (key, found)
        assert not any("AllUsers" in str(who) or "AuthenticatedUsers" in str(who) for who in found["grantees"])
    originals = [found["cache"] for key, found in listed.items() if key.startswith("originals/")]
    assert originals == ["private, max-age=31536000, immutable"] * 2  # a browser may keep it; no shared cache
    assert next(found["cache"] for key, found in listed.items() if key.startswith("zips/")) == "private, no-cache"


def test_password_share_images_never_get_a_cdn_address_and_originals_only_expiring_urls(make_site, s3_config):
    app = make_site(s3_config | {"CDN_ENABLED": True, "CDN_BASE_URL": CDN, "SIGNED_URL_TTL_SECONDS": 600})
    album_id = add_album(app)
    photo = photo_ids(app, album_id)[0]
    locked, opened = add_share(app, album_id, password="open sesame"), add_share(app, album_id)
    client = app.test_client()
    unlock(client, locked, "open sesame")

    html = client.get(f"/s/{locked}").get_data(as_text=True)
    assert f'<img src="/s/{locked}/thumb/{photo}"' in html and CDN not in html
    for route in (f"/s/{locked}/thumb/{photo}", f"/s/{locked}/view/{photo}"):  # sent by the app, after the password
        image = client.get(route)
        assert image.status_code == 200 and image.mimetype == "image/jpeg" and "Location" not in image.headers
        assert image.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert app.test_client().get(f"/s/{locked}/thumb/{photo}").status_code == 401

    assert f'<img src="{CDN}/thumbs/' in client.get(f"/s/{opened}").get_data(as_text=True)  # an open share may
    for token in (locked, opened):  # without a signing key an original is reached by presigned URL only
        location = client.get(f"/api/share/{token}/download/{photo}").headers["Location"]
        assert location.startswith(f"{s3_config['S3_ENDPOINT_URL']}/{s3_config['S3_BUCKET']}/originals/")
        assert query_of(location)["X-Amz-Expires"] == "600" and CDN not in location


@pytest.fixture
def signing_key(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "cdn-key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key, path


def verify_cloudfront_signature(url: str, public_key: rsa.RSAPublicKey) -> int:
    """What CloudFront checks on a canned-policy URL: the signature over the policy for exactly this URL
    (without its three signing parameters) and its expiry. Returns the expiry; raises InvalidSignature."""
    head, _, signing = url.rpartition("Expires=")  # CloudFront's three parameters come last
    unsigned, fields = head[:-1], query_of("?Expires=" + signing)  # without the "?" or "&" before them
    expires = int(fields["Expires"])
    policy = json.dumps({"Statement": [{"Resource": unsigned, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
                        separators=(",", ":"))
    signature = base64.b64decode(fields["Signature"].translate(str.maketrans("-_~", "+=/")))
    public_key.verify(signature, policy.encode(), padding.PKCS1v15(), hashes.SHA1())  # CloudFront's algorithm
    return expires


def test_with_a_signing_key_every_cdn_url_is_signed_and_expires(make_site, s3_config, signing_key):
    key, key_file = signing_key
    app = make_site(s3_config | {"CDN_ENABLED": True, "CDN_BASE_URL": CDN, "SIGNED_URL_TTL_SECONDS": 600,
                                 "CDN_SIGNING_KEY_ID": "K2JCJMDEHXQW5F", "CDN_SIGNING_KEY_FILE": str(key_file)})
    album_id = add_album(app, {"Été.jpg": PHOTO})
    photo = photo_ids(app, album_id)[0]
    token = add_share(app, album_id)
    client = app.test_client()
    with app.app_context():
        stored = db.session.get(Photo, photo)
        original, thumb = albums.photo_key(stored), albums.thumbnail_key(stored)

    download = client.get(f"/api/share/{token}/download/{photo}")
    location = download.headers["Location"]
    assert download.status_code == 302 and download.headers["Cache-Control"] == "private, no-store"
    assert location.startswith(f"{CDN}/{original}?download=%C3%89t%C3%A9.jpg&Expires=")
    assert query_of(location)["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    expires = verify_cloudfront_signature(location, key.public_key())
    assert time.time() + 595 <= expires <= time.time() + 601
    with pytest.raises(InvalidSignature):  # another filename, or a later expiry, is another URL: refused
        verify_cloudfront_signature(location.replace("download=%C3%89t%C3%A9", "download=x"), key.public_key())
    with pytest.raises(InvalidSignature):
        verify_cloudfront_signature(location.replace(f"Expires={expires}", f"Expires={expires + 3600}"), key.public_key())

    pages = [client.get(f"/s/{token}").get_data(as_text=True) for _ in range(2)]
    sources = [page.split('<img src="', 1)[1].split('"', 1)[0].replace("&amp;", "&") for page in pages]
    assert sources[0] == sources[1] and sources[0].startswith(f"{CDN}/{thumb}?Expires=")  # one URL, cacheable
    thumb_expires = verify_cloudfront_signature(sources[0], key.public_key())
    assert time.time() + 600 - 5 <= thumb_expires <= time.time() + 1200


@pytest.mark.parametrize(("settings", "match"), [
    ({"CDN_SIGNING_KEY_ID": "K1"}, "go together"),
    ({"CDN_SIGNING_KEY_ID": "K1", "CDN_SIGNING_KEY_FILE": "/nonexistent/key.pem"}, "cannot be read"),
    ({"CDN_SIGNING_KEY_ID": "K1", "CDN_SIGNING_KEY_FILE": __file__}, "not an unencrypted PEM"),
])
def test_a_bad_signing_key_stops_start_up_in_one_line(s3_config, settings, match):
    from photoshare.config import ConfigError
    from photoshare.storage.s3 import S3Storage

    with pytest.raises(ConfigError, match=match) as caught:
        S3Storage.from_config(s3_config | {"CDN_ENABLED": True, "CDN_BASE_URL": CDN} | settings)
    assert "\n" not in str(caught.value)
