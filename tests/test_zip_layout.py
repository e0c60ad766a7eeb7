"""The precomputed layout (photoshare/zip_layout.py) gives exactly the bytes zipfile writes, ZIP64 included."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import zipfile
import zlib
from datetime import datetime
from pathlib import Path

from photoshare import archive
from photoshare.archive import archive_layout, plan_archive, write_archive

MOMENT = datetime(2023, 7, 14, 18, 30, 12)


def zipfile_writer(entries, out, open_source) -> None:
    """The writer of archive format zip-stored-2 before the layout was precomputed: zipfile on a seekable file."""
    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for entry in entries:
            with open_source(entry.storage_key) as source, zf.open(archive._zip_info(entry), mode="w") as sink:
                while chunk := source.read(archive.CHUNK_SIZE):
                    sink.write(chunk)


def photos_of(folder: Path, files: dict[str, bytes], with_crc: bool = True) -> list[tuple]:
    photos = []
    for index, (name, data) in enumerate(files.items()):
        (folder / f"k{index}").write_bytes(data)
        row = (name, f"k{index}", len(data), hashlib.sha256(data).hexdigest(), MOMENT)
        photos.append((*row, zlib.crc32(data)) if with_crc else row)
    return photos


def both(folder: Path, photos: list[tuple]) -> tuple[bytes, bytes]:
    entries = plan_archive(photos)
    with (folder / "old.zip").open("wb") as out:
        zipfile_writer(entries, out, lambda key: (folder / key).open("rb"))
    with (folder / "new.zip").open("wb") as out:
        size = write_archive(entries, out, lambda key: (folder / key).open("rb"))
    assert size == (folder / "new.zip").stat().st_size
    return (folder / "old.zip").read_bytes(), (folder / "new.zip").read_bytes()


def test_layout_writer_gives_zipfiles_bytes_for_ascii_unicode_and_duplicate_names(tmp_path: Path):
    files = {"a.jpg": os.urandom(70_000), "Été 東京.jpg": os.urandom(10), "A.JPG": b"", "b.jpg": os.urandom(1)}
    old, new = both(tmp_path, photos_of(tmp_path, files))
    assert old == new
    assert b"PK\x07\x08" not in new  # no data descriptors: CRC and sizes are in the local headers


def test_layout_writer_reads_missing_crcs_from_the_photos(tmp_path: Path):
    old, new = both(tmp_path, photos_of(tmp_path, {"x.jpg": os.urandom(5000)}, with_crc=False))
    assert old == new


def test_more_than_65535_entries_give_zipfiles_zip64_end_records(tmp_path: Path):
    (tmp_path / "tiny").write_bytes(b"tiny photo")
    row = ("IMG.jpg", "tiny", 10, hashlib.sha256(b"tiny photo").hexdigest(), MOMENT, zlib.crc32(b"tiny photo"))
    old, new = both(tmp_path, [row] * 65_540)
    assert old == new and b"PK\x06\x06" in new[-200:]


def test_entry_over_2_gib_has_zip64_in_its_local_header_and_past_4_gib_passes_unzip(tmp_path: Path):
    """A sparse 4 GiB + 1 MiB photo: its local header carries the ZIP64 sizes (macOS Archive Utility reads
    them there), the entry after it sits past 4 GiB; zipfile and `unzip -t` read both."""
    big_size = 4 * 1024**3 + 1024**2
    with (tmp_path / "big").open("wb") as big:
        big.truncate(big_size)
    crc = 0
    zeros = bytes(1 << 24)
    for _ in range(big_size // len(zeros)):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(big_size % len(zeros)), crc)
    (tmp_path / "small").write_bytes(b"after four gigabytes")
    photos = [("huge.tif", "big", big_size, "0" * 64, MOMENT, crc),
              ("after.txt", "small", 20, "1" * 64, MOMENT, zlib.crc32(b"after four gigabytes"))]
    entries = plan_archive(photos)
    layout = archive_layout(entries)
    out = tmp_path / "big.zip"
    with out.open("wb") as sink:  # copy_file_range keeps the holes: no 4 GiB written
        assert write_archive(entries, sink, lambda key: (tmp_path / key).open("rb")) == layout.total
    with out.open("rb") as archive_file:
        header = archive_file.read(len(layout.headers[0]))
        _signature, *_, compressed, uncompressed, name_length, _extra_length = struct.unpack("<4s5H3L2H", header[:30])
        assert (compressed, uncompressed) == (0xFFFFFFFF, 0xFFFFFFFF)
        extra = header[30 + name_length:]
        assert struct.unpack("<HHQQ", extra) == (1, 16, big_size, big_size)
        with zipfile.ZipFile(archive_file) as zf:
            infos = {info.filename: info for info in zf.infolist()}
            assert zf.read("after.txt") == b"after four gigabytes"
    assert infos["huge.tif"].file_size == big_size and infos["after.txt"].header_offset > 4 * 1024**3
    tested = subprocess.run(["unzip", "-t", str(out), "after.txt"], capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0 and "OK" in tested.stdout, tested.stdout


def test_every_offset_maps_to_its_entry_or_to_fixed_bytes(tmp_path: Path):
    photos = photos_of(tmp_path, {"a.jpg": b"aaaa", "b.jpg": b"", "c.jpg": b"cc"})
    layout = archive_layout(plan_archive(photos))
    data = io.BytesIO()
    zipfile_writer(plan_archive(photos), data, lambda key: (tmp_path / key).open("rb"))
    assert layout.total == len(data.getvalue())
    owners = [layout.entry_at(offset) for offset in range(layout.total)]
    assert owners.count(0) == 4 and owners.count(1) == 0 and owners.count(2) == 2
    assert layout.fixed_end(0) == layout.data_offsets[0] and layout.fixed_end(layout.central_offset) == layout.total
