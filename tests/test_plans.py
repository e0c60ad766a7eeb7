"""The rules of plans.py in-process: how parts are cut (exact sizes, a photo never split, no ZIP64), and what
names a selection."""

from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import pytest

from photoshare import plans
from photoshare.archive import ArchiveEntry, archive_layout, write_archive
from photoshare.extensions import db
from photoshare.models import Album
from photoshare.zip_layout import ZIP64_LIMIT, ZIP_FILECOUNT_LIMIT

ALBUM = SimpleNamespace(id=1)


def entry(index: int, size: int) -> ArchiveEntry:
    return ArchiveEntry(f"IMG_{index:05d}.jpg", f"k{index}", size, "0" * 64, (2020, 1, 1, 0, 0, 0), crc32=0)


def plan_of(*sizes: int) -> plans.ArchivePlan:
    return plans.ArchivePlan(ALBUM, tuple(entry(i, size) for i, size in enumerate(sizes)))  # type: ignore[arg-type]


def test_parts_keep_album_order_and_each_archive_is_at_most_the_limit_to_the_byte():
    whole = plan_of(*[1000] * 40)
    first_two = archive_layout(whole.entries[:2]).total
    parts = plans.split(whole, limit=first_two)  # exactly two photos' archive fits, a third does not
    assert [len(p.entries) for p in parts] == [2] * 20
    assert [e for p in parts for e in p.entries] == list(whole.entries)
    assert [(p.part, p.parts) for p in parts] == [(n, 20) for n in range(1, 21)]
    assert all(archive_layout(p.entries).total <= first_two for p in parts)
    assert archive_layout(parts[0].entries).total == first_two
    assert {len(p.entries) for p in plans.split(whole, limit=first_two - 1)} == {1}  # 1 byte less: one each


def test_a_photo_larger_than_the_limit_gets_a_part_of_its_own():
    parts = plans.split(plan_of(100, 100, 50_000, 100, 100), limit=1000)
    assert [[e.size for e in p.entries] for p in parts] == [[100, 100], [50_000], [100, 100]]


def test_a_photo_that_needs_zip64_is_alone_and_every_other_part_is_plain():
    giant = int(ZIP64_LIMIT / 1.05) + 10
    parts = plans.split(plan_of(10, giant, 10), limit=ZIP64_LIMIT)
    assert [[e.size for e in p.entries] for p in parts] == [[10], [giant], [10]]


def test_a_part_never_holds_more_than_65535_entries():
    whole = plan_of(*([1] * (ZIP_FILECOUNT_LIMIT + 10)))
    assert [len(p.entries) for p in plans.split(whole, limit=10**9)] == [ZIP_FILECOUNT_LIMIT, 10]


def test_a_small_plan_is_one_part_and_offers_none(app):
    with app.app_context():
        app.config["ARCHIVE_PART_MB"] = 1
        assert plans.parts_of(plan_of(1000, 1000)) == []
        app.config["ARCHIVE_PART_MB"] = 5000  # never past a plain ZIP's limit, whatever the setting
        assert plans.part_limit() == ZIP64_LIMIT


def test_no_parts_when_archive_part_mb_is_0(app):
    with app.app_context():
        app.config["ARCHIVE_PART_MB"] = 0
        assert plans.parts_of(plan_of(1000, 1000, 1000)) == []


def test_part_limit_takes_decimal_megabytes(app):
    with app.app_context():
        app.config["ARCHIVE_PART_MB"] = 0.5
        assert plans.part_limit() == 512 * 1024


def test_a_written_part_is_a_plain_zip_of_its_photos(app, make_album):
    album_id = make_album(count=6)
    with app.app_context():
        album = db.session.get(Album, album_id)
        whole = plans.album_plan(album)
        parts = plans.split(whole, limit=archive_layout(whole.entries[:2]).total)
        assert len(parts) == 3
        from photoshare.storage import get_storage

        out = io.BytesIO()
        write_archive(list(parts[1].entries), out, open_source=get_storage().open)
        data = out.getvalue()
        assert len(data) == parts[1].size
        assert b"PK\x06\x06" not in data
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert [i.filename for i in archive.infolist()] == [e.name for e in whole.entries[2:4]]
            assert all(i.extra == b"" for i in archive.infolist())


def test_a_selection_id_ignores_order_and_repeats_and_follows_the_album_version(app, make_album):
    album_id = make_album(count=3)
    with app.app_context():
        album = db.session.get(Album, album_id)
        ids = [p.id for p in album.photos]
        assert plans.selection_id(album, [ids[2], ids[0]]) == plans.selection_id(album, [ids[0], ids[2], ids[0]])
        assert plans.selection_id(album, ids[:2]) != plans.selection_id(album, ids[1:])
        before = plans.selection_id(album, ids[:1])
        album.version = "another"
        assert plans.selection_id(album, ids[:1]) != before


def test_live_versions_name_the_album_its_parts_and_its_current_selections(app, make_album):
    album_id = make_album(count=4)
    with app.app_context():
        album = db.session.get(Album, album_id)
        whole = plans.album_plan(album)
        app.config["ARCHIVE_PART_MB"] = archive_layout(whole.entries[:2]).total / 1024 / 1024
        selection, created = plans.make_selection(album, [album.photos[3].id])
        assert created
        live = plans.live_versions(album)
        assert {whole.version, selection.version} | {p.version for p in plans.parts_of(whole)} == live
        assert len(live) == 4


@pytest.mark.parametrize("ref", ["x", "p0", "s123", "p1p2", "s" + "0" * 32 + "q"])
def test_a_malformed_plan_reference_names_no_plan(app, make_album, ref):
    album_id = make_album(count=1)
    with app.app_context():
        with pytest.raises(plans.PartNotFound):
            plans.resolve(db.session.get(Album, album_id), ref)


def test_the_sweep_forgets_selections_of_an_album_version_that_is_gone(app, make_album):
    from photoshare import albums
    from photoshare.jobs.sweep import sweep
    from photoshare.models import Selection

    album_id, other_id = make_album(count=2), make_album(count=2)
    with app.app_context():
        album, other = db.session.get(Album, album_id), db.session.get(Album, other_id)
        old, _ = plans.make_selection(album, [album.photos[0].id])
        albums.rename_photo(album.photos[1], "renamed.jpg")
        current, _ = plans.make_selection(album, [album.photos[0].id])
        untouched, _ = plans.make_selection(other, [other.photos[1].id])
        sweep(revive=False)
        left = set(db.session.execute(db.select(Selection.id)).scalars())
        assert left == {current.selection_id, untouched.selection_id}
        assert old.selection_id != current.selection_id
