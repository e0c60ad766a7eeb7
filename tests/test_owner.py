"""Owner pages: albums and photos (create, rename, delete, thumbnails), ownership, CSRF."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import Album, Photo, ShareLink
from tests.conftest import csrf_token, login, make_jpeg

OTHER_EMAIL = "other@example.com"


@pytest.fixture
def owner_client(client, owner):
    assert login(client).status_code == 302
    return client


@pytest.fixture
def other_album(app, make_album, make_share):
    """An album (with a photo and a link) that belongs to someone else: (album_id, photo_id, share_id)."""
    with app.app_context():
        other_id = create_user(OTHER_EMAIL, "another password").id
    album_id = make_album(count=1, title="Not yours", owner_id=other_id)
    make_share(album_id)
    with app.app_context():
        album = db.session.get(Album, album_id)
        return album_id, album.photos[0].id, album.share_links[0].id


def token(client, path: str = "/albums") -> str:
    return csrf_token(client.get(path).get_data(as_text=True))


def load_album(app, album_id: int) -> Album | None:
    with app.app_context():
        album = db.session.get(Album, album_id)
        if album is not None:
            album.photos
            db.session.expunge(album)
        return album


# ---- albums ---------------------------------------------------------------------------------------------


def test_empty_album_list_invites_to_create_one(owner_client):
    html = owner_client.get("/albums").get_data(as_text=True)
    assert "You have no albums yet" in html
    assert 'name="title"' in html and csrf_token(html)


def test_album_list_shows_covers_counts_and_sizes_of_own_albums_only(app, owner_client, make_album, other_album):
    album_id = make_album(count=3, title="Wedding")
    make_album(files={}, title="Still empty")
    html = owner_client.get("/albums").get_data(as_text=True)
    assert "Wedding" in html and "Still empty" in html and "Not yours" not in html
    assert "3 photos" in html and "0 photos" in html
    first_photo = load_album(app, album_id).photos[0]
    assert f'src="/albums/{album_id}/photos/{first_photo.id}/thumbnail"' in html
    assert "No photos yet" in html
    assert re.search(r'<img [^>]*alt="[^"]+"', html)


def test_create_album_then_land_on_it(app, owner_client):
    response = owner_client.post("/albums", data={"title": "  Anna &  Tom  ", "csrf_token": token(owner_client)})
    assert response.status_code == 302
    album_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert load_album(app, album_id).title == "Anna & Tom"
    html = owner_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Anna &amp; Tom" in html and "created" in html


def test_album_without_title_is_refused_with_a_message(app, owner_client):
    response = owner_client.post("/albums", data={"title": "   ", "csrf_token": token(owner_client)})
    assert response.status_code == 400
    assert "Give the album a title." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Album).count() == 0


def test_rename_album(app, owner_client, make_album):
    album_id = make_album(count=1)
    response = owner_client.post(f"/albums/{album_id}/rename", data={"title": "Renamed", "csrf_token": token(owner_client)})
    assert response.status_code == 302
    assert load_album(app, album_id).title == "Renamed"


def test_delete_album_asks_first_then_removes_photos_files_and_links(app, owner_client, make_album, make_share):
    album_id = make_album(count=2)
    make_share(album_id)
    originals = list(Path(app.config["UPLOAD_DIR"]).rglob("*.jpg"))
    assert originals
    confirm = owner_client.get(f"/albums/{album_id}/delete")
    assert confirm.status_code == 200 and "2 photos" in confirm.get_data(as_text=True)
    assert load_album(app, album_id) is not None  # looking at the question deletes nothing
    response = owner_client.post(f"/albums/{album_id}/delete", data={"csrf_token": token(owner_client)})
    assert response.status_code == 302 and response.headers["Location"] == "/albums"
    assert load_album(app, album_id) is None
    with app.app_context():
        assert db.session.query(Photo).count() == 0 and db.session.query(ShareLink).count() == 0
    assert not any(path.exists() for path in originals)


def test_album_page_lists_photos_with_sized_lazy_thumbnails(app, owner_client, make_album):
    album_id = make_album(files={"wide.jpg": make_jpeg(64, 48), "tall.jpg": make_jpeg(48, 64)})
    html = owner_client.get(f"/albums/{album_id}").get_data(as_text=True)
    assert re.search(r'<img [^>]*alt="wide.jpg"[^>]*loading="lazy"[^>]*width="64" height="48"', html)
    assert re.search(r'<img [^>]*alt="tall.jpg"[^>]*loading="lazy"[^>]*width="48" height="64"', html)
    assert "2 photos" in html


def test_big_album_page_shows_one_page_of_photos_at_a_time(app, owner_client, make_album, monkeypatch):
    monkeypatch.setattr("photoshare.owner.album_views.PHOTOS_PER_PAGE", 2)
    album_id = make_album(count=5)
    first = owner_client.get(f"/albums/{album_id}").get_data(as_text=True)
    last = owner_client.get(f"/albums/{album_id}?page=3").get_data(as_text=True)
    assert first.count('class="owner-photo"') == 2 and "Page 1 of 3" in first
    assert last.count('class="owner-photo"') == 1 and 'rel="prev"' in last and 'rel="next"' not in last
    beyond = owner_client.get(f"/albums/{album_id}?page=99").get_data(as_text=True)
    assert "Page 3 of 3" in beyond


# ---- photos ---------------------------------------------------------------------------------------------


def test_rename_photo_changes_the_album_version(app, owner_client, make_album):
    album_id = make_album(count=2)
    before = load_album(app, album_id)
    photo = before.photos[0]
    response = owner_client.post(
        f"/albums/{album_id}/photos/{photo.id}/rename?page=1",
        data={"filename": "../Ceremony: first kiss.jpg", "csrf_token": token(owner_client)},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(f"#photo-{photo.id}")
    after = load_album(app, album_id)
    assert after.photos[0].original_filename == "Ceremony: first kiss.jpg"  # no folders; the colon is the owner's
    assert after.version != before.version


def test_delete_photo_removes_it_and_changes_the_album_version(app, owner_client, make_album):
    album_id = make_album(count=2)
    before = load_album(app, album_id)
    doomed = before.photos[0]
    response = owner_client.post(
        f"/albums/{album_id}/photos/{doomed.id}/delete", data={"csrf_token": token(owner_client)}
    )
    assert response.status_code == 302
    after = load_album(app, album_id)
    assert [p.id for p in after.photos] == [before.photos[1].id]
    assert after.version != before.version
    assert owner_client.get(f"/albums/{album_id}/photos/{doomed.id}/thumbnail").status_code == 404


def test_thumbnail_is_a_private_jpeg_and_is_remade_when_missing(app, owner_client, make_album):
    album_id = make_album(files={"turned.jpg": make_jpeg(64, 48, orientation=6)})
    photo = load_album(app, album_id).photos[0]
    url = f"/albums/{album_id}/photos/{photo.id}/thumbnail"
    response = owner_client.get(url)
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert "private" in response.headers["Cache-Control"] and "public" not in response.headers["Cache-Control"]
    assert Image.open(io.BytesIO(response.data)).size == (48, 64)
    assert owner_client.get(url, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    thumbs = list(Path(app.config["UPLOAD_DIR"]).rglob("thumbs/*.jpg"))
    assert thumbs
    for path in thumbs:
        path.unlink()
    again = owner_client.get(url)
    assert again.status_code == 200 and again.data == response.data


# ---- ownership ------------------------------------------------------------------------------------------


def owner_routes(album_id: int, photo_id: int, share_id: int) -> list[tuple[str, str, dict]]:
    return [
        ("GET", f"/albums/{album_id}", {}),
        ("GET", f"/albums/{album_id}/shares", {}),
        ("GET", f"/albums/{album_id}/delete", {}),
        ("GET", f"/albums/{album_id}/photos/{photo_id}/thumbnail", {}),
        ("POST", f"/albums/{album_id}/rename", {"title": "Mine now"}),
        ("POST", f"/albums/{album_id}/delete", {}),
        ("POST", f"/albums/{album_id}/photos", {"photos": (io.BytesIO(make_jpeg()), "x.jpg")}),
        ("POST", f"/albums/{album_id}/photos/{photo_id}/rename", {"filename": "mine.jpg"}),
        ("POST", f"/albums/{album_id}/photos/{photo_id}/delete", {}),
        ("POST", f"/albums/{album_id}/shares", {"password": ""}),
        ("POST", f"/albums/{album_id}/shares/{share_id}/revoke", {}),
    ]


def test_another_owners_album_is_404_on_every_route_and_stays_untouched(app, owner_client, other_album):
    album_id, photo_id, share_id = other_album
    before = load_album(app, album_id)
    csrf = token(owner_client)
    for method, path, data in owner_routes(album_id, photo_id, share_id):
        response = owner_client.open(path, method=method, data={**data, "csrf_token": csrf} if method == "POST" else None)
        assert response.status_code == 404, (method, path)
        assert "Not yours" not in response.get_data(as_text=True)
    after = load_album(app, album_id)
    assert (after.title, after.version, len(after.photos)) == (before.title, before.version, 1)
    with app.app_context():
        link = db.session.get(ShareLink, share_id)
        assert not link.revoked and db.session.query(ShareLink).count() == 1


def test_someone_elses_album_looks_exactly_like_an_unknown_one(owner_client, other_album):
    theirs = owner_client.get(f"/albums/{other_album[0]}")
    unknown = owner_client.get("/albums/999999")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.get_data() == unknown.get_data()


def test_own_album_with_another_albums_photo_or_link_is_404(owner_client, make_album, other_album):
    mine = make_album(count=1)
    _, their_photo, their_share = other_album
    csrf = token(owner_client)
    assert owner_client.get(f"/albums/{mine}/photos/{their_photo}/thumbnail").status_code == 404
    assert owner_client.post(f"/albums/{mine}/photos/{their_photo}/delete", data={"csrf_token": csrf}).status_code == 404
    assert owner_client.post(f"/albums/{mine}/shares/{their_share}/revoke", data={"csrf_token": csrf}).status_code == 404


# ---- CSRF -----------------------------------------------------------------------------------------------


def test_every_owner_form_needs_its_csrf_token(app, owner_client, make_album, make_share):
    album_id = make_album(count=1)
    make_share(album_id)
    with app.app_context():
        album = db.session.get(Album, album_id)
        photo_id, share_id = album.photos[0].id, album.share_links[0].id
    before = load_album(app, album_id)
    for method, path, data in owner_routes(album_id, photo_id, share_id):
        if method != "POST":
            continue
        response = owner_client.post(path, data=data)
        assert response.status_code == 400, path
        assert "reload the page" in response.get_data(as_text=True)
    assert owner_client.post("/albums", data={"title": "x"}).status_code == 400
    after = load_album(app, album_id)
    assert (after.title, after.version, len(after.photos)) == (before.title, before.version, 1)


def test_a_wrong_csrf_token_is_refused_like_a_missing_one(owner_client, make_album):
    album_id = make_album(count=1)
    response = owner_client.post(f"/albums/{album_id}/rename", data={"title": "x", "csrf_token": "forged"})
    assert response.status_code == 400
