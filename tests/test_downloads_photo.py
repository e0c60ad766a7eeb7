"""One photo: `GET|HEAD /api/share/<token>/download/<id>`, the share rules, and sendfile.serve_file itself."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import http_date
from werkzeug.test import EnvironBuilder

from photoshare import activity, albums, names
from photoshare.access import revoke_share_link
from photoshare.delivery import ranges, sendfile
from photoshare.extensions import db
from photoshare.models import Album, Photo, ShareLink, utcnow
from photoshare.storage import get_storage
from tests.conftest import csrf_token, make_jpeg

PASSWORD = "green apples 7"
BIG = make_jpeg(400, 300, noise=1)  # a few KB of real JPEG, distinct bytes everywhere


def photo_rows(app, album_id: int) -> list[Photo]:
    with app.app_context():
        photos = db.session.get(Album, album_id).photos
        db.session.expunge_all()
        return photos


def download_count(app, token: str) -> int:
    activity.flush(app)  # counters are added by the activity writer, off the request path
    with app.app_context():
        return db.session.execute(db.select(ShareLink.download_count).where(ShareLink.token == token)).scalar_one()


def started_count(app, token: str) -> int:
    activity.flush(app)
    with app.app_context():
        column = ShareLink.download_started_count
        return db.session.execute(db.select(column).where(ShareLink.token == token)).scalar_one()


UNICODE_NAME = "Été à Zürich – 東京.jpg"


@pytest.fixture
def shared(app, make_album, make_share):
    """A share of a two-photo album: (token, first photo, its bytes); the second photo has a unicode name."""
    album_id = make_album(files={"IMG_0001.jpg": BIG, UNICODE_NAME: make_jpeg(noise=1)})
    token = make_share(album_id)
    return token, photo_rows(app, album_id)[0], BIG


def get(client, url: str, **kwargs):
    """A request whose body is read and closed, as a server does: close callbacks have run on return."""
    return client.get(url, buffered=True, **kwargs)


def url_of(token: str, photo: Photo) -> str:
    return f"/api/share/{token}/download/{photo.id}"


# ---- the file and its headers -----------------------------------------------------------------------------


def test_photo_download_is_the_original_with_name_type_etag_and_last_modified(client, shared):
    token, photo, data = shared
    response = get(client, url_of(token, photo))
    assert response.status_code == 200 and response.data == data
    assert response.headers["Content-Disposition"] == 'attachment; filename="IMG_0001.jpg"'
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["Last-Modified"] == http_date(photo.uploaded_at)
    assert response.headers["Content-Length"] == str(len(data))


def test_unicode_filename_gets_an_ascii_fallback_and_a_utf8_filename_star(app, client, shared):
    token, first, _ = shared
    photo = photo_rows(app, first.album_id)[1]
    assert photo.original_filename == UNICODE_NAME
    disposition = get(client, url_of(token, photo)).headers["Content-Disposition"]
    assert disposition == (
        'attachment; filename="Ete a Zurich _ _.jpg"; '
        "filename*=UTF-8''%C3%89t%C3%A9%20%C3%A0%20Z%C3%BCrich%20%E2%80%93%20%E6%9D%B1%E4%BA%AC.jpg"
    )


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("plain.jpg", 'attachment; filename="plain.jpg"'),
        ('say "cheese".jpg', "attachment; filename=\"say _cheese_.jpg\"; filename*=UTF-8''say%20%22cheese%22.jpg"),
        ("100%;x.jpg", "attachment; filename=\"100_x.jpg\"; filename*=UTF-8''100%25%3Bx.jpg"),
        ("東京.jpg", "attachment; filename=\"download.jpg\"; filename*=UTF-8''%E6%9D%B1%E4%BA%AC.jpg"),
        ('quote"and;semi 😀.jpg', "attachment; filename=\"quote_and_semi _.jpg\"; filename*=UTF-8''quote%22and%3Bsemi%20%F0%9F%98%80.jpg"),
        ("photo\u202egpj.exe", 'attachment; filename="photogpj.exe"'),  # never a bidi control, whoever calls
        ("../line\r\nbreak.jpg", "attachment; filename=\"line_break.jpg\"; filename*=UTF-8''line__break.jpg"),
    ],
)
def test_content_disposition_quotes_safely(name: str, header: str):
    assert names.content_disposition(name) == header


def test_head_gives_the_headers_and_no_body(client, shared):
    token, photo, data = shared
    response = client.head(url_of(token, photo), buffered=True)
    assert response.status_code == 200 and response.data == b""
    assert response.headers["Content-Length"] == str(len(data)) and response.headers["Accept-Ranges"] == "bytes"


# ---- ranges ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "start", "stop"),
    [("bytes=0-999", 0, 1000), ("bytes=1000-", 1000, None), ("bytes=-500", -500, None), ("bytes=10-10", 10, 11)],
)
def test_byte_ranges_give_206_with_content_range(client, shared, range_header, start, stop):
    token, photo, data = shared
    response = get(client, url_of(token, photo), headers={"Range": range_header})
    expected = data[start:stop]
    first = start % len(data)
    assert response.status_code == 206 and response.data == expected
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert response.headers["Content-Length"] == str(len(expected))


def test_suffix_longer_than_the_file_gives_the_whole_file_as_206(client, shared):
    token, photo, data = shared
    response = get(client, url_of(token, photo), headers={"Range": f"bytes=-{len(data) * 5}"})
    assert response.status_code == 206 and response.data == data
    assert response.headers["Content-Range"] == f"bytes 0-{len(data) - 1}/{len(data)}"


def test_range_past_the_end_is_clamped(client, shared):
    token, photo, data = shared
    response = get(client, url_of(token, photo), headers={"Range": "bytes=100-99999999"})
    assert response.status_code == 206 and response.data == data[100:]


@pytest.mark.parametrize("range_header", ["bytes=99999999-", "bytes=-0"])
def test_unsatisfiable_range_is_416_with_the_size(client, shared, range_header):
    token, photo, data = shared
    response = get(client, url_of(token, photo), headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"
    assert response.json["error"] == "range_not_satisfiable"


@pytest.mark.parametrize("range_header", ["bytes=abc", "bytes=5-2", "bytes=", "bytes=--5", "bytes=1-2-3"])
def test_malformed_range_is_416_never_500(client, shared, range_header):
    token, photo, data = shared
    response = get(client, url_of(token, photo), headers={"Range": range_header})
    assert response.status_code == 416 and response.headers["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("range_header", ["items=0-9", "pages=1", "nonsense", "0-99"])
def test_range_in_another_unit_is_ignored(client, shared, range_header):
    token, photo, data = shared
    response = get(client, url_of(token, photo), headers={"Range": range_header})
    assert response.status_code == 200 and response.data == data


@pytest.mark.parametrize("range_header", ["bytes=0-9,20-29", "bytes=0-9, -5", "bytes=0-0,0-0,0-0"])
def test_several_ranges_give_the_whole_file_never_416(client, shared, range_header):
    token, photo, data = shared
    response = get(client, url_of(token, photo), headers={"Range": range_header})
    assert response.status_code == 200 and response.data == data


def test_if_range_with_the_current_etag_gives_206_and_with_a_stale_one_the_whole_file(client, shared):
    token, photo, data = shared
    etag = get(client, url_of(token, photo)).headers["ETag"]
    current = get(client, url_of(token, photo), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert current.status_code == 206 and current.data == data[:10]
    for stale in ('"0123abcd"', f"W/{etag}"):
        response = get(client, url_of(token, photo), headers={"Range": "bytes=0-9", "If-Range": stale})
        assert response.status_code == 200 and response.data == data


def test_if_range_with_a_date_is_honoured(client, shared):
    token, photo, _data = shared
    last_modified = get(client, url_of(token, photo)).headers["Last-Modified"]
    response = get(client, url_of(token, photo), headers={"Range": "bytes=0-9", "If-Range": last_modified})
    assert response.status_code == 206
    older = http_date(photo.uploaded_at - timedelta(days=1))
    assert get(client, url_of(token, photo), headers={"Range": "bytes=0-9", "If-Range": older}).status_code == 200


def test_if_none_match_gives_304_even_with_a_range(client, shared):
    token, photo, _ = shared
    etag = get(client, url_of(token, photo)).headers["ETag"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": etag, "Range": "bytes=0-9"}):
        response = get(client, url_of(token, photo), headers=headers)
        assert response.status_code == 304 and response.data == b"" and response.headers["ETag"] == etag
    assert get(client, url_of(token, photo), headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_match_with_another_etag_is_412(client, shared):
    token, photo, _ = shared
    assert get(client, url_of(token, photo), headers={"If-Match": '"other"'}).status_code == 412


# ---- share rules -------------------------------------------------------------------------------------------


def test_photo_of_another_album_is_404_exactly_like_an_unknown_id(app, client, make_album, make_share, shared):
    token, _, _ = shared
    other_photo = photo_rows(app, make_album(count=1, title="Other"))[0]
    other = get(client, url_of(token, other_photo))
    unknown = get(client, f"/api/share/{token}/download/999999")
    assert other.status_code == unknown.status_code == 404
    assert other.json == unknown.json and other.json["error"] == "not_found"


def test_password_rules_apply_to_downloads(app, client, make_album, make_share):
    album_id = make_album(files={"a.jpg": BIG})
    token = make_share(album_id, password=PASSWORD)
    url = url_of(token, photo_rows(app, album_id)[0])
    assert get(client, url).status_code == 401
    wrong = get(client, url, headers={"X-Share-Password": "nope"})
    assert wrong.status_code == 403 and wrong.json["error"] == "wrong_password"
    assert get(client, f"{url}?password=nope").status_code == 403
    assert get(client, f"{url}?password={PASSWORD.replace(' ', '+')}").data == BIG
    assert get(client, url, headers={"X-Share-Password": PASSWORD}).data == BIG
    form = client.get(f"/s/{token}")
    client.post(f"/s/{token}", data={"password": PASSWORD, "csrf_token": csrf_token(form.get_data(as_text=True))})
    assert get(client, url).data == BIG  # the gallery's cookie opens the downloads too


def test_expired_or_revoked_links_are_410_and_downloads_off_is_403(app, client, make_album, make_share):
    album_id = make_album(files={"a.jpg": BIG})
    photo = photo_rows(app, album_id)[0]
    expired = make_share(album_id, expires_at=utcnow() - timedelta(minutes=1))
    assert get(client, url_of(expired, photo)).json["error"] == "expired"
    revoked = make_share(album_id)
    with app.app_context():
        revoke_share_link(db.session.execute(db.select(ShareLink).where(ShareLink.token == revoked)).scalar_one())
    assert get(client, url_of(revoked, photo)).status_code == 410
    closed = get(client, url_of(make_share(album_id, downloads_allowed=False), photo))
    assert closed.status_code == 403 and closed.json["error"] == "downloads_disabled"
    assert get(client, f"/api/share/nosuchtoken/download/{photo.id}").status_code == 404


def test_missing_file_on_disk_is_a_clear_json_error_not_a_trace(app, client, shared):
    token, photo, _ = shared
    with app.app_context():
        get_storage().delete(albums.photo_key(photo))
    response = get(client, url_of(token, photo))
    assert response.status_code == 500
    assert response.json["error"] == "photo_unavailable" and "Traceback" not in response.get_data(as_text=True)


# ---- counting ----------------------------------------------------------------------------------------------


def test_only_a_download_that_delivers_the_last_byte_counts(app, client, shared):
    token, photo, _data = shared
    url = url_of(token, photo)
    client.head(url, buffered=True)
    get(client, url, headers={"Range": "bytes=0-99"})
    get(client, url, headers={"If-None-Match": get(client, url, headers={"Range": "bytes=0-0"}).headers["ETag"]})
    assert download_count(app, token) == 0
    assert started_count(app, token) == 2  # the two GETs from byte 0; not the HEAD, not the 304
    get(client, url)
    assert (started_count(app, token), download_count(app, token)) == (3, 1)
    get(client, url, headers={"Range": "bytes=100-"})  # the rest of a resumed download: ends one, starts none
    assert (started_count(app, token), download_count(app, token)) == (3, 2)


def test_download_that_stops_early_does_not_count(app, client, shared):
    token, photo, data = shared
    response = client.get(url_of(token, photo))  # streamed: read one chunk, then hang up
    next(iter(response.response))
    response.close()
    # The server took the last chunk but the client left before it was written (the server never came
    # back for more): not a finished download either.
    response = client.get(url_of(token, photo))
    chunks, received = iter(response.response), 0
    while received < len(data):
        received += len(next(chunks))
    response.close()
    assert download_count(app, token) == 0 and started_count(app, token) == 2


# ---- serve_file on its own ---------------------------------------------------------------------------------


class CountingFile(io.FileIO):
    """A real file that remembers how many bytes were read from it."""

    bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_a_range_near_the_end_seeks_instead_of_reading_what_comes_before(tmp_path: Path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(8 * 1024 * 1024))
    source = CountingFile(path)
    environ = EnvironBuilder(headers={"Range": "bytes=8000000-"}).get_environ()
    closed: list[ranges.Delivery] = []
    response = sendfile.serve_file(
        source, environ=environ, download_name="big.bin", mimetype="application/octet-stream", etag="e1",
        last_modified=utcnow(), on_close=closed.append,
    )
    body = b"".join(response.response)
    response.response.close()
    assert body == path.read_bytes()[8_000_000:] and source.bytes_read == len(body)
    assert closed == [ranges.Delivery("GET", 206, 8_000_000, path.stat().st_size, path.stat().st_size, True)]


def test_chunks_are_at_most_64_kib_and_the_server_wrapper_is_used(tmp_path: Path):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(300_000))
    wrapped = []

    def file_wrapper(filelike, block_size):
        wrapped.append(block_size)
        return iter(lambda: filelike.read(block_size), b"")

    environ = EnvironBuilder().get_environ() | {"wsgi.file_wrapper": file_wrapper}
    response = sendfile.serve_file(
        path, environ=environ, download_name="f.bin", mimetype="application/octet-stream", etag="e",
        last_modified=utcnow(),
    )
    chunks = list(response.response)
    assert wrapped == [sendfile.CHUNK_SIZE] and max(map(len, chunks)) == sendfile.CHUNK_SIZE
    assert b"".join(chunks) == path.read_bytes()


def test_cleanup_runs_once_even_when_the_range_is_refused(tmp_path: Path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    closed: list[ranges.Delivery] = []
    environ = EnvironBuilder(headers={"Range": "bytes=500-"}).get_environ()
    with pytest.raises(RequestedRangeNotSatisfiable):
        sendfile.serve_file(
            path, environ=environ, download_name="f.bin", mimetype="text/plain", etag="e",
            last_modified=utcnow(), on_close=closed.append,
        )
    assert len(closed) == 1 and not closed[0].finished_file


@pytest.mark.parametrize(
    ("header", "normalised"),
    [
        ("bytes=0-999", "bytes=0-999"),
        ("Bytes = 0-999", "bytes=0-999"),
        ("bytes=007-", "bytes=7-"),
        ("bytes=-5000", "bytes=-1000"),
        ("bytes=-10", "bytes=-10"),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=x-1", "bytes=invalid"),
        ("bytes=9-1", "bytes=invalid"),
    ],
)
def test_range_header_is_put_right_before_werkzeug_reads_it(header: str, normalised: str | None):
    assert ranges.normalise_range(header, 1000) == normalised
