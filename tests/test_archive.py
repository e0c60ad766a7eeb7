"""The ZIP writer on its own (photoshare/archive.py): names, byte-stability, ZIP64, checked with `unzip`."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import time
import unicodedata
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photoshare.archive import (
    CHUNK_SIZE,
    ArchiveSourceError,
    archive_digest,
    clean_filename,
    plan_archive,
    unique_names,
    write_archive,
)

MOMENT = datetime(2023, 7, 14, 18, 30, 12)
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZIP64_END_OF_CENTRAL_DIRECTORY = b"PK\x06\x06"


def make_sources(folder: Path, files: dict[str, bytes]) -> list[tuple[str, str, int, str, datetime]]:
    """Files under `folder` keyed by their own names, described the way albums.archive_plan describes photos."""
    photos = []
    for index, (name, data) in enumerate(files.items()):
        key = f"k{index}"
        (folder / key).write_bytes(data)
        photos.append((name, key, len(data), hashlib.sha256(data).hexdigest(), MOMENT))
    return photos


def build(folder: Path, photos: list, out: Path) -> bytes:
    with out.open("wb") as sink:
        write_archive(plan_archive(photos), sink, lambda key: (folder / key).open("rb"))
    return out.read_bytes()


def unzip(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["unzip", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_duplicate_names_get_numbered_suffixes_before_the_extension():
    assert unique_names(["IMG_0001.jpg"] * 3) == ["IMG_0001.jpg", "IMG_0001_1.jpg", "IMG_0001_2.jpg"]


def test_names_that_differ_only_in_case_are_duplicates():
    assert unique_names(["beach.jpg", "Beach.JPG", "BEACH.jpg"]) == ["beach.jpg", "Beach_1.JPG", "BEACH_2.jpg"]


def test_generated_name_never_collides_with_an_original_name():
    names = unique_names(["IMG_1.jpg", "IMG_1.jpg", "img_1_1.JPG", "IMG_1_2.jpg"])
    assert names == ["IMG_1.jpg", "IMG_1_3.jpg", "img_1_1.JPG", "IMG_1_2.jpg"]
    assert len({name.casefold() for name in names}) == len(names)


def test_many_duplicates_stay_unique_case_insensitively():
    names = unique_names(["a.jpg", "A.jpg", "a_1.jpg"] * 50)
    assert len({name.casefold() for name in names}) == 150


@pytest.mark.parametrize(
    ("unsafe", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        (".hidden.jpg", "hidden.jpg"),
        ("...jpg", "jpg"),
        ("bad\x00na\x1fme\x7f.jpg", "bad_na_me_.jpg"),
        ("a..b.jpg", "a.b.jpg"),
        ('what?*<>|".jpg', "what______.jpg"),
        ("   ", "photo"),
        ("..", "photo"),
        ("/", "photo"),
        ('quote"and;semi.jpg', "quote_and;semi.jpg"),
        ("photo.", "photo"),
        ("photo. . ", "photo"),
        ("CON.jpg", "CON_.jpg"),
        ("nul.tar.gz", "nul_.tar.gz"),
        ("Com1", "Com1_"),
        ("lpt9.JPG", "lpt9_.JPG"),
        ("COM\u00b2.png", "COM\u00b2_.png"),
        ("CON .jpg", "CON_ .jpg"),
        ("CONSOLE.jpg", "CONSOLE.jpg"),
        ("photo\u202egpj.exe", "photogpj.exe"),
        ("\u2067x\u2069\u200e\u200f\u061c.jpg", "x.jpg"),
    ],
)
def test_unsafe_names_are_cleaned(unsafe: str, clean: str):
    assert clean_filename(unsafe) == clean


def test_long_names_are_cut_to_200_utf8_bytes_keeping_the_extension():
    cut = clean_filename("東" * 150 + ".jpg")
    assert cut == "東" * 65 + ".jpg" and len(cut.encode()) == 199
    assert clean_filename("a" * 100 + "." + "b" * 250) == ("a" * 100 + "." + "b" * 250)[:200]


def test_forbidden_and_long_names_unpack_with_unzip_under_their_entry_names(tmp_path: Path):
    """What Windows refuses, and a name over Linux's 255 bytes (a 150-character Japanese name is 454 bytes),
    unpack on this machine under exactly the names the plan gives."""
    originals = ['say "cheese"?.jpg', "a<b>c|d*e:f.jpg", "CON.jpg", "trailing. ", "東" * 150 + ".jpg",
                 "photo\u202egpj.exe"]
    photos = make_sources(tmp_path, {name: os.urandom(50 + i) for i, name in enumerate(originals)})
    names = [entry.name for entry in plan_archive(photos)]
    assert names == ['say _cheese__.jpg', "a_b_c_d_e_f.jpg", "CON_.jpg", "trailing", "東" * 65 + ".jpg",
                     "photogpj.exe"]
    build(tmp_path, photos, tmp_path / "out.zip")
    listing = subprocess.run(["unzip", "-Z1", tmp_path / "out.zip"], capture_output=True, timeout=30).stdout
    assert listing.decode("utf-8").splitlines() == names
    unpacked = unzip("-q", tmp_path / "out.zip", "-d", tmp_path / "unpacked")
    assert unpacked.returncode == 0, unpacked.stdout + unpacked.stderr
    assert sorted(p.name for p in (tmp_path / "unpacked").iterdir()) == sorted(names)
    for name, (_, key, *_rest) in zip(names, photos, strict=True):
        assert (tmp_path / "unpacked" / name).read_bytes() == (tmp_path / key).read_bytes()


# ---- properties of the ZIP-entry cleaner (Hypothesis) -------------------------------------------------------

WINDOWS_FORBIDDEN = set('<>:"|?*/\\')
RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{p}{n}" for p in ("COM", "LPT") for n in "123456789")}
# Text that reaches the tricky cases often: separators, dots, spaces, controls, bidi, reserved words, CJK, emoji.
TRICKY = st.sampled_from(
    ["/", "\\", ".", "..", " ", "\t", "\x00", "\x85", "\u202e", "\u2066", "\u200f", '"', "?", ":", "CON", "nul",
     "com1", "LPT9", "東", "😀", "e\u0301", "\ud800", "_", "-", ".jpg", "\u3000"]
)
NAMES = st.lists(st.one_of(TRICKY, st.text(max_size=40)), max_size=30).map("".join) | st.text(max_size=600)


@settings(max_examples=600, deadline=None)
@given(NAMES)
def test_entry_names_are_safe_on_every_file_system_and_cleaning_is_idempotent(name: str):
    entry = clean_filename(name)
    assert entry and len(entry.encode("utf-8")) <= 200
    assert not WINDOWS_FORBIDDEN & set(entry)
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029" for ch in entry)
    assert not BIDI & set(entry)
    assert not entry.endswith((".", " ")) and entry == entry.strip() and not entry.startswith(".")
    assert entry.split(".")[0].rstrip().upper() not in RESERVED
    assert unicodedata.is_normalized("NFC", entry)
    assert clean_filename(entry) == entry  # idempotent
    assert clean_filename(name) == entry  # deterministic: no state, no randomness


@settings(max_examples=300, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=8))
def test_planned_entry_names_are_unique_case_insensitively_and_never_reserved(originals: list[str]):
    names = plan_archive_names(originals)
    assert len({n.casefold() for n in names}) == len(names)
    assert all(n.split(".")[0].rstrip().upper() not in RESERVED and len(n.encode()) <= 255 for n in names)


def test_unicode_is_kept_and_normalised_to_nfc():
    assert clean_filename("Cafe\u0301 – 東京.jpg") == "Café – 東京.jpg"
    # The same name typed on a Mac (NFD) and on Windows (NFC) would unpack onto one file: a duplicate.
    assert plan_archive_names(["Caf\u00e9.jpg", "Cafe\u0301.jpg"]) == ["Café.jpg", "Café_1.jpg"]


def plan_archive_names(names: list[str]) -> list[str]:
    return [entry.name for entry in plan_archive([(name, "k", 1, "0", MOMENT) for name in names])]


def test_unicode_entries_carry_the_utf8_flag(tmp_path: Path):
    photos = make_sources(tmp_path, {"Été.jpg": b"a", "東京.jpg": b"b", "plain.jpg": b"c"})
    data = build(tmp_path, photos, tmp_path / "out.zip")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        flags = {info.filename: info.flag_bits & 0x800 for info in archive.infolist()}
    assert flags == {"Été.jpg": 0x800, "東京.jpg": 0x800, "plain.jpg": 0}
    listing = subprocess.run(["unzip", "-Z1", tmp_path / "out.zip"], capture_output=True, timeout=30).stdout
    assert listing.decode("utf-8").split() == ["Été.jpg", "東京.jpg", "plain.jpg"]


def test_entries_are_stored_with_the_photo_time_and_fixed_attributes(tmp_path: Path):
    photos = make_sources(tmp_path, {"a.jpg": os.urandom(3000), "b.jpg": os.urandom(10)})
    os.chmod(tmp_path / "k0", 0o700)
    data = build(tmp_path, photos, tmp_path / "out.zip")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.date_time == (2023, 7, 14, 18, 30, 12)
            assert info.external_attr == 0o100644 << 16
        assert archive.read("a.jpg") == (tmp_path / "k0").read_bytes()


def test_building_twice_gives_the_same_bytes(tmp_path: Path):
    photos = make_sources(tmp_path, {f"IMG_{i}.jpg": os.urandom(70_000 + i) for i in range(5)})
    first = build(tmp_path, photos, tmp_path / "one.zip")
    for key in ("k0", "k3"):  # the files' own times and modes must not leak into the archive
        os.utime(tmp_path / key, (time.time() + 3600, time.time() + 3600))
        os.chmod(tmp_path / key, 0o600)
    time.sleep(1.1)  # and neither must the clock
    second = build(tmp_path, photos, tmp_path / "two.zip")
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_times_before_1980_are_clamped_not_refused(tmp_path: Path):
    photos = [("old.jpg", "k0", 1, hashlib.sha256(b"x").hexdigest(), datetime(1970, 1, 1))]
    (tmp_path / "k0").write_bytes(b"x")
    with zipfile.ZipFile(io.BytesIO(build(tmp_path, photos, tmp_path / "o.zip"))) as archive:
        assert archive.infolist()[0].date_time == (1980, 1, 1, 0, 0, 0)


def test_digest_changes_exactly_when_the_bytes_would():
    base = [("a.jpg", "k0", 10, "aa", MOMENT), ("b.jpg", "k1", 20, "bb", MOMENT)]
    digest = archive_digest(plan_archive(base))
    assert archive_digest(plan_archive([(n, "other-key", s, h, t) for n, _, s, h, t in base])) == digest
    changes = [
        [("a2.jpg", "k0", 10, "aa", MOMENT), base[1]],
        [("a.jpg", "k0", 10, "cc", MOMENT), base[1]],
        [("a.jpg", "k0", 10, "aa", datetime(2024, 1, 1)), base[1]],
        [base[1], base[0]],
        base[:1],
    ]
    assert all(archive_digest(plan_archive(changed)) != digest for changed in changes)


def test_missing_source_file_raises_archive_source_error(tmp_path: Path):
    photos = make_sources(tmp_path, {"a.jpg": b"a", "gone.jpg": b"b"})
    (tmp_path / "k1").unlink()
    with pytest.raises(ArchiveSourceError) as caught, (tmp_path / "o.zip").open("wb") as out:
        write_archive(plan_archive(photos), out, lambda key: (tmp_path / key).open("rb"))
    assert caught.value.entry_name == "gone.jpg"


def test_source_that_changed_size_raises_archive_source_error(tmp_path: Path):
    photos = make_sources(tmp_path, {"a.jpg": b"abc"})
    (tmp_path / "k0").write_bytes(b"abcdef")
    with pytest.raises(ArchiveSourceError), (tmp_path / "o.zip").open("wb") as out:
        write_archive(plan_archive(photos), out, lambda key: (tmp_path / key).open("rb"))


def test_more_than_65535_entries_use_zip64_and_pass_unzip_t(tmp_path: Path):
    (tmp_path / "tiny").write_bytes(b"tiny photo")
    sha = hashlib.sha256(b"tiny photo").hexdigest()
    count = 65_540
    photos = [("IMG.jpg", "tiny", 10, sha, MOMENT)] * count  # one file, many times: names de-duplicated
    data = build(tmp_path, photos, tmp_path / "many.zip")
    assert ZIP64_END_OF_CENTRAL_DIRECTORY in data[-200:]
    result = unzip("-tq", tmp_path / "many.zip")
    assert result.returncode == 0, result.stdout[-500:] + result.stderr[-500:]
    listing = unzip("-Z1", tmp_path / "many.zip").stdout.split()
    assert len(listing) == count and listing[-1] == f"IMG_{count - 1}.jpg"


class SparseWriter(io.FileIO):
    """Skips writing chunks of zeros (leaves holes), so a 4 GiB archive of a sparse photo costs no disk."""

    ZEROS = bytes(CHUNK_SIZE)

    def write(self, data) -> int:  # type: ignore[override]
        if len(data) == CHUNK_SIZE and data == self.ZEROS:
            self.seek(CHUNK_SIZE, os.SEEK_CUR)
            return CHUNK_SIZE
        return super().write(data)


def test_archive_over_4_gib_uses_zip64_and_opens_in_unzip(tmp_path: Path):
    """A sparse 4 GiB photo, then a small one that starts past 4 GiB: sizes and offsets need ZIP64.

    `unzip -t` checks the entry past 4 GiB (found through the ZIP64 records); checking the 4 GiB of zeros
    too would cost 20 s of unzip's CRC and prove nothing more about the layout.
    """
    big_size = 4 * 1024**3 + 1024**2
    with (tmp_path / "big").open("wb") as big:
        big.truncate(big_size)
    (tmp_path / "small").write_bytes(b"after four gigabytes")
    photos = [
        ("huge.tif", "big", big_size, "0" * 64, MOMENT),
        ("after.txt", "small", 20, hashlib.sha256(b"after four gigabytes").hexdigest(), MOMENT),
    ]
    out = tmp_path / "big.zip"
    with SparseWriter(out, "w") as sink:
        size = write_archive(plan_archive(photos), sink, lambda key: (tmp_path / key).open("rb"))
    assert size == out.stat().st_size > 4 * 1024**3
    with out.open("rb") as archive_file:
        archive_file.seek(-200, os.SEEK_END)
        assert ZIP64_END_OF_CENTRAL_DIRECTORY in archive_file.read()
        with zipfile.ZipFile(archive_file) as archive:
            infos = {info.filename: info for info in archive.infolist()}
    assert infos["huge.tif"].file_size == big_size and infos["after.txt"].header_offset > 4 * 1024**3
    tested = unzip("-t", out, "after.txt")
    assert tested.returncode == 0 and "after.txt" in tested.stdout and "OK" in tested.stdout, tested.stdout
    listed = unzip("-l", out)
    assert listed.returncode == 0 and str(big_size) in listed.stdout, listed.stdout
