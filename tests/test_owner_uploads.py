"""Uploading photos: per-file results (JSON for owner.js, flashes for the plain form), content checks,
size limits, and CSRF on the XHR path."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from photoshare import create_app
from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import Album
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, base_config, csrf_token, login, make_jpeg
from tests.test_images import png_header


def encode(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, fmt)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = make_jpeg(160, 120, noise=1)
    return data[: len(data) * 2 // 3]


@pytest.fixture
def album_id(make_album):
    return make_album(files={}, title="Uploads")


@pytest.fixture
def owner_client(client, owner):
    login(client)
    return client


def xhr_upload(client, album_id: int, files: list[tuple[bytes, str]], *, token: str | None = None):
    """What owner.js sends: multipart `photos`, Accept: application/json and the X-CSRFToken header."""
    token = token if token is not None else csrf_token(client.get(f"/albums/{album_id}").get_data(as_text=True))
    headers = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}
    if token:
        headers["X-CSRFToken"] = token
    return client.post(
        f"/albums/{album_id}/photos",
        data={"photos": [(io.BytesIO(data), name) for data, name in files]},
        headers=headers,
    )


def album_state(app, album_id: int) -> tuple[str, list[tuple[str, str, int, int]]]:
    with app.app_context():
        album = db.session.get(Album, album_id)
        return album.version, [(p.original_filename, p.content_type, p.width, p.height) for p in album.photos]


def stored_files(app) -> list[Path]:
    return sorted(p for p in Path(app.config["UPLOAD_DIR"]).rglob("*") if p.is_file())


def test_xhr_upload_answers_json_for_the_file_and_saves_it(app, owner_client, album_id):
    version_before, _ = album_state(app, album_id)
    response = xhr_upload(owner_client, album_id, [(make_jpeg(64, 48), "IMG_0001.JPG")])
    assert response.status_code == 200
    body = response.get_json()
    assert body["saved"] == 1
    [result] = body["files"]
    assert result["name"] == "IMG_0001.JPG" and result["ok"] is True and isinstance(result["photo_id"], int)
    assert "error" not in result
    version, photos = album_state(app, album_id)
    assert photos == [("IMG_0001.JPG", "image/jpeg", 64, 48)] and version != version_before
    assert body["version"] == version
    assert not any("IMG_0001" in path.name for path in stored_files(app))  # stored under an app-made name


def test_bad_files_get_their_own_errors_while_good_ones_are_saved(app, owner_client, album_id):
    files = [
        (make_jpeg(), "good.jpg"),
        (truncated_jpeg(), "cut-short.jpg"),
        (b"just some notes, not a photo\n", "notes.jpg"),
        (encode("PNG"), "drawing.png"),
        (encode("WEBP"), "phone.webp"),
        (encode("GIF"), "anim.gif"),
        (png_header(60000, 60000), "bomb.png"),
        (b"", "empty.jpg"),
    ]
    response = xhr_upload(owner_client, album_id, files)
    assert response.status_code == 200
    results = {r["name"]: r for r in response.get_json()["files"]}
    assert [name for name, r in results.items() if r["ok"]] == ["good.jpg", "drawing.png", "phone.webp", "anim.gif"]
    assert results["cut-short.jpg"]["error"] == "The image is damaged or incomplete."
    assert results["notes.jpg"]["error"] == "Not an image, or an image format we cannot read."
    assert results["bomb.png"]["error"] == (
        "The image is 60000 × 60000 pixels (3600 megapixels); the limit is 150 megapixels."
    )
    assert results["empty.jpg"]["error"] == "The file is empty."
    assert all("photo_id" not in r for r in results.values() if not r["ok"])
    _, photos = album_state(app, album_id)
    assert [(name, kind) for name, kind, _, _ in photos] == [
        ("good.jpg", "image/jpeg"), ("drawing.png", "image/png"), ("phone.webp", "image/webp"), ("anim.gif", "image/gif"),
    ]
    assert len([p for p in stored_files(app) if p.parent.name == "originals"]) == 4  # nothing left of the bad ones


def test_only_bad_files_still_answer_per_file_and_no_files_is_400(app, owner_client, album_id):
    response = xhr_upload(owner_client, album_id, [(b"GIF89a nonsense", "fake.gif")])
    assert response.status_code == 200
    assert response.get_json()["saved"] == 0 and response.get_json()["files"][0]["ok"] is False
    response = xhr_upload(owner_client, album_id, [])
    assert response.status_code == 400 and response.get_json()["error"] == "no_files"
    assert album_state(app, album_id)[1] == []


def test_dropped_files_upload_one_request_each_in_the_order_dropped(app, owner_client, album_id):
    # owner.js sends each dropped (or chosen) file in its own request, one after the other.
    token = csrf_token(owner_client.get(f"/albums/{album_id}").get_data(as_text=True))
    names = ["c.jpg", "a.jpg", "broken.jpg", "b.jpg"]
    answers = []
    for name in names:
        data = b"\xff\xd8\xff\xe0 broken" if name == "broken.jpg" else make_jpeg(color=(len(name) * 20, 10, 10))
        answers.append(xhr_upload(owner_client, album_id, [(data, name)], token=token))
    assert [a.get_json()["saved"] for a in answers] == [1, 1, 0, 1]
    assert [p[0] for p in album_state(app, album_id)[1]] == ["c.jpg", "a.jpg", "b.jpg"]


def test_plain_form_upload_without_javascript_flashes_each_result(app, owner_client, album_id):
    html = owner_client.get(f"/albums/{album_id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html and 'multiple' in html and 'name="photos"' in html
    response = owner_client.post(
        f"/albums/{album_id}/photos",
        data={"csrf_token": csrf_token(html), "photos": [
            (io.BytesIO(make_jpeg()), "one.jpg"),
            (io.BytesIO(b"<html>not a photo</html>"), "page.jpg"),
            (io.BytesIO(encode("PNG")), "two.png"),
        ]},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "2 photos uploaded." in page
    assert "page.jpg: Not an image, or an image format we cannot read." in page
    assert 'alt="one.jpg"' in page and 'alt="two.png"' in page


def test_plain_form_with_nothing_chosen_says_so(owner_client, album_id):
    html = owner_client.get(f"/albums/{album_id}").get_data(as_text=True)
    response = owner_client.post(
        f"/albums/{album_id}/photos",
        data={"csrf_token": csrf_token(html), "photos": (io.BytesIO(b""), "")},
        follow_redirects=True,
    )
    assert "Choose at least one photo to upload." in response.get_data(as_text=True)


def test_uploaded_file_names_are_kept_but_made_safe(app, owner_client, album_id):
    xhr_upload(owner_client, album_id, [(make_jpeg(), "../../etc/Sommer 2024 (1).jpg"), (make_jpeg(), ".hidden.jpg")])
    assert [p[0] for p in album_state(app, album_id)[1]] == ["Sommer 2024 (1).jpg", ".hidden.jpg"]


def test_xhr_upload_without_csrf_header_is_refused_with_json(app, owner_client, album_id):
    response = xhr_upload(owner_client, album_id, [(make_jpeg(), "a.jpg")], token="")
    assert response.status_code == 400
    assert "reload the page" in response.get_json()["message"]
    assert album_state(app, album_id)[1] == []


def test_upload_after_the_session_ended_gets_a_json_message_for_the_script(app, owner_client, album_id):
    token = csrf_token(owner_client.get(f"/albums/{album_id}").get_data(as_text=True))
    owner_client.post("/logout", data={"csrf_token": token})
    response = xhr_upload(owner_client, album_id, [(make_jpeg(), "a.jpg")], token=token)
    assert response.status_code == 400
    assert response.get_json()["message"] == "Your session form expired. Please reload the page and try again."
    assert album_state(app, album_id)[1] == []


@pytest.fixture
def small_app(tmp_path):
    """An app that accepts at most 1 MB per request."""
    instance = tmp_path / "small"
    instance.mkdir()
    app = create_app(base_config(instance) | {"MAX_UPLOAD_MB": 1})
    with app.app_context():
        db.create_all()
        user = create_user(OWNER_EMAIL, OWNER_PASSWORD)
        album = Album(owner=user, title="Small")
        db.session.add(album)
        db.session.commit()
        album_id = album.id
    yield app, album_id
    with app.app_context():
        db.engine.dispose()


def big_jpeg() -> bytes:
    out = io.BytesIO()  # random pixels barely compress: about 1.5 MB
    Image.frombytes("RGB", (800, 600), os.urandom(800 * 600 * 3)).save(out, "JPEG", quality=95, subsampling=0)
    data = out.getvalue()
    assert len(data) > 1024 * 1024
    return data


def test_request_over_the_size_limit_is_413_and_saves_nothing(small_app):
    app, album_id = small_app
    client = app.test_client()
    login(client)
    response = xhr_upload(client, album_id, [(big_jpeg(), "huge.jpg")])
    assert response.status_code == 413
    assert response.get_json()["message"] == "That upload is larger than this server accepts."
    assert album_state(app, album_id)[1] == []
    html = client.get(f"/albums/{album_id}").get_data(as_text=True)
    assert f'data-max-bytes="{1024 * 1024}"' in html and "up to 1 MB each" in html  # owner.js checks before sending


def test_plain_form_over_the_size_limit_gets_a_413_page_in_the_sites_look(small_app):
    app, album_id = small_app
    client = app.test_client()
    login(client)
    token = csrf_token(client.get(f"/albums/{album_id}").get_data(as_text=True))
    response = client.post(
        f"/albums/{album_id}/photos", data={"csrf_token": token, "photos": [(io.BytesIO(big_jpeg()), "huge.jpg")]}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 413 and "text/html" in response.content_type
    assert "Upload too large" in html and "larger than this server accepts" in html and "/static/css/app.css" in html
    assert "RequestEntityTooLarge" not in html and album_state(app, album_id)[1] == []


def test_too_large_file_in_an_accepted_request_gets_its_own_error(small_app):
    app, album_id = small_app
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024  # a proxy-sized request limit above the per-file one
    client = app.test_client()
    login(client)
    response = xhr_upload(client, album_id, [(big_jpeg(), "huge.jpg"), (make_jpeg(), "small.jpg")])
    results = response.get_json()["files"]
    assert results[0] == {"name": "huge.jpg", "ok": False, "error": "Larger than the 1 MB limit."}
    assert results[1]["ok"] is True
    assert [p[0] for p in album_state(app, album_id)[1]] == ["small.jpg"]


# ---- over real HTTP (gunicorn) --------------------------------------------------------------------------


def http_owner_session(server_url: str):
    import requests

    session = requests.Session()
    page = session.get(f"{server_url}/login", timeout=10).text
    session.post(
        f"{server_url}/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD, "csrf_token": csrf_token(page)},
        timeout=10,
    )
    return session


def test_owner_js_upload_over_real_http(app, owner, album_id, live_server):
    session = http_owner_session(live_server.url)
    token = csrf_token(session.get(f"{live_server.url}/albums/{album_id}", timeout=10).text)
    headers = {"Accept": "application/json", "X-CSRFToken": token}
    answers = [
        session.post(f"{live_server.url}/albums/{album_id}/photos", files={"photos": (name, data)}, headers=headers, timeout=30)
        for name, data in [("first.jpg", make_jpeg()), ("broken.jpg", truncated_jpeg()), ("second.png", encode("PNG"))]
    ]
    assert [a.json()["files"][0]["ok"] for a in answers] == [True, False, True]
    assert answers[1].json()["files"][0]["error"] == "The image is damaged or incomplete."
    assert [p[0] for p in album_state(app, album_id)[1]] == ["first.jpg", "second.png"]
    thumb = session.get(f"{live_server.url}/albums/{album_id}/photos/{answers[0].json()['files'][0]['photo_id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"


def test_too_large_request_over_real_http_is_a_413_json_answer(app, owner, album_id, instance):
    from tests.conftest import LiveServer

    server = LiveServer(instance, env={"MAX_UPLOAD_MB": "1"}, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        session = http_owner_session(server.url)
        token = csrf_token(session.get(f"{server.url}/albums/{album_id}", timeout=10).text)
        response = session.post(
            f"{server.url}/albums/{album_id}/photos", files={"photos": ("huge.jpg", big_jpeg())},
            headers={"Accept": "application/json", "X-CSRFToken": token}, timeout=30,
        )
        assert response.status_code == 413
        assert response.json()["message"] == "That upload is larger than this server accepts."
    finally:
        server.stop()
    assert album_state(app, album_id)[1] == []


def test_image_over_max_image_pixels_gets_its_own_error_over_real_http(app, owner, album_id, instance):
    from tests.conftest import LiveServer

    server = LiveServer(instance, env={"MAX_IMAGE_PIXELS": "1000000"}, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        session = http_owner_session(server.url)
        token = csrf_token(session.get(f"{server.url}/albums/{album_id}", timeout=10).text)
        files = [("photos", ("wide.png", encode("PNG", (1500, 800)))), ("photos", ("fine.jpg", make_jpeg(1000, 1000))),
                 ("photos", ("bomb.png", png_header(60000, 60000)))]
        response = session.post(f"{server.url}/albums/{album_id}/photos", files=files,
                                headers={"Accept": "application/json", "X-CSRFToken": token}, timeout=30)
    finally:
        server.stop()
    assert response.status_code == 200
    results = {r["name"]: r for r in response.json()["files"]}
    assert results["wide.png"]["error"] == "The image is 1500 × 800 pixels (1.2 megapixels); the limit is 1 megapixels."
    assert results["bomb.png"]["error"].startswith("The image is 60000 × 60000 pixels (3600 megapixels)")
    assert results["fine.jpg"]["ok"] is True
    assert [p[0] for p in album_state(app, album_id)[1]] == ["fine.jpg"]
    assert sorted(p.parent.name for p in stored_files(app)) == ["large", "originals", "thumbs", "views"]  # nothing else left
