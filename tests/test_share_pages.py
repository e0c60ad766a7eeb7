"""The visitor's pages: gallery, paging, thumbnails and views, the password gate, and the error pages."""

from __future__ import annotations

import io
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import event

from photoshare import activity, albums, create_app
from photoshare.extensions import db
from photoshare.i18n import filesize as human_size
from photoshare.models import Album, Photo, ShareLink, utcnow
from photoshare.storage import get_storage
from tests.conftest import base_config, csrf_token, make_jpeg, running_app

PASSWORD = "blue tulips 42"


def html_of(response) -> str:
    return response.get_data(as_text=True)


def photos_of(app, album_id: int) -> list[Photo]:
    with app.app_context():
        photos = db.session.get(Album, album_id).photos
        db.session.expunge_all()
        return photos


def link_row(app, token: str) -> ShareLink:
    with app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        db.session.expunge(link)
        return link


def unlock(client, token: str, password: str, **kwargs: Any):
    """Submit the password form the way a browser does: fetch it (CSRF token), then post."""
    form = client.get(f"/s/{token}", **kwargs)
    return client.post(f"/s/{token}", data={"password": password, "csrf_token": csrf_token(html_of(form))}, **kwargs)


def grid_images(html: str) -> list[str]:
    return re.findall(r'<img src="/s/[^"]+/thumb/\d+"[^>]*>', html)


def set_cookie_headers(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


# ---- the gallery ----------------------------------------------------------------------------------------


def test_gallery_shows_title_count_total_size_and_every_download_link(app, client, make_album, make_share):
    files = {"beach.jpg": make_jpeg(80, 60, noise=1), "dunes.jpg": make_jpeg(60, 80, noise=1)}
    album_id = make_album(files=files, title="Anna & Tom, July")
    token = make_share(album_id)
    total = sum(len(data) for data in files.values())

    response = client.get(f"/s/{token}")

    html = html_of(response)
    assert response.status_code == 200
    assert "Anna &amp; Tom, July" in html
    assert "2 photos" in html and human_size(total) in html
    assert f"Download all <span class=\"button-detail\">(2 photos, {human_size(total)})</span>" in html
    assert f'href="/api/share/{token}/download-all"' in html
    for photo in photos_of(app, album_id):
        assert re.search(rf'<a class="tile-download" href="/api/share/{token}/download/{photo.id}" download', html)
        assert photo.original_filename in html


def test_download_all_of_a_large_album_leads_to_the_preparing_page(app, client, make_album, make_share):
    app.config["PREPARE_THRESHOLD"] = 2
    large, small = make_share(make_album(count=3)), make_share(make_album(count=2))

    assert re.search(rf'class="[^"]*download-all" href="/s/{large}/prepare"', html_of(client.get(f"/s/{large}")))
    assert re.search(rf'class="[^"]*download-all" href="/api/share/{small}/download-all"', html_of(client.get(f"/s/{small}")))


def test_with_local_storage_download_all_of_any_size_starts_at_once_by_default(app, client, make_album, make_share):
    """The archive streams while it is built (archive_stream.py): no preparing page however large the album,
    unless the owner sets a threshold (with a bucket the defaults stay 100 photos / 2 GB)."""
    assert (app.config["PREPARE_THRESHOLD"], app.config["PREPARE_THRESHOLD_MB"]) == (0, 0)
    album_id = make_album(count=1)
    with app.app_context():
        db.session.execute(db.insert(Photo), [
            {"album_id": album_id, "position": i, "original_filename": f"IMG_{i:05d}.jpg", "stored_name": f"big{i}.jpg",
             "size": 50_000_000, "sha256": "0" * 64, "crc32": 0, "content_type": "image/jpeg", "width": 1, "height": 1}
            for i in range(1, 150)
        ])
        db.session.commit()
    token = make_share(album_id)
    assert re.search(rf'class="[^"]*download-all" href="/api/share/{token}/download-all"', html_of(client.get(f"/s/{token}")))


def test_gallery_counts_each_view_but_not_its_images_or_pages_of_tiles(app, client, make_album, make_share):
    album_id = make_album(count=2)
    token = make_share(album_id)
    photo = photos_of(app, album_id)[0]

    client.get(f"/s/{token}")
    client.get(f"/s/{token}")
    client.get(f"/s/{token}/thumb/{photo.id}")
    client.get(f"/s/{token}/photos?page=1")

    activity.flush(app)  # views are counted off the request path, by the activity writer
    assert link_row(app, token).view_count == 2


def test_gallery_pages_and_load_more_fragment_continue_the_grid(app, client, make_album, make_share):
    app.config["GALLERY_PAGE_SIZE"] = 4
    token = make_share(make_album(count=10))

    first = html_of(client.get(f"/s/{token}"))
    fragment = client.get(f"/s/{token}/photos?page=2")
    last = client.get(f"/s/{token}/photos?page=3")

    assert len(grid_images(first)) == 4
    assert f'data-fragment-url="/s/{token}/photos"' in first and 'data-pages="3"' in first
    assert f'rel="next" data-pager-next href="/s/{token}?page=2"' in first  # works without JavaScript too
    assert fragment.status_code == 200 and fragment.mimetype == "text/html"
    assert "<html" not in html_of(fragment)
    assert re.findall(r'data-number="(\d+)"', html_of(fragment)) == ["5", "6", "7", "8"]
    assert re.findall(r'data-number="(\d+)"', html_of(last)) == ["9", "10"]
    assert client.get(f"/s/{token}/photos?page=4").status_code == 404
    page_three = html_of(client.get(f"/s/{token}?page=3"))
    assert len(grid_images(page_three)) == 2 and 'rel="prev"' in page_three and 'rel="next"' not in page_three


def test_five_thousand_photo_album_ships_one_page_of_images(app, client, make_album, make_share):
    album_id = make_album(count=1)
    with app.app_context():
        db.session.execute(
            db.insert(Photo),
            [
                {"album_id": album_id, "position": i, "original_filename": f"IMG_{i:05d}.jpg",
                 "stored_name": f"bulk{i:05d}.jpg", "size": 2_000_000, "sha256": "0" * 64, "crc32": 0,
                 "content_type": "image/jpeg", "width": 4000, "height": 3000}
                for i in range(1, 5000)
            ],
        )
        db.session.commit()
    token = make_share(album_id)

    html = html_of(client.get(f"/s/{token}"))

    assert "5,000 photos" in html
    assert len(grid_images(html)) == app.config["GALLERY_PAGE_SIZE"]
    assert "Photos 1–60 of 5,000" in html


def test_thumbnails_are_lazy_and_carry_their_real_width_and_height(app, client, make_album, make_share):
    token = make_share(make_album(files={"wide.jpg": make_jpeg(1000, 500), "small.jpg": make_jpeg(64, 48)}))
    html = html_of(client.get(f"/s/{token}"))

    images = grid_images(html)
    assert len(images) == 2
    for tag in images:
        assert 'loading="lazy"' in tag and 'alt="' in tag
        src = re.search(r'src="([^"]+)"', tag).group(1)
        width, height = (int(re.search(rf'{name}="(\d+)"', tag).group(1)) for name in ("width", "height"))
        with Image.open(io.BytesIO(client.get(src).data)) as thumb:
            assert thumb.size == (width, height)
    assert 'alt="wide.jpg" width="480" height="240"' in html


def test_thumbnail_has_strong_etag_long_immutable_cache_and_answers_304(app, client, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id)
    url = f"/s/{token}/thumb/{photos_of(app, album_id)[0].id}"

    response = client.get(url)
    again = client.get(url, headers={"If-None-Match": response.headers["ETag"]})

    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["ETag"].startswith('"') and not response.headers["ETag"].startswith("W/")
    cache = response.headers["Cache-Control"]
    assert "immutable" in cache and "max-age=31536000" in cache and "private" in cache
    assert "public" not in cache and "no-cache" not in cache
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == response.headers["ETag"] and "immutable" in again.headers["Cache-Control"]


def test_thumbnail_of_a_photo_whose_file_is_gone_is_404_not_500(app, client, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id)
    photo = photos_of(app, album_id)[0]
    with app.app_context():
        get_storage().delete(albums.thumbnail_key(photo))
        get_storage().delete(albums.photo_key(photo))

    assert client.get(f"/s/{token}/thumb/{photo.id}").status_code == 404


def test_thumbnail_or_view_of_another_albums_photo_is_404(app, client, make_album, make_share):
    mine, other = make_album(count=1), make_album(count=1, title="Someone else's")
    token = make_share(mine)
    foreign = photos_of(app, other)[0].id

    assert client.get(f"/s/{token}/thumb/{foreign}").status_code == 404
    assert client.get(f"/s/{token}/view/{foreign}").status_code == 404
    assert client.get(f"/s/{token}/thumb/999999").status_code == 404


def test_a_photo_request_reads_its_share_and_photo_in_one_query(app, client, make_album, make_share):
    """Thumbnails are most of a gallery's requests: each database round trip counts under load (bench/)."""
    album_id = make_album(count=2)
    token, photo = make_share(album_id), photos_of(app, album_id)[1]
    request_thread, selects = threading.current_thread(), []  # the test client runs the view in this thread

    def watch(_conn, _cursor, statement: str, *_args) -> None:
        if threading.current_thread() is request_thread and statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    with app.app_context():
        engine = db.engine
    for path in (f"/s/{token}/thumb/{photo.id}", f"/s/{token}/view/{photo.id}", f"/api/share/{token}/download/{photo.id}"):
        assert client.get(path, buffered=True).status_code == 200  # renditions made, caches warm
        event.listen(engine, "before_cursor_execute", watch)
        try:
            response = client.get(path, buffered=True)
        finally:
            event.remove(engine, "before_cursor_execute", watch)
        assert response.status_code == 200
        assert len(selects) == 1 and "share_links" in selects[0] and "photos" in selects[0], (path, selects)
        selects.clear()


def test_missing_thumbnail_is_made_again_from_the_original(app, client, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id)
    photo = photos_of(app, album_id)[0]
    with app.app_context():
        get_storage().delete(albums.thumbnail_key(photo))

    response = client.get(f"/s/{token}/thumb/{photo.id}")

    assert response.status_code == 200 and response.data[:2] == b"\xff\xd8"


def test_large_view_is_a_jpeg_of_view_size_with_exif_orientation_kept_in_storage(app, client, make_album, make_share):
    album_id = make_album(files={"big.jpg": make_jpeg(2000, 1000), "turned.jpg": make_jpeg(300, 200, orientation=6)})
    token = make_share(album_id)
    big, turned = photos_of(app, album_id)

    first = client.get(f"/s/{token}/view/{big.id}")
    second = client.get(f"/s/{token}/view/{big.id}")
    sideways = client.get(f"/s/{token}/view/{turned.id}")

    with Image.open(io.BytesIO(first.data)) as image:
        assert (image.format, image.size) == ("JPEG", (1600, 800))
    with Image.open(io.BytesIO(sideways.data)) as image:
        assert image.size == (200, 300)  # EXIF orientation 6: stored landscape, shown portrait
    assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
    with app.app_context():
        assert get_storage().exists(albums.view_key(big))
    html = html_of(client.get(f"/s/{token}"))
    assert f'href="/s/{token}/view/{big.id}"' in html and 'data-width="1600" data-height="800"' in html


def test_album_title_and_filenames_are_escaped(app, client, make_album, make_share):
    token = make_share(make_album(files={"<img src=x onerror=alert(1)>.jpg": make_jpeg()}, title="<script>alert(1)</script>"))
    html = html_of(client.get(f"/s/{token}"))

    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html


def test_empty_album_says_so_and_offers_no_download_all(app, client, make_album, make_share):
    token = make_share(make_album(count=0, title="Coming soon"))
    html = html_of(client.get(f"/s/{token}"))

    assert "No photos here yet" in html and "0 photos" in html
    assert "download-all" not in html


def test_expiry_is_shown_only_when_the_link_has_one(app, client, make_album, make_share):
    album_id = make_album(count=1)
    expiring = make_share(album_id, expires_at=utcnow() + timedelta(days=3, minutes=5))
    forever = make_share(album_id)

    html = html_of(client.get(f"/s/{expiring}"))

    assert "Link expires in 3 days" in html and re.search(r'<time datetime="\d{4}-\d\d-\d\dT[\d:]+Z"', html)
    assert "expires" not in html_of(client.get(f"/s/{forever}"))


def test_downloads_switched_off_means_no_download_buttons_anywhere(app, client, make_album, make_share):
    album_id = make_album(count=3)
    token = make_share(album_id, downloads_allowed=False)
    html = html_of(client.get(f"/s/{token}"))
    fragment = html_of(client.get(f"/s/{token}/photos?page=1"))

    assert "Downloads are turned off for this link" in html
    for text in (html, fragment):
        assert "/download" not in text and " download" not in text and "data-download" not in text
    assert len(grid_images(html)) == 3  # the photos themselves are still there to look at


def test_pages_load_nothing_from_other_sites_and_are_not_indexed(app, client, make_album, make_share):
    token = make_share(make_album(count=1))
    response = client.get(f"/s/{token}")
    html = html_of(response)

    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "no-cache" in response.headers["Cache-Control"]
    for asset in ("/static/css/app.css", "/static/js/gallery.js", "/static/img/favicon.svg"):
        assert f'"{asset}"' in html
        served = client.get(asset)
        assert served.status_code == 200 and b"http://" not in served.data.replace(b"http://www.w3.org", b"")


# ---- the password gate ----------------------------------------------------------------------------------


def test_protected_link_without_password_shows_the_form_with_401_and_nothing_of_the_album(
    app, client, make_album, make_share
):
    album_id = make_album(count=2, title="Private wedding")
    token = make_share(album_id, password=PASSWORD)

    response = client.get(f"/s/{token}")
    html = html_of(response)

    assert response.status_code == 401
    assert 'type="password"' in html and 'name="csrf_token"' in html and f'action="/s/{token}"' in html
    assert "Private wedding" not in html and "IMG_0000" not in html
    assert client.get(f"/s/{token}/thumb/{photos_of(app, album_id)[0].id}").status_code == 401
    assert client.get(f"/s/{token}/photos?page=1").status_code == 401


def test_wrong_password_gets_403_and_the_form_again_with_a_clear_message(app, client, make_album, make_share):
    token = make_share(make_album(count=1), password=PASSWORD)

    response = unlock(client, token, "not it")
    html = html_of(response)

    assert response.status_code == 403
    assert "That password is not correct." in html and 'aria-invalid="true"' in html and 'type="password"' in html
    assert not set_cookie_headers(response) or all("share_" not in c for c in set_cookie_headers(response))


def test_empty_password_post_shows_the_form_with_401(app, client, make_album, make_share):
    token = make_share(make_album(count=1), password=PASSWORD)

    response = unlock(client, token, "")

    assert response.status_code == 401 and "Please enter the password." in html_of(response)


def test_right_password_sets_a_signed_httponly_cookie_and_redirects_to_the_gallery(app, client, make_album, make_share):
    album_id = make_album(count=2, title="Private wedding")
    token = make_share(album_id, password=PASSWORD)
    link = link_row(app, token)

    response = unlock(client, token, PASSWORD)

    assert response.status_code == 303 and response.headers["Location"] == f"/s/{token}"
    cookie = next(c for c in set_cookie_headers(response) if c.startswith(f"share_{link.id}="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
    gallery = client.get(f"/s/{token}")
    assert gallery.status_code == 200 and "Private wedding" in html_of(gallery)
    assert client.get(f"/s/{token}/thumb/{photos_of(app, album_id)[0].id}").status_code == 200


def test_access_cookie_is_secure_when_the_request_is_https(app, client, make_album, make_share):
    token = make_share(make_album(count=1), password=PASSWORD)
    https = {"base_url": "https://photoshare.test", "headers": {"Referer": f"https://photoshare.test/s/{token}"}}

    response = unlock(client, token, PASSWORD, **https)

    assert response.status_code == 303
    assert any(c.startswith("share_") and "Secure" in c for c in set_cookie_headers(response))


def test_cookie_for_one_share_does_not_open_another(app, client, make_album, make_share):
    album_id = make_album(count=1)
    first, second = make_share(album_id, password=PASSWORD), make_share(album_id, password=PASSWORD)
    unlock(client, first, PASSWORD)
    first_cookie = client.get_cookie(f"share_{link_row(app, first).id}")

    assert client.get(f"/s/{first}").status_code == 200
    assert client.get(f"/s/{second}").status_code == 401
    # The same signed value under the other link's name is refused too: it names the first link's token.
    client.set_cookie(f"share_{link_row(app, second).id}", first_cookie.value)
    assert client.get(f"/s/{second}").status_code == 401


def test_password_in_the_query_or_the_header_opens_the_share(app, client, make_album, make_share):
    album_id = make_album(count=1, title="Private wedding")
    token = make_share(album_id, password=PASSWORD)
    photo_id = photos_of(app, album_id)[0].id

    by_query = app.test_client().get(f"/s/{token}", query_string={"password": PASSWORD})
    by_header = app.test_client().get(f"/s/{token}", headers={"X-Share-Password": PASSWORD})

    assert by_query.status_code == 303 and by_query.headers["Location"] == f"/s/{token}"  # password leaves the URL
    assert any(c.startswith("share_") for c in set_cookie_headers(by_query))
    assert by_header.status_code == 200 and "Private wedding" in html_of(by_header)
    assert client.get(f"/s/{token}/thumb/{photo_id}", query_string={"password": PASSWORD}).status_code == 200
    assert client.get(f"/s/{token}/thumb/{photo_id}", headers={"X-Share-Password": "wrong"}).status_code == 403
    assert client.get(f"/s/{token}", query_string={"password": "wrong"}).status_code == 403


@pytest.fixture
def limited_app(tmp_path: Path, database_config: dict[str, Any]):
    """An app that allows 3 wrong passwords a minute per client and link."""
    with running_app(base_config(tmp_path / "limited") | database_config | {"PASSWORD_RATE_LIMIT": "3 per minute"}) as app:
        yield app


def _limited_share(app, *, title: str = "Locked") -> str:
    from photoshare.access import create_share_link
    from photoshare.auth import create_user

    with app.app_context():
        from photoshare.models import User

        user = db.session.execute(db.select(User)).scalar_one_or_none() or create_user("o@example.com", "long enough")
        album = albums.create_album(user, title)
        albums.add_photo(album, "a.jpg", io.BytesIO(make_jpeg()))
        return create_share_link(album, password=PASSWORD).token


def test_too_many_wrong_passwords_get_a_friendly_429_page_for_that_link_only(limited_app):
    client = limited_app.test_client()
    token, other = _limited_share(limited_app), _limited_share(limited_app, title="Other")

    csrf = csrf_token(html_of(client.get(f"/s/{token}")))

    def attempt(password: str):
        return client.post(f"/s/{token}", data={"password": password, "csrf_token": csrf})

    wrong = [attempt(f"guess {i}").status_code for i in range(3)]
    blocked = attempt("guess 4")
    right_but_blocked = attempt(PASSWORD)

    assert wrong == [403, 403, 403]
    html = html_of(blocked)
    assert blocked.status_code == 429 and "Too many attempts" in html and "Try again" in html
    assert "Traceback" not in html and "RateLimitExceeded" not in html
    assert right_but_blocked.status_code == 429
    assert unlock(client, other, PASSWORD).status_code == 303  # another link keeps its own count


def test_right_passwords_and_browsing_do_not_use_up_attempts(limited_app):
    client = limited_app.test_client()
    token = _limited_share(limited_app)

    fresh_visitors = [
        limited_app.test_client().get(f"/s/{token}", headers={"X-Share-Password": PASSWORD}).status_code
        for _ in range(5)
    ]
    unlock(client, token, PASSWORD)
    browsing = [client.get(f"/s/{token}").status_code for _ in range(5)]

    assert fresh_visitors == [200] * 5 and browsing == [200] * 5


# ---- closed links and errors ------------------------------------------------------------------------------


def test_expired_link_shows_a_410_page_that_says_it_expired(app, client, make_album, make_share):
    album_id = make_album(count=1)
    token = make_share(album_id, expires_at=utcnow() - timedelta(minutes=1))

    response = client.get(f"/s/{token}")
    html = html_of(response)

    assert response.status_code == 410
    assert "This link has expired" in html and "Ask the owner for a new one" in html and "no longer available" in html
    assert client.get(f"/s/{token}/thumb/{photos_of(app, album_id)[0].id}").status_code == 410


def test_revoked_link_shows_a_410_page_that_says_it_was_turned_off(app, client, make_album, make_share):
    token = make_share(make_album(count=1), password=PASSWORD)
    unlock(client, token, PASSWORD)
    with app.app_context():
        db.session.execute(db.update(ShareLink).where(ShareLink.token == token).values(revoked=True))
        db.session.commit()

    response = client.get(f"/s/{token}")  # the access cookie no longer helps

    assert response.status_code == 410
    assert "This link has been turned off" in html_of(response) and "revoked" in html_of(response)


def test_unknown_token_is_a_404_page_in_the_sites_look(client):
    response = client.get("/s/this-token-does-not-exist")
    html = html_of(response)

    assert response.status_code == 404
    assert "Link not found" in html and "/static/css/app.css" in html
    assert client.get("/s/this-token-does-not-exist/thumb/1").status_code == 404


def test_errors_under_api_are_json(client):
    response = client.get("/api/share/this-token-does-not-exist")

    assert response.status_code == 404 and response.is_json
    assert set(response.get_json()) == {"error", "message"}


def test_unexpected_error_shows_a_friendly_500_page_and_never_a_trace(tmp_path: Path, database_config):
    app = create_app(base_config(tmp_path / "boom") | database_config)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals at /srv/photoshare/db.py line 42")

    @app.get("/api/boom")
    def api_boom() -> str:
        raise RuntimeError("secret internals")

    client = app.test_client()
    page, api = client.get("/boom"), client.get("/api/boom")

    html = html_of(page)
    assert page.status_code == 500 and "Something went wrong" in html and "Try again" in html
    assert "secret internals" not in html and "Traceback" not in html and "RuntimeError" not in html
    assert api.status_code == 500 and api.get_json()["error"] == "internal_error"
    assert "secret" not in api.get_data(as_text=True)


def test_try_again_after_too_many_guesses_in_the_address_drops_the_password(limited_app):
    client = limited_app.test_client()
    token = _limited_share(limited_app)
    for i in range(3):
        client.get(f"/s/{token}?page=2&password=guess{i}")
    blocked = client.get(f"/s/{token}?page=2&password=guess9")
    html = html_of(blocked)
    assert blocked.status_code == 429
    assert f'href="/s/{token}?page=2">Try again' in html and "guess9" not in html


def test_kept_tiles_follow_a_rename_a_new_pin_and_the_language(app, client, make_album, make_share):
    """The tiles are rendered once and kept (share/tiles.py): whatever a tile shows still changes with it."""
    from photoshare import download_rules

    album_id = make_album(count=2)
    token = make_share(album_id)
    first = client.get(f"/s/{token}").get_data(as_text=True)
    assert client.get(f"/s/{token}").get_data(as_text=True).count("tile-link") == first.count("tile-link") == 2

    with app.app_context():
        photo = db.session.get(Album, album_id).photos[0]
        albums.rename_photo(photo, "Renamed by the owner.jpg")
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert 'data-name="Renamed by the owner.jpg"' in page
    fragment = client.get(f"/s/{token}/photos?page=1").get_data(as_text=True)
    assert 'data-name="Renamed by the owner.jpg"' in fragment

    with app.app_context():
        download_rules.set_download_pin(db.session.execute(
            db.select(ShareLink).where(ShareLink.token == token)).scalar_one(), "2468")
    gated = client.get(f"/s/{token}").get_data(as_text=True)
    assert re.search(r'class="tile-download" href="[^"]*/before-download\?next=', gated)

    german = client.get(f"/s/{token}", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert 'aria-label="Renamed by the owner.jpg herunterladen (' in german
    assert 'aria-label="Download Renamed by the owner.jpg (' in gated
