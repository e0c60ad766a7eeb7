"""Plans and layouts kept on disk (plan_files.py): made when the album changes, loaded by a process that has
not planned the version (no query of the photos), replaced when the album changes, gone with the album, and a
damaged file is only a miss."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from photoshare import albums, archive, plan_files, plans
from photoshare.extensions import db
from photoshare.models import Album


def forget_in_memory() -> None:
    """What a freshly started worker knows: nothing."""
    plans._PLANS.clear()
    archive._LAYOUTS.clear()


def kept(app) -> list[Path]:
    return sorted(Path(app.config["PLAN_DIR"]).glob("*.plan"))


@pytest.fixture
def photo_queries(app):
    """The SQL statements that read the photos table, while the test runs."""
    seen: list[str] = []

    def watch(conn, cursor, statement, *args):
        if "FROM photos" in statement:
            seen.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", watch)
        yield seen
        event.remove(db.engine, "before_cursor_execute", watch)


def test_a_process_that_never_planned_the_version_loads_it_without_reading_the_photos(app, make_album,
                                                                                     photo_queries):
    album_id = make_album(count=5)
    assert len(kept(app)) == 1  # written when the album's version was computed
    with app.app_context():
        album = db.session.get(Album, album_id)
        expected_ids, expected = albums.archive_plan_ids(album)
        expected_layout = archive.archive_layout(expected)
        forget_in_memory()
        photo_queries.clear()
        plan = plans.album_plan(album)
        assert photo_queries == []
        assert list(plan.entries) == expected and plan.version == album.version
        assert plans._known(album, albums.ORIGINAL_VARIANT).photo_ids == tuple(expected_ids)
        assert archive._LAYOUTS[plan.version] == expected_layout  # the layout came with it
        assert plan.size == expected_layout.total


def test_a_change_of_the_album_keeps_the_new_plan_and_removes_the_old(app, make_album):
    album_id, other_id = make_album(count=3), make_album(count=2)
    with app.app_context():
        album = db.session.get(Album, album_id)
        before = kept(app)
        albums.rename_photo(album.photos[0], "renamed.jpg")
        after = kept(app)
        assert len(after) == 2 and set(before) != set(after)
        forget_in_memory()
        assert plans.album_plan(album).entries[0].name == "renamed.jpg"
        albums.delete_album(album)
        assert [path.name.split("-")[0] for path in kept(app)] == [str(other_id)]


def test_a_damaged_or_unreadable_file_is_planned_again_and_rewritten(app, make_album):
    album_id = make_album(count=3)
    (path,) = kept(app)
    with app.app_context():
        album = db.session.get(Album, album_id)
        expected = albums.archive_plan(album)
        for damage in (b"", b"not marshal at all", path.read_bytes()[:-40]):
            path.write_bytes(damage)
            forget_in_memory()
            assert list(plans.album_plan(album).entries) == expected
            assert plan_files.load(path.parent, path.name) is not None  # written again, whole


def test_a_variants_plan_is_kept_on_its_first_download_and_loaded_by_the_next_process(app, make_album):
    album_id = make_album(count=2)
    large = albums.Variant(albums.LARGE, strip_location=True)
    with app.app_context():
        album = db.session.get(Album, album_id)
        first = plans.album_plan(album, large)
        assert len(kept(app)) == 2  # the originals' and the web size's
        forget_in_memory()
        again = plans.album_plan(album, large)
        assert again.entries == first.entries and again.version == first.version != album.version


def test_an_older_albums_first_location_free_plan_reads_each_photo_once(app, make_album, photo_queries):
    """Older photos (never checked for a location) are checked on the first location-free download; each check
    commits, and those commits must not send every other photo of the album back to the database."""
    count = 8
    album_id = make_album(count=count)
    clean = albums.Variant(strip_location=True)
    with app.app_context():
        album = db.session.get(Album, album_id)
        for photo in album.photos:
            photo.has_location = photo.clean_size = photo.clean_sha256 = photo.clean_crc32 = None
        db.session.commit()
        album = db.session.get(Album, album_id)
        assert len(album.photos) == count  # loaded, as a view loads them
        forget_in_memory()
        photo_queries.clear()
        plan = plans.album_plan(album, clean)
        assert len(plan.entries) == count
        assert all(photo.has_location is False for photo in album.photos)
        # one refresh per checked photo under its lock, and the variant's fingerprint before and after planning
        assert len(photo_queries) <= count + 2, photo_queries
