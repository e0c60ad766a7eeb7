"""Downloads against a real gunicorn (gthread), with curl, wget, aria2c and Python's http.client as clients.

One gunicorn serves the whole module (its download-all limit raised, since every test here comes from
127.0.0.1); each test makes its own album. After every scenario the temp folder must empty itself.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import signal
import socket
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from photoshare import albums
from photoshare.extensions import db
from photoshare.models import Album, ShareLink
from tests.conftest import LiveServer, Site, database_settings, module_instance


@pytest.fixture(scope="module")
def site(tmp_path_factory, postgres_server) -> Iterator[Site]:
    """One gunicorn for the module, on SQLite or (PHOTOSHARE_TEST_POSTGRES=1) a fresh PostgreSQL database."""
    site = Site.start(module_instance(tmp_path_factory, "downloads-http"), database_settings(postgres_server),
                      env={"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute"})
    yield site
    site.stop()


@pytest.fixture(scope="module")
def big(site: Site) -> tuple[int, str]:
    """An album of 8 photos of about 1.2 MB (a 10 MB archive): large enough to stream for a while."""
    return site.album(photos=8, side=1000, title="Été / big")


def run(*args: str | Path, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{args[0]} exited {result.returncode}: {result.stderr[-1000:]}"
    return result


def curl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("curl", "--silent", "--show-error", *args, check=check)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def request(site: Site, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """(status, headers, body) through http.client."""
    connection = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture
def full_archive(site: Site, big, tmp_path: Path) -> Path:
    _, token = big
    path = tmp_path / "full.zip"
    curl("-o", path, site.url(token))
    assert run("unzip", "-tq", path).returncode == 0
    return path


# ---- the documented recipe, and resuming ------------------------------------------------------------------


def test_curl_recipe_size_then_two_ranges_concatenates_to_the_full_archive(site, big, full_archive, tmp_path):
    _, token = big
    head = curl("-I", site.url(token)).stdout
    size = int(re.search(r"(?im)^content-length: (\d+)", head).group(1))
    assert size == full_archive.stat().st_size and re.search(r"(?im)^accept-ranges: bytes", head)
    curl("-H", "Range: bytes=0-999", "-o", tmp_path / "partial.zip", site.url(token))
    curl("-H", "Range: bytes=1000-", "-o", tmp_path / "rest.zip", site.url(token))
    joined = (tmp_path / "partial.zip").read_bytes() + (tmp_path / "rest.zip").read_bytes()
    assert hashlib.sha256(joined).hexdigest() == sha256(full_archive)
    assert site.wait_temp_empty() == []


def test_curl_continues_an_interrupted_download_with_C(site, big, full_archive, tmp_path):
    _, token = big
    target = tmp_path / "resumed.zip"
    # The connection drops after 3 MB: curl's reader goes away mid-stream.
    run("bash", "-c", f"curl --silent '{site.url(token)}' | head -c 3000000 > '{target}'")
    assert target.stat().st_size == 3_000_000 < full_archive.stat().st_size
    assert site.wait_temp_empty() == []  # the dropped connection left nothing behind
    curl("-C", "-", "-o", target, site.url(token))
    assert sha256(target) == sha256(full_archive) and run("unzip", "-tq", target).returncode == 0
    assert site.wait_temp_empty() == []


def test_wget_continues_an_interrupted_download_with_c(site, big, full_archive, tmp_path):
    _, token = big
    target = tmp_path / "resumed.zip"
    run("bash", "-c", f"wget --quiet -O - '{site.url(token)}' | head -c 2500000 > '{target}'")
    assert target.stat().st_size == 2_500_000 < full_archive.stat().st_size
    assert site.wait_temp_empty() == []
    resumed = run("wget", "-c", "-O", target, site.url(token))
    assert "206" in resumed.stderr
    assert sha256(target) == sha256(full_archive) and run("unzip", "-tq", target).returncode == 0
    assert site.wait_temp_empty() == []


def test_single_photo_resumes_with_curl_and_wget(site, tmp_path):
    _, token = site.album(photos=1, side=1200)
    url = site.url(token, "download/" + str(_first_photo_id(site, token)))
    whole = tmp_path / "whole.jpg"
    curl("-o", whole, url)
    for client in ("curl", "wget"):
        target = tmp_path / f"{client}.jpg"
        target.write_bytes(whole.read_bytes()[:123_456])
        if client == "curl":
            curl("-C", "-", "-o", target, url)
        else:
            run("wget", "-q", "-c", "-O", target, url)
        assert sha256(target) == sha256(whole)


def _first_photo_id(site: Site, token: str) -> int:
    with site.app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        return link.album.photos[0].id


def test_if_range_after_the_album_changed_gets_the_whole_new_archive(site, tmp_path):
    album_id, token = site.album(photos=3)
    path = f"/api/share/{token}/download-all"
    status, headers, _first = request(site, path, {"Range": "bytes=0-999"})
    assert status == 206
    with site.app.app_context():
        albums.rename_photo(db.session.get(Album, album_id).photos[0], "renamed.jpg")
    status, new_headers, body = request(site, path, {"Range": "bytes=1000-", "If-Range": headers["ETag"]})
    assert status == 200 and new_headers["ETag"] != headers["ETag"]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None and archive.namelist()[0] == "renamed.jpg"
    assert site.wait_temp_empty() == []


# ---- ranges under gunicorn ---------------------------------------------------------------------------------


def test_ranges_and_bad_ranges_under_gunicorn(site):
    _, token = site.album(photos=1, side=600)
    path = f"/api/share/{token}/download/{_first_photo_id(site, token)}"
    _, whole_headers, whole = request(site, path)
    size = len(whole)
    status, headers, body = request(site, path, {"Range": f"bytes={size - 100}-"})
    assert (status, body, headers["Content-Range"]) == (206, whole[-100:], f"bytes {size - 100}-{size - 1}/{size}")
    status, headers, body = request(site, path, {"Range": f"bytes=-{size * 3}"})
    assert (status, body, headers["Content-Range"]) == (206, whole, f"bytes 0-{size - 1}/{size}")
    assert request(site, path, {"Range": "bytes=0-9,20-29"})[::2] == (200, whole)
    assert request(site, path, {"Range": "lines=1-2"})[::2] == (200, whole)
    status, headers, _ = request(site, path, {"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    assert request(site, path, {"If-None-Match": whole_headers["ETag"], "Range": "bytes=0-9"})[::2] == (304, b"")
    assert request(site, path, {"If-Range": '"stale"', "Range": "bytes=0-9"})[::2] == (200, whole)


def test_archive_ranges_heads_and_416s_all_leave_the_temp_folder_empty(site, big):
    _, token = big
    path = f"/api/share/{token}/download-all"
    assert request(site, path, method="HEAD")[0] == 200
    assert site.wait_temp_empty() == []
    assert request(site, path, {"Range": "bytes=5000000-5000099"})[0] == 206
    assert site.wait_temp_empty() == []
    assert request(site, path, {"Range": "bytes=999999999-"})[0] == 416
    assert site.wait_temp_empty() == []


def test_client_disconnecting_mid_download_leaves_no_temp_file(site, big):
    _, token = big
    with socket.create_connection(("127.0.0.1", site.server.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET /api/share/{token}/download-all HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        received = sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
        assert len(os.listdir(site.temp_dir)) == 1  # mid-stream: the archive is on disk
    assert site.wait_temp_empty() == []


def test_temp_archive_of_a_worker_killed_mid_download_goes_when_its_replacement_starts(site, big):
    _, token = big
    server = LiveServer(site.instance, workers=1, database_url=site.app.config["SQLALCHEMY_DATABASE_URI"],
                        env={"DOWNLOAD_ALL_RATE_LIMIT": "1000 per minute"})
    try:
        assert _eventually(lambda: len(_children(server.process.pid)) == 1, timeout=20)  # forked after the bind
        (worker,) = _children(server.process.pid)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET /api/share/{token}/download-all HTTP/1.1\r\nHost: test\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            (left,) = os.listdir(site.temp_dir)  # mid-stream: the archive is on disk, its lock held
            os.kill(worker, signal.SIGKILL)
            _eventually(lambda: worker not in _children(server.process.pid) and _children(server.process.pid))
        # Nobody downloads anything again: the replacement worker's start-up removes what the dead one left.
        assert site.wait_temp_empty() == [], f"{left} outlived its worker"
        lock_dir = site.app.config["LOCK_DIR"]
        assert _eventually(lambda: not [name for name in os.listdir(lock_dir) if name.startswith("album-")])
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


# ---- parallel ranges: one build ---------------------------------------------------------------------------


def test_eight_parallel_ranges_get_a_correct_archive_from_a_single_build(site):
    """Like a download manager: the first range is still streaming (its 5 MB exceed what the kernel buffers
    for a reader with a small window) while the 7 others are fetched in parallel, by both workers."""
    album_id, token = site.album(photos=8, side=2000)
    path = f"/api/share/{token}/download-all"
    size = int(request(site, path, method="HEAD")[1]["Content-Length"])
    assert site.wait_temp_empty() == []
    builds_before = site.builds(album_id)
    bounds = [(i * size // 8, (i + 1) * size // 8 - 1) for i in range(8)]
    parts: dict[int, bytes] = {}

    with socket.socket() as first:
        first.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        first.settimeout(30)
        first.connect(("127.0.0.1", site.server.port))
        first.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nRange: bytes=0-{bounds[0][1]}\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += first.recv(4096)
        head, body = received.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 206")

        def fetch(index: int) -> None:
            start, end = bounds[index]
            status, _, part = request(site, path, {"Range": f"bytes={start}-{end}"})
            assert status == 206
            parts[index] = part

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(1, 8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        while len(body) < bounds[0][1] + 1:
            body += first.recv(65536)
        parts[0] = body
    archive = b"".join(parts[i] for i in range(8))
    assert len(archive) == size
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert opened.testzip() is None and len(opened.namelist()) == 8
    assert _eventually(lambda: site.builds(album_id) - builds_before == 1)  # logged as the builder ends
    assert site.wait_temp_empty() == []
    assert _eventually(lambda: site.downloads(token) == 1)  # only the range that ends the file counts


def test_aria2c_split_download_with_the_default_limit_is_never_refused_and_builds_once(site, tmp_path):
    album_id, token = site.album(photos=8, side=1000)
    default_server = LiveServer(site.instance, database_url=site.app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        url = f"{default_server.url}/api/share/{token}/download-all"
        result = run("aria2c", "-x", "8", "-s", "8", "-k", "1M", "--max-download-limit=2M",
                     "--console-log-level=warn", "-d", tmp_path, "-o", "split.zip", url, check=False)
        # A refusal is aria2c's "status=429"; a bare "429" also matches a speed such as "DL:429KiB".
        refused = re.search(r"status=429\b", result.stdout + result.stderr)
        assert result.returncode == 0 and refused is None, result.stdout[-2000:]
        assert _eventually(lambda: site.builds(album_id) == 1)  # logged as the builder ends
        curl("-o", tmp_path / "whole.zip", url)
    finally:
        default_server.stop()
    assert sha256(tmp_path / "split.zip") == sha256(tmp_path / "whole.zip")
    assert run("unzip", "-tq", tmp_path / "split.zip").returncode == 0
    assert site.wait_temp_empty() == []


# ---- counting ------------------------------------------------------------------------------------------------


def test_download_count_under_gunicorn_counts_finished_downloads_only(site, tmp_path):
    _, token = site.album(photos=2, side=800)
    photo_url = site.url(token, f"download/{_first_photo_id(site, token)}")
    curl("-I", site.url(token))
    curl("-I", photo_url)
    curl("-r", "0-99", "-o", tmp_path / "head", site.url(token))
    assert site.downloads(token) == 0
    curl("-o", tmp_path / "photo.jpg", photo_url)
    curl("-o", tmp_path / "all.zip", site.url(token))
    assert _eventually(lambda: site.downloads(token) == 2)


def test_visitors_who_hang_up_after_12_kb_start_downloads_but_never_finish_them(site, tmp_path):
    _, token = site.album(photos=1, side=1500)
    path = f"/api/share/{token}/download/{_first_photo_id(site, token)}"
    size = int(request(site, path, method="HEAD")[1]["Content-Length"])
    assert size > 2_000_000

    def hang_up_after_12_kb() -> bytes:
        """Read the headers and about 12 KB of the body, then close with the rest unread: Linux resets."""
        with socket.create_connection(("127.0.0.1", site.server.port), timeout=30) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
            received = b""
            while len(received) < 12 * 1024:
                received += sock.recv(12 * 1024 - len(received))
        return received[:12]

    def read_all_slowly() -> int:
        """A slow phone: the kernel has the whole file queued long before this client has taken it in."""
        with socket.create_connection(("127.0.0.1", site.server.port), timeout=30) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
            received = 0
            while chunk := sock.recv(32 * 1024):
                received += len(chunk)
                time.sleep(0.01)
        return received

    visitors = 50
    with ThreadPoolExecutor(max_workers=10) as pool:  # gunicorn serves 2 × 4 at once here
        assert set(pool.map(lambda _: hang_up_after_12_kb(), range(visitors))) == {b"HTTP/1.1 200"}
    assert _eventually(lambda: site.started(token) == visitors, timeout=30)
    assert site.downloads(token) == 0
    assert read_all_slowly() > size
    for i in range(3):
        curl("-o", tmp_path / f"photo{i}.jpg", site.server.url + path)
        assert (tmp_path / f"photo{i}.jpg").stat().st_size == size
    assert _eventually(lambda: site.downloads(token) == 4) and site.started(token) == visitors + 4


def _eventually(check, timeout: float = 5) -> bool:
    """The count is written as gunicorn closes the body, just after the client has its last byte."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()
