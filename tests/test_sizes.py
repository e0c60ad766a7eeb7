"""A photo's large download and location-free copy: made when it is added (or by `make-renditions` for older
photos), recorded with size, sha256 and CRC-32, kept and removed with the photo (sizes.py, albums.py)."""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from pathlib import Path

from PIL import Image

from photoshare import albums
from photoshare.extensions import db
from photoshare.models import Album, Photo
from photoshare.sizes import LARGE, Variant, clean_key, large_key, large_name
from photoshare.storage import get_storage
from tests.conftest import login, make_jpeg
from tests.location_support import gps_of, located_image


def stored(app, key: str) -> bytes:
    with app.app_context(), get_storage().open(key) as source:
        return source.read()


def test_adding_a_photo_stores_its_large_jpeg_with_size_sha256_and_crc(app, make_album):
    album_id = make_album(files={"wide.png": located_image("PNG", (2500, 1000), noise=False)})
    with app.app_context():
        photo = db.session.get(Album, album_id).photos[0]
        large = stored(app, large_key(photo))
        assert (photo.large_size, photo.large_sha256, photo.large_crc32) == (
            len(large), hashlib.sha256(large).hexdigest(), zlib.crc32(large))
    with Image.open(io.BytesIO(large)) as image:
        assert image.format == "JPEG" and image.size == (2048, 819)


def test_large_size_follows_the_setting_and_never_enlarges(app, make_album):
    app.config["LARGE_SIZE"] = 500
    album_id = make_album(files={"a.jpg": make_jpeg(1000, 600), "small.jpg": make_jpeg(120, 90)})
    with app.app_context():
        sizes = [Image.open(io.BytesIO(stored(app, large_key(p)))).size for p in db.session.get(Album, album_id).photos]
    assert sizes == [(500, 300), (120, 90)]


def test_a_located_upload_gets_its_clean_copy_once_shared_by_identical_uploads(app, make_album):
    data = located_image("JPEG")
    album_id = make_album(files=[("a.jpg", data), ("b.jpg", data), ("plain.jpg", make_jpeg())])
    clean_dir = Path(app.config["UPLOAD_DIR"]) / "clean"
    with app.app_context():
        first, second, plain = db.session.get(Album, album_id).photos
        assert first.has_location and second.has_location and plain.has_location is False
        assert list(clean_dir.iterdir()) == [clean_dir / Path(clean_key(first)).name]
        assert gps_of(stored(app, clean_key(first))) == {}
        assert first.clean_sha256 == hashlib.sha256(stored(app, clean_key(first))).hexdigest()
        albums.delete_photo(first)
        assert list(clean_dir.iterdir())  # still the second photo's
        albums.delete_photo(second)
        assert list(clean_dir.iterdir()) == []


def test_make_renditions_gives_older_photos_their_large_jpeg_and_clean_copy(app, runner, make_album):
    album_id = make_album(files={"old.jpg": located_image("JPEG", (3000, 1500), noise=False)})
    with app.app_context():
        photo = db.session.get(Album, album_id).photos[0]
        get_storage().delete(large_key(photo))
        get_storage().delete(clean_key(photo))
        photo.large_size = photo.large_sha256 = photo.large_crc32 = None
        photo.has_location = photo.clean_size = photo.clean_sha256 = photo.clean_crc32 = None
        db.session.commit()
        photo_id = photo.id
    result = runner.invoke(args=["make-renditions"])
    assert result.exit_code == 0 and result.stdout == "made the thumbnail and view of 1 photos\n"
    with app.app_context():
        photo = db.session.get(Photo, photo_id)
        assert photo.large_sha256 == hashlib.sha256(stored(app, large_key(photo))).hexdigest()
        assert photo.has_location is True and gps_of(stored(app, clean_key(photo))) == {}
        version = db.session.get(Album, album_id).version
        assert albums.variant_version(db.session.get(Album, album_id), Variant(LARGE)) != version


def test_large_names_keep_jpegs_and_rename_the_rest():
    assert [large_name(n) for n in ("IMG_1.png", "a.JPG", "b.jpeg", "c.webp", "d")] == [
        "IMG_1.jpg", "a.JPG", "b.jpeg", "c.jpg", "d.jpg"]


def test_the_owner_form_removes_location_by_default_and_can_cap_a_link_at_web_size(app, client, owner, make_album):
    from tests.test_owner_shares import create_link, links

    album_id = make_album(count=1)
    login(client)
    form = client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    assert re.search(r'<input checked id="strip_location" name="strip_location" type="checkbox"', form)
    assert re.search(r'<input id="web_size_only" name="web_size_only" type="checkbox"', form)
    assert "Remove location from downloads" in form and "Web-size downloads only" in form
    create_link(client, album_id, strip_location="y")
    create_link(client, album_id, web_size_only="y")  # a browser sends no field for an unticked box
    newest_first = [(link.strip_location, link.web_size_only) for link in links(app, album_id)]
    assert sorted(newest_first) == [(False, True), (True, False)]
    html = client.get(f"/albums/{album_id}/shares").get_data(as_text=True)
    assert "Web size only" in html and "Location removed" in html and "Location kept" in html


def test_the_gallery_says_when_the_location_is_removed_and_when_downloads_are_web_size(app, client, make_album,
                                                                                        make_share):
    album_id = make_album(count=2)
    removed = client.get(f"/s/{make_share(album_id)}").get_data(as_text=True)
    kept = client.get(f"/s/{make_share(album_id, strip_location=False)}").get_data(as_text=True)
    capped = client.get(f"/s/{make_share(album_id, web_size_only=True)}").get_data(as_text=True)
    assert "Location removed" in removed and "Location removed" not in kept
    assert 'data-size-choice="large"' in removed and "Web size" in removed  # beside "Download all"
    assert "Downloads are web size" in capped and "size=original" not in capped
    assert capped.count('data-size-choice="large"') == 1 and "data-download-large" not in capped
