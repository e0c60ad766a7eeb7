""""Download all" read while it is written, against a real gunicorn with two workers (archive_stream.py).

A photo made a FIFO (jobs_support.SlowPhoto) holds the builder at a known place for as long as a test wants:
responses must start at once with the exact size, wait at the write position, get ranges elsewhere filled
first, survive a killed builder and a client that leaves, and end cut short, never with wrong bytes, when the
build fails. After each scenario the temp folder must empty itself.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
import zipfile
from os import SCHED_IDLE
from pathlib import Path

import pytest

from photoshare import albums
from photoshare.archive import archive_layout
from photoshare.extensions import db
from photoshare.models import Album
from photoshare.storage import get_storage
from photoshare.zip_layout import Layout
from tests.conftest import Site, database_settings, module_instance
from tests.jobs_support import SlowPhoto, expected_archive
from tests.test_downloads_http import _children, _eventually, run
from tests.test_downloads_http import site as site

HEAD_TIMEOUT = 30.0  # seconds: generous for a loaded machine (a worker may still boot); bench/ measures the time


class Stream:
    """A GET on a raw socket: its status, headers, and body bytes as they come."""

    def __init__(self, site: Site, path: str, headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", site.server.port), timeout=HEAD_TIMEOUT)
        lines = [f"GET {path} HTTP/1.1", "Host: test", *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed before the headers: {received!r}"
            received += chunk
        head, self.body = received.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
        self.length = int(self.headers["content-length"])

    def read_until(self, count: int, timeout: float = 30) -> bytes:
        """Body bytes until `count` of them came, the connection closed, or `timeout` passed."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while len(self.body) < count and time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                break
            if not chunk:
                break
            self.body += chunk
        return self.body

    def nothing_more_for(self, seconds: float) -> bool:
        """True when no body byte arrives for `seconds` (the response waits for bytes not yet written)."""
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return True
        self.body += chunk
        return False

    def closed_early(self, timeout: float = 30) -> bool:
        """The server ended the connection before Content-Length bytes."""
        self.read_until(self.length + 1, timeout)
        return len(self.body) < self.length

    def close(self) -> None:
        self.sock.close()


def release(*photos: SlowPhoto) -> None:
    """Feed what a builder may still wait for (a FIFO nobody writes to blocks it for good), then restore."""
    for photo in photos:
        if photo.sent < len(photo.data) and not photo._stop.is_set():
            photo.finish()
            photo.join(5)
        photo.restore()


def layout_of(site: Site, album_id: int) -> Layout:
    with site.app.app_context():
        return archive_layout(albums.archive_plan(db.session.get(Album, album_id)))


def photo_range(layout: Layout, index: int) -> tuple[int, int]:
    """The byte range (inclusive) of photo `index`'s data in the archive."""
    return layout.data_offsets[index], layout.data_offsets[index] + layout.sizes[index] - 1


def builder_of(site: Site, version: str) -> int:
    """The pid of the gunicorn worker that builds this version (it holds the build lock open)."""
    build_lock = Path(site.app.config["LOCK_DIR"]) / f"album-{version}.build"

    def holder() -> int | None:
        for pid in _children(site.server.process.pid):
            try:
                if any(os.readlink(fd) == str(build_lock) for fd in Path(f"/proc/{pid}/fd").iterdir()):
                    return pid
            except (FileNotFoundError, ProcessLookupError):
                continue
        return None

    assert _eventually(lambda: holder() is not None, timeout=10), "no worker builds the archive"
    pid = holder()
    assert pid is not None
    return pid


def lock_files(site: Site) -> list[str]:
    return sorted(name for name in os.listdir(site.app.config["LOCK_DIR"]) if name.startswith("album-"))


def nothing_left(site: Site) -> bool:
    """The temp archive, its record and its locks all gone (the last response removes them one after another)."""
    return site.wait_temp_empty() == [] and _eventually(lambda: lock_files(site) == [], timeout=10)


@pytest.fixture
def album(site: Site) -> tuple[int, str]:
    """12 photos of about 80 KB."""
    return site.album(photos=12, side=300, title="Streaming")


def test_response_starts_at_once_waits_at_the_write_position_and_ranges_elsewhere_are_filled_first(site, album):
    album_id, token = album
    version, layout = site.version(album_id), layout_of(site, album_id)
    expected = expected_archive(site.app, album_id)
    slow, blocked = SlowPhoto(site.app, album_id, index=1), SlowPhoto(site.app, album_id, index=2)
    builds_before = site.builds(album_id)
    path = f"/api/share/{token}/download-all"
    try:
        whole = Stream(site, path)  # photo 1 cannot even be read yet: the headers come anyway
        assert whole.status == 200 and whole.length == layout.total == len(expected)
        assert whole.headers["etag"] == f'"zip-{version}"'
        start, end = photo_range(layout, 9)
        after = Stream(site, path, {"Range": f"bytes={start}-{end}"})  # past the write position
        assert after.status == 206 and after.length == end - start + 1
        slow.finish(chunk=8192, delay=0.03)  # photo 1 takes a while: meanwhile photo 9 is asked for
        before = Stream(site, path, {"Range": "bytes=0-99"})  # already written: answered at once
        assert before.read_until(100, timeout=HEAD_TIMEOUT) == expected[:100]
        # Photo 9 is filled before photos 2-8: photo 2 is a FIFO nobody writes to until this range is done.
        assert after.read_until(after.length) == expected[start:end + 1]
        # The whole download waits where the builder stands, at photo 2 (whose local header is written with its
        # bytes), and sends nothing wrong.
        received = whole.read_until(layout.header_offset(2))
        assert whole.nothing_more_for(0.5) and received == expected[:layout.header_offset(2)]
        blocked.finish()
        assert whole.read_until(whole.length) == expected
    finally:
        release(slow, blocked)
    for stream in (whole, after, before):
        stream.close()
    assert _eventually(lambda: site.builds(album_id) - builds_before == 1)  # logged as the builder ends
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))


def test_photos_not_yet_in_place_go_out_from_their_own_files_and_a_killed_builder_is_replaced(site, album):
    """The builder is stuck at photo 0 (a FIFO) at idle CPU priority, then killed: a range over every
    other photo still comes at once and whole, from the photos' own files, and that response takes over the
    orphaned build; the archive is built once, right, and goes."""
    album_id, token = album
    version, layout = site.version(album_id), layout_of(site, album_id)
    expected = expected_archive(site.app, album_id)
    stuck = SlowPhoto(site.app, album_id, index=0)
    builds_before = site.builds(album_id)
    path = f"/api/share/{token}/download-all"
    try:
        whole = Stream(site, path)  # starts the build, which waits for photo 0
        builder = builder_of(site, version)
        assert _eventually(lambda: SCHED_IDLE in _policies(builder)), "the builder thread keeps its priority"
        assert 0 in _policies(builder)  # the worker's own threads keep theirs (SCHED_OTHER)
        assert whole.nothing_more_for(0.3) and whole.body == b""  # photo 0 is only the builder's to read
        os.kill(builder, signal.SIGKILL)
        assert _eventually(lambda: not _alive(builder), timeout=10)  # its build lock is free once it is gone
        start = layout.header_offset(1)
        rest = Stream(site, path, {"Range": f"bytes={start}-"})  # the other worker, the builder dead
        assert rest.status == 206 and rest.read_until(rest.length, timeout=10) == expected[start:]
        assert "its builder is gone, building the rest here" in site.server.log.read_text()
        assert whole.closed_early()  # the killed worker's response
        stuck.finish()
        assert _eventually(lambda: site.builds(album_id) - builds_before == 1)  # the new builder got photo 0
    finally:
        release(stuck)
    rest.close()
    whole.close()
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))


def test_a_range_in_another_worker_is_filled_by_the_builder_in_the_first(site, album):
    """Two processes, one build: the builder's worker is frozen, so the range goes to the other worker, which
    waits (its photo is no plain file it could send itself); once thawed, the builder fills that range's photo
    first and the other worker sends it."""
    album_id, token = album
    version, layout = site.version(album_id), layout_of(site, album_id)
    expected = expected_archive(site.app, album_id)
    blocked, wanted = SlowPhoto(site.app, album_id, index=3), SlowPhoto(site.app, album_id, index=9)
    builds_before = site.builds(album_id)
    path = f"/api/share/{token}/download-all"
    builder = None
    try:
        whole = Stream(site, path)
        builder = builder_of(site, version)
        os.kill(builder, signal.SIGSTOP)
        start, end = photo_range(layout, 9)
        other = Stream(site, path, {"Range": f"bytes={start}-{end}"})  # the frozen worker cannot take it
        assert other.status == 206 and other.nothing_more_for(0.6)  # waits (the builder's lock is held)
        os.kill(builder, signal.SIGCONT)
        builder = None
        blocked.finish()
        wanted.finish()
        assert other.read_until(other.length) == expected[start:end + 1]
        assert whole.read_until(whole.length) == expected
    finally:
        if builder is not None:
            os.kill(builder, signal.SIGCONT)
        release(blocked, wanted)
    other.close()
    whole.close()
    assert _eventually(lambda: site.builds(album_id) - builds_before == 1)  # logged as the builder ends
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))


def test_a_second_worker_shares_the_build_and_finishes_it_when_the_builder_is_killed(site, album):
    album_id, token = album
    version, layout = site.version(album_id), layout_of(site, album_id)
    expected = expected_archive(site.app, album_id)
    blocked = SlowPhoto(site.app, album_id, index=11)  # the last photo: the builder stops there
    path = f"/api/share/{token}/download-all"
    builder = None
    try:
        whole = Stream(site, path)
        builder = builder_of(site, version)
        os.kill(builder, signal.SIGSTOP)  # frozen mid-build: the next request goes to the other worker
        start = min(layout.total * 9 // 10, layout.header_offset(11))
        resumed = Stream(site, path, {"Range": f"bytes={start}-"})  # a resume at 90 %, in another process
        assert resumed.status == 206 and resumed.length == layout.total - start
        # Photo 10's bytes come at once, from the archive or its own file; the last photo is no plain file yet:
        # its bytes wait for a builder, and nothing else is sent in their place.
        assert resumed.read_until(layout.header_offset(11) - start) == expected[start:layout.header_offset(11)]
        assert resumed.nothing_more_for(0.5)
        os.kill(builder, signal.SIGKILL)
        blocked.restore()  # the photo is readable again: whoever takes over can finish
        assert resumed.read_until(resumed.length) == expected[start:]
        assert whole.closed_early()  # the killed worker's own response is cut, never completed wrongly
        assert whole.body == expected[:len(whole.body)]
    finally:
        if builder is not None:
            os.kill(builder, signal.SIGCONT) if _alive(builder) else None
        blocked.restore()
    resumed.close()
    whole.close()
    assert "its builder is gone, building the rest here" in site.server.log.read_text()
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))


def test_a_client_that_leaves_while_another_waits_changes_nothing_for_the_other(site, album):
    album_id, token = album
    layout = layout_of(site, album_id)
    expected = expected_archive(site.app, album_id)
    blocked = SlowPhoto(site.app, album_id, index=5)
    builds_before = site.builds(album_id)
    path = f"/api/share/{token}/download-all"
    try:
        leaving, staying = Stream(site, path), Stream(site, path)
        for stream in (leaving, staying):  # everything before photo 5's local header, written with the photo
            assert len(stream.read_until(layout.header_offset(5))) == layout.header_offset(5)
        assert staying.nothing_more_for(0.3)
        leaving.close()  # hangs up while the other waits for photo 5
        time.sleep(0.3)
        blocked.finish()
        assert staying.read_until(staying.length) == expected
    finally:
        release(blocked)
    staying.close()
    assert _eventually(lambda: site.builds(album_id) - builds_before == 1)  # logged as the builder ends
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))


def test_a_build_that_fails_midway_cuts_every_waiting_response_and_leaves_no_file(site, album):
    album_id, token = album
    layout = layout_of(site, album_id)
    expected = expected_archive(site.app, album_id)
    broken = SlowPhoto(site.app, album_id, index=6)
    path = f"/api/share/{token}/download-all"
    try:
        whole = Stream(site, path)
        start, end = layout.header_offset(6), photo_range(layout, 10)[1]  # from before the broken photo on
        later = Stream(site, path, {"Range": f"bytes={start - 10}-{end}"})
        assert whole.status == 200 and later.status == 206
        assert len(whole.read_until(layout.header_offset(6))) == layout.header_offset(6)
        broken.feed(until=len(broken.data) // 2)
        broken.join()
        broken.restore()  # the pipe closes half-way: the photo is shorter than the database says
        assert whole.closed_early() and later.closed_early()
        assert whole.body == expected[:len(whole.body)]
        assert later.body == expected[start - 10:start - 10 + len(later.body)]
    finally:
        broken.restore()
    whole.close()
    later.close()
    assert "not built" in site.server.log.read_text()
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))
    # The photo is back: the next download builds again, whole and right.
    again = Stream(site, path)
    assert again.read_until(again.length) == expected
    again.close()
    assert site.wait_temp_empty() == []


@pytest.fixture(scope="module")
def unchecked_site(tmp_path_factory, postgres_server):
    """One worker whose "Download all" checks no photo before its first byte (ARCHIVE_CHECK_SECONDS=0), as
    one of 5,000 photos on a cold disk leaves most of them to the builder."""
    site = Site.start(module_instance(tmp_path_factory, "unchecked"), database_settings(postgres_server),
                      env={"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute", "ARCHIVE_CHECK_SECONDS": "0"}, workers=1)
    yield site
    site.stop()


def test_a_photo_missing_beyond_the_first_check_cuts_the_download_at_once_and_a_retry_is_a_clear_error(
    unchecked_site,
):
    site = unchecked_site
    album_id, token = site.album(photos=6, side=300, title="Unchecked")
    layout, expected = layout_of(site, album_id), expected_archive(site.app, album_id)
    path = f"/api/share/{token}/download-all"
    slow = SlowPhoto(site.app, album_id, index=1)  # holds the builder at photo 1 for as long as the test likes
    missing = SlowPhoto(site.app, album_id, index=5)
    missing.path.unlink()  # the last photo is gone from the disk
    try:
        first = Stream(site, path, {"Accept": "application/json"})
        if first.status == 200:  # started before the builder's checker got to the last photo
            assert first.length == len(expected)  # nothing checked before the first byte
            # The checker finds the missing photo while the copying still waits at photo 1: the download ends
            # there, with the right bytes so far, not after the visitor waited for the rest.
            first.read_until(first.length, timeout=HEAD_TIMEOUT)
            first.sock.settimeout(5)
            assert first.sock.recv(1) == b""  # closed by the server (a timeout here: still waiting for photo 1)
            assert len(first.body) <= layout.header_offset(2) and first.body == expected[:len(first.body)]
        else:  # the checker was quicker: the clear error at once, though the builder still waits at photo 1
            assert first.status == 500
            assert b"IMG_0005.jpg" in first.read_until(first.length) and b"archive_failed" in first.body
        first.close()
        assert "not built" in site.server.log.read_text() and "IMG_0005.jpg" in site.server.log.read_text()
        # The builder still waits at photo 1, its build failed: a request now gets the error, it does not wait.
        during = Stream(site, path, {"Accept": "application/json"})
        assert during.status == 500
        assert b"IMG_0005.jpg" in during.read_until(during.length) and b"archive_failed" in during.body
        during.close()
    finally:
        release(slow)
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))
    # This worker saw the build fail: it checks every photo of the version first now, so the retry is the
    # clear error page, not another cut download.
    retry = Stream(site, path, {"Accept": "application/json"})
    assert retry.status == 500
    assert b"IMG_0005.jpg" in retry.read_until(retry.length) and b"archive_failed" in retry.body
    retry.close()
    # The photo is back: the full check passes and the archive is whole and right.
    missing.restore()
    again = Stream(site, path)
    assert again.status == 200 and again.read_until(again.length) == expected
    again.close()
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))


def test_a_photo_replaced_on_disk_by_one_of_another_size_is_never_sent(unchecked_site):
    """Nothing is checked before the first byte, and photo 3 is now another file, 1,000 bytes longer: the
    response sends photos 0-2 and is cut where photo 3 begins (its file is not of the planned size, so the
    response leaves it to the builder, which fails the build), never a byte of the other file."""
    site = unchecked_site
    album_id, token = site.album(photos=6, side=300, title="Replaced")
    layout, expected = layout_of(site, album_id), expected_archive(site.app, album_id)
    with site.app.app_context():
        photo = db.session.get(Album, album_id).photos[3]
        path = get_storage().local_path(albums.photo_key(photo))
    original = path.read_bytes()
    path.write_bytes(os.urandom(len(original) + 1000))
    try:
        response = Stream(site, f"/api/share/{token}/download-all", {"Accept": "application/json"})
        if response.status == 200:
            assert response.closed_early()
            assert len(response.body) <= layout.header_offset(3) and response.body == expected[:len(response.body)]
        else:  # the builder's checker found the photo before the response could start
            assert response.status == 500 and b"archive_failed" in response.read_until(response.length)
        response.close()
        assert _eventually(lambda: "not built" in site.server.log.read_text())
    finally:
        path.write_bytes(original)
    assert nothing_left(site), (os.listdir(site.temp_dir), lock_files(site))


def test_aria2c_split_download_of_a_never_built_version_builds_once_and_every_entry_is_right(site, tmp_path):
    album_id, token = site.album(photos=12, side=1000, title="Split")
    builds_before = site.builds(album_id)
    url = site.url(token)
    # Limited like test_downloads_http's aria2c run, so that its connections overlap: the temp archive lives
    # while a response (or its builder) uses it, and a gap between connections would rightly build it again.
    result = run("aria2c", "-x", "8", "-s", "8", "-k", "1M", "--max-download-limit=4M", "--console-log-level=warn",
                 "-d", tmp_path,
                 "-o", "split.zip", url, check=False, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert _eventually(lambda: site.builds(album_id) - builds_before == 1)  # logged as the builder ends
    assert run("unzip", "-tq", tmp_path / "split.zip").returncode == 0
    with site.app.app_context():
        photos = {entry.name: entry.sha256 for entry in albums.archive_plan(db.session.get(Album, album_id))}
    with zipfile.ZipFile(tmp_path / "split.zip") as archive:
        assert {name: hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()} == photos
    assert site.wait_temp_empty() == []


def _policies(pid: int) -> set[int]:
    """The scheduling policy of each thread of process `pid` (field 41 of /proc/<pid>/task/<tid>/stat)."""
    values = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            values.add(int(task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[38]))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return values


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return subprocess.run(["test", "-d", f"/proc/{pid}"], check=False).returncode == 0
