"""Benchmark the download engine against plain tools doing the same work, and print ratios.

    .venv/bin/python bench/bench_downloads.py                      # 500 photos of 2 to 8 MB (about 2.5 GB)
    .venv/bin/python bench/bench_downloads.py --photos 50 --mb 2   # a quick smoke run

On a generated album it measures:
- "Download all" through gunicorn (deploy/gunicorn.conf.py: gthread workers), fetched by curl: total time and
  time to first byte, against `zip -0 -r` of the same files (the same work, written to disk) and `cat` of
  them (reading only); then, over a raw socket, the time to the first *body* byte and the total of a
  never-built version, whole and as a range from 90 % (the archive streams while it is built); every timed
  download is of a never-built version (an archive left lingering, ARCHIVE_LINGER_SECONDS, is removed first as
  the sweeper would), and one more of the lingering archive shows what a reconnection costs;
- side by side, interleaved round by round: a never-built download (curl, then a raw socket), how long its
  build went on after it, the same archive built, nginx sending a copy of it and `cat` of the photos to a
  file, with the machine's busy CPU time for each (the client runs on the same cores);
- `aria2c -x 8 -s 8` of a never-built version: how many builds the server logged, and whether the file equals
  the server's own archive (compared with cmp while it lingers);
- the peak resident memory of the gunicorn worker while it builds and streams the archive (sampled, and the
  kernel's high-water mark), which must not grow with the album's size;
- single-photo Range throughput (whole-photo ranges and 64 KiB ranges over one keep-alive connection)
  against nginx serving the same file with sendfile.

Photos are small real JPEGs padded with random bytes after their end marker: photo-sized, incompressible,
and cheap to generate. Everything runs on 127.0.0.1, in a temporary folder that is removed afterwards;
servers are stopped whatever happens, and the whole run is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=500, help="photos in the album (default 500)")
    parser.add_argument("--min-mb", type=float, default=2, help="smallest photo in MB (default 2)")
    parser.add_argument("--max-mb", type=float, default=8, help="largest photo in MB (default 8)")
    parser.add_argument("--mb", type=float, help="every photo this size in MB (sets --min-mb and --max-mb)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each timing; the median is shown")
    parser.add_argument("--range-requests", type=int, default=300, help="64 KiB range requests per server")
    parser.add_argument("--timeout", type=int, default=1800, help="abort the whole run after this many seconds")
    parser.add_argument("--workdir", type=Path, help="where to generate the album (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder afterwards")
    parser.add_argument("--cold", action="store_true",
                        help="also time a never-built version with the page cache dropped (root only)")
    parser.add_argument("--bulk", action="store_true",
                        help="write the photos and their rows directly, without thumbnails (for 5,000-photo albums)")
    args = parser.parse_args()
    if args.mb:
        args.min_mb = args.max_mb = args.mb
    return args


# ---- the album ------------------------------------------------------------------------------------------


def make_album(instance: Path, photos: int, min_mb: float, max_mb: float) -> tuple[str, int, Path]:
    """Create the album through the app's own code; returns (share token, largest photo id, originals dir)."""
    from PIL import Image

    from photoshare import albums, create_app
    from photoshare.access import create_share_link
    from photoshare.auth import create_user
    from photoshare.extensions import db

    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "MAX_UPLOAD_MB": int(max_mb) + 2})
    rng = random.Random(20240601)
    base = io.BytesIO()
    Image.frombytes("RGB", (640, 480), rng.randbytes(640 * 480 * 3)).save(base, "JPEG", quality=90)
    with app.app_context():
        db.create_all()
        album = albums.create_album(create_user("bench@example.com", "bench password"), "Benchmark album")
        largest = (0, None)
        for index in range(photos):
            size = int(rng.uniform(min_mb, max_mb) * MB)
            data = base.getvalue() + os.urandom(max(0, size - base.tell()))
            photo = albums.add_photo(album, f"IMG_{index:05d}.jpg", io.BytesIO(data), commit=False)
            largest = max(largest, (size, photo), key=lambda item: item[0])
            if index % 50 == 49:
                print(f"  generated {index + 1}/{photos} photos", flush=True)
        albums.refresh_version(album)
        token = create_share_link(album).token
        largest_id = largest[1].id
        db.session.remove()
        db.engine.dispose()
    return token, largest_id, Path(app.config["UPLOAD_DIR"]) / "originals"


def make_bulk_album(instance: Path, photos: int, min_mb: float, max_mb: float) -> tuple[str, int, Path]:
    """Like make_album, but the originals and rows are written directly (no image checks, no thumbnails): the
    archive needs only the files, their sizes, sha256s and CRC-32s. Minutes saved on 5,000 photos."""
    import hashlib
    import uuid
    import zlib

    from photoshare import albums, create_app
    from photoshare.access import create_share_link
    from photoshare.auth import create_user
    from photoshare.extensions import db
    from photoshare.models import Photo

    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench"})
    rng = random.Random(20240601)
    originals = Path(app.config["UPLOAD_DIR"]) / "originals"
    originals.mkdir(parents=True, exist_ok=True)
    moment = datetime(2024, 6, 1, 12, 0, 0)
    with app.app_context():
        db.create_all()
        album = albums.create_album(create_user("bench@example.com", "bench password"), "Benchmark album")
        for index in range(photos):
            data = os.urandom(int(rng.uniform(min_mb, max_mb) * MB))
            stored = uuid.uuid4().hex + ".jpg"
            (originals / stored).write_bytes(data)
            album.photos.append(Photo(position=index, original_filename=f"IMG_{index:05d}.jpg", stored_name=stored,
                                      size=len(data), sha256=hashlib.sha256(data).hexdigest(), crc32=zlib.crc32(data),
                                      content_type="image/jpeg", width=4000, height=3000, uploaded_at=moment,
                                      has_location=False))  # checked, as at upload: no older-photo scan
        albums.refresh_version(album)
        token = create_share_link(album).token
        largest_id = max(album.photos, key=lambda photo: photo.size).id
        db.session.remove()
        db.engine.dispose()
    return token, largest_id, originals


# ---- servers --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def start_gunicorn(instance: Path, port: int, log: Path, root: Path = ROOT) -> subprocess.Popen:
    """gunicorn serving the code at `root` (this checkout, or another's: bench_before_after.py)."""
    env = {
        **os.environ,
        "PHOTOSHARE_INSTANCE": str(instance),
        "SECRET_KEY": "bench",
        "DOWNLOAD_ALL_RATE_LIMIT": "100000 per minute",
        "GUNICORN_WORKERS": "1",  # one worker, so its memory is the one measured
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=root, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    wait_for_port(port, process)
    return process


def start_nginx(root: Path, workdir: Path, port: int) -> subprocess.Popen | None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        print("nginx is not installed (apt-get install -y nginx-light): skipping the nginx comparison")
        return None
    prefix = workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush off;  # on, it holds back the end of small keep-alive responses for 40 ms
    keepalive_requests 100000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
""")
    process = subprocess.Popen(
        [nginx, "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return process


def worker_pids(master: int) -> list[int]:
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """Samples the workers' resident memory every 20 ms while a download runs."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak_kib, self._stop = pids, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                try:
                    self.peak_kib = max(self.peak_kib, memory_kib(pid, "VmRSS"))
                except OSError:
                    pass
            self._stop.wait(0.02)


# ---- measurements ---------------------------------------------------------------------------------------


@dataclass
class Timing:
    total: float
    ttfb: float = 0.0
    size: int = 0


def settle() -> None:
    """Before each timed run, outside its time: write out the dirty pages of earlier steps (the album just
    generated, the previous round's archive or copy), which would otherwise be flushed during the run and count
    against whichever tool happens to run then."""
    os.sync()


def timed(command: list[str], timeout: float, **kwargs) -> float:
    settle()
    started = time.perf_counter()
    subprocess.run(command, check=True, timeout=timeout, **kwargs)
    return time.perf_counter() - started


def curl_download(url: str, timeout: float) -> Timing:
    settle()
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", "-o", "/dev/null", "-w",
         "%{time_starttransfer} %{time_total} %{size_download}", url],
        check=True, capture_output=True, text=True, timeout=timeout,
    )
    ttfb, total, size = result.stdout.split()
    return Timing(float(total), float(ttfb), int(float(size)))


def range_throughput(port: int, path: str, size: int, requests: int, span: int | None) -> tuple[float, float]:
    """(MB/s, requests/s) over one keep-alive connection: `span`-byte ranges at random offsets, or whole-file
    ranges (`bytes=0-`) when span is None."""
    rng = random.Random(7)
    buffer = bytearray(size)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    moved = 0
    started = time.perf_counter()
    for _ in range(requests):
        start = 0 if span is None else rng.randrange(0, size - span)
        header = "bytes=0-" if span is None else f"bytes={start}-{start + span - 1}"
        connection.request("GET", path, headers={"Range": header})
        response = connection.getresponse()
        if response.status != 206:
            raise RuntimeError(f"{path}: {response.status} for Range {header}")
        view = memoryview(buffer)
        while got := response.readinto(view):
            view = view[got:]
            moved += got
        response.close()
    elapsed = time.perf_counter() - started
    connection.close()
    return moved / MB / elapsed, requests / elapsed


def raw_download(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 600) -> Timing:
    """GET over a raw socket: total time, time to the first *body* byte (headers alone prove nothing about a
    body that waits for its bytes) and body size; the body is counted, not kept."""
    settle()
    lines = [f"GET {path} HTTP/1.1", "Host: bench", "Connection: close",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    buffer = bytearray(1 << 20)
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received, first_body, body = b"", 0.0, 0
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"{path}: closed before the headers")
            received += chunk
        head, rest = received.split(b"\r\n\r\n", 1)
        if not head.split()[1].startswith(b"20"):
            raise RuntimeError(f"{path}: {head.splitlines()[0]!r}")
        body = len(rest)
        if body:
            first_body = time.perf_counter() - started
        while got := sock.recv_into(buffer):
            if not body:
                first_body = time.perf_counter() - started
            body += got
    return Timing(time.perf_counter() - started, first_body, body)


def wait_empty(folder: Path, seconds: float = 30) -> None:
    """Until the temp archive of the last download is gone, so the next one is of a never-built version: an
    archive nobody uses any more is removed as the sweeper would (else it lingers ARCHIVE_LINGER_SECONDS)."""
    from photoshare.delivery.archive_files import remove_stale

    deadline = time.monotonic() + seconds
    while os.listdir(folder) and time.monotonic() < deadline:
        remove_stale(folder, folder.parent / "locks")
        time.sleep(0.02)


def built_count(log: Path) -> int:
    """How many archive builds the server logged so far."""
    return log.read_text(errors="replace").count("built archive")


def wait_built(log: Path, count: int, timeout: float) -> None:
    """Until the server logged `count` archive builds."""
    deadline = time.monotonic() + timeout
    while built_count(log) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def aria2c_download(url: str, out: Path, log: Path, timeout: float) -> tuple[float, int]:
    """`aria2c -x 8 -s 8` of a never-built version: (seconds, archive builds the server logged meanwhile)."""
    before = built_count(log)
    seconds = timed(["aria2c", "-x", "8", "-s", "8", "-q", "--file-allocation=none", "--allow-overwrite=true",
                     "--auto-file-renaming=false", "-d", str(out.parent), "-o", out.name, url], timeout)
    wait_built(log, before + 1, 60)  # the builder (idle priority) logs as it ends, maybe after the last byte
    time.sleep(0.5)  # a second build would have logged by now too
    return seconds, built_count(log) - before


def drop_caches() -> bool:
    """Empty the page cache (root only): the photos are then read from the disk, as on a server that has not
    served the album lately."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def cold_caches(instance: Path, port: int, path: str, files: list[Path], archive_size: int, rounds: int,
                deadline: float, workdir: Path) -> None:
    """A never-built version with the photos only on disk, against `cat` of the same cold files to a file."""
    if not drop_caches():
        print("  cold caches: /proc/sys/vm/drop_caches is not writable (run as root): skipped")
        return
    full, ranged, cats = [], [], []
    out = workdir / "cold.out"
    for _ in range(rounds):
        wait_empty(instance / "tmp")
        drop_caches()
        full.append(raw_download(port, path))
        wait_empty(instance / "tmp")
        drop_caches()
        ranged.append(raw_download(port, path, {"Range": f"bytes={archive_size * 9 // 10}-"}))
        drop_caches()
        with out.open("wb") as sink:
            cats.append(timed(["cat", *map(str, files)], deadline, stdout=sink))
        out.unlink()
    print("  cold page cache (dropped before each run), never-built version, raw socket:")
    print(f"    whole archive: first byte {median([t.ttfb for t in full]) * 1000:10.1f} ms, "
          f"total {median([t.total for t in full]):.2f} s")
    print(f"    range at 90 %: first byte {median([t.ttfb for t in ranged]) * 1000:10.1f} ms, "
          f"total {median([t.total for t in ranged]):.2f} s")
    print(f"    cat > file, cold: {median(cats):.2f} s; ratio never-built download-all / cat > file "
          f"{median([t.total for t in full]) / median(cats):6.2f}")


def busy_core_seconds() -> float:
    """CPU time the whole machine spent busy (every process and the kernel's threads), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def with_cpu(measure: Callable[[], Timing | float]) -> tuple[float, float]:
    """(seconds, busy core-seconds of the machine meanwhile) of one run of `measure` (after settle())."""
    settle()
    before = busy_core_seconds()
    result = measure()
    cpu = busy_core_seconds() - before
    return (result.total if isinstance(result, Timing) else result), cpu


def side_by_side(port: int, path: str, instance: Path, files: list[Path], rounds: int, deadline: float,
                 workdir: Path, nginx_port: int | None, nginx_root: Path) -> None:
    """Each round, one after the other on the same warm files: a never-built download by curl, one by a raw
    socket (and how long its build, at idle CPU priority, went on after it), the same archive again
    while it lingers (built), nginx sending a copy of it (what any server costs over loopback), and `cat` of
    the photos to a file (coreutils copies with copy_file_range: the builder's own work). Interleaved, so that
    the machine's drift (`cat` to a file takes 1 to 9 s of kernel time on the same files) hits all alike; the
    ratios are medians of each round's."""
    copy = nginx_root / "archive-copy.zip"
    out = workdir / "side.out"
    log = workdir / "gunicorn.log"
    rows: list[dict[str, tuple[float, float]]] = []
    for _ in range(rounds):
        row: dict[str, tuple[float, float]] = {}
        wait_empty(instance / "tmp")
        row["never curl"] = with_cpu(lambda: curl_download(f"http://127.0.0.1:{port}{path}", deadline))
        wait_empty(instance / "tmp")
        builds = built_count(log)
        row["never"] = with_cpu(lambda: raw_download(port, path))
        waited = time.perf_counter()
        wait_built(log, builds + 1, deadline)  # the builder, at idle priority, may end after the download
        row["build after"] = (time.perf_counter() - waited, 0.0)
        row["built"] = with_cpu(lambda: raw_download(port, path))
        if nginx_port is not None:
            if not copy.exists():
                shutil.copyfile(next((instance / "tmp").glob("album-*.zip")), copy)
            row["nginx"] = with_cpu(lambda: raw_download(nginx_port, f"/{copy.name}"))
        # The archive goes first, so that `cat` writes into the memory it freed, as the next round's build
        # writes into what `cat` freed: on this virtual machine, memory freed a while ago goes back to the
        # host, and touching it again costs `cat` (or a build) several seconds of kernel time.
        wait_empty(instance / "tmp")
        with out.open("wb") as sink:
            row["cat"] = with_cpu(lambda: timed(["cat", *map(str, files)], deadline, stdout=sink))
        out.unlink()
        rows.append(row)
    copy.unlink(missing_ok=True)
    labels = {"never curl": "never-built download-all, curl", "never": "never-built download-all",
              "build after": "its build ended after it, by",
              "built": "the lingering archive (built)",
              "nginx": "nginx sending the same archive", "cat": "cat > file"}
    print(f"  side by side, interleaved in each of {rounds} rounds (raw socket client; machine CPU includes it):")
    for key, label in labels.items():
        if key in rows[0]:
            seconds = [row[key][0] for row in rows]
            print(f"    {label:32s} {median(seconds):6.2f} s (runs {min(seconds):.2f} to {max(seconds):.2f}), "
                  f"machine busy {median([row[key][1] for row in rows]):5.2f} core-s")
    for top, bottom in (("never", "cat"), ("never curl", "cat"), ("built", "cat"), ("nginx", "cat"),
                        ("never", "nginx")):
        if top in rows[0] and bottom in rows[0]:
            ratios = [row[top][0] / row[bottom][0] for row in rows]
            print(f"    ratio {labels[top]} / {labels[bottom]}: {median(ratios):.2f} "
                  f"(rounds {min(ratios):.2f} to {max(ratios):.2f})")


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    args = parse_args()

    def give_up(*_: object) -> None:
        raise TimeoutError(f"the benchmark ran over --timeout {args.timeout} s")

    signal.signal(signal.SIGALRM, give_up)  # servers and the work folder are still cleaned up
    signal.alarm(args.timeout)
    for tool in ("curl", "zip", "cat"):
        if shutil.which(tool) is None:
            print(f"{tool} is required")
            return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="photoshare-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        if not args.keep:
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        return run(args, workdir, cleanup)


def run(args: argparse.Namespace, workdir: Path, cleanup: ExitStack) -> int:
    instance = workdir / "instance"
    print(f"generating {args.photos} photos of {args.min_mb:g} to {args.max_mb:g} MB in {workdir} ...", flush=True)
    token, photo_id, originals = (make_bulk_album if args.bulk else make_album)(
        instance, args.photos, args.min_mb, args.max_mb)
    files = sorted(originals.iterdir())
    album_bytes = sum(path.stat().st_size for path in files)
    deadline = args.timeout

    port = free_port()
    gunicorn = start_gunicorn(instance, port, workdir / "gunicorn.log")
    cleanup.callback(stop, gunicorn)
    base = f"http://127.0.0.1:{port}/api/share/{token}"
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True, timeout=deadline)  # warm cache
    curl_download(base, 60)  # first request: imports, database connection
    workers = worker_pids(gunicorn.pid)
    baseline_kib = max((memory_kib(pid, "VmRSS") for pid in workers), default=0)

    print(f"album: {len(files)} photos, {album_bytes / MB:,.0f} MB; {args.rounds} rounds each, medians", flush=True)
    downloads: list[Timing] = []
    with RssSampler(workers) as sampler:
        for _ in range(args.rounds):  # each of a version no worker has built
            wait_empty(instance / "tmp")
            downloads.append(curl_download(f"{base}/download-all", deadline))
    hwm_kib = max((memory_kib(pid, "VmHWM") for pid in workers), default=0)
    archive_size = downloads[0].size
    time.sleep(0.5)
    left = os.listdir(instance / "tmp")  # lingering for the next connection (ARCHIVE_LINGER_SECONDS)
    warm = curl_download(f"{base}/download-all", deadline)  # the lingering archive, built already
    path = f"/api/share/{token}/download-all"
    cold_full, cold_range = [], []
    for _ in range(args.rounds):  # each of a version no worker has built (the last reader removed it)
        wait_empty(instance / "tmp")
        cold_full.append(raw_download(port, path))
        wait_empty(instance / "tmp")
        cold_range.append(raw_download(port, path, {"Range": f"bytes={archive_size * 9 // 10}-"}))

    aria = None
    if shutil.which("aria2c"):
        wait_empty(instance / "tmp")
        aria_out = workdir / "aria2c.zip"
        aria_seconds, aria_builds = aria2c_download(f"http://127.0.0.1:{port}{path}", aria_out,
                                                    workdir / "gunicorn.log", deadline)
        built = next((instance / "tmp").glob("album-*.zip"), None)  # still lingering: the server's own bytes
        same = built is not None and subprocess.run(["cmp", "-s", str(aria_out), str(built)]).returncode == 0
        import zipfile
        with zipfile.ZipFile(aria_out) as archive:
            aria = (aria_seconds, aria_builds, same, len(archive.namelist()) == len(files))
        aria_out.unlink()

    zip_times, cat_times, cat_disk_times = [], [], []
    out = workdir / "baseline.out"
    for _ in range(args.rounds):
        zip_times.append(timed(["zip", "-0", "-r", "-q", str(out), "originals"], deadline, cwd=originals.parent))
        out.unlink()
        cat_times.append(timed(["cat", *map(str, files)], deadline, stdout=subprocess.DEVNULL))
        with out.open("wb") as sink:  # what building the archive costs at least: the same bytes written to disk
            cat_disk_times.append(timed(["cat", *map(str, files)], deadline, stdout=sink))
        out.unlink()

    total = median([d.total for d in downloads])
    ttfb = median([d.ttfb for d in downloads])
    zip_time, cat_time, cat_disk_time = median(zip_times), median(cat_times), median(cat_disk_times)
    archive_mb = archive_size / MB
    print()
    print("Download all (gunicorn, gthread, 1 worker, fetched by curl) vs the same bytes with plain tools")
    print(f"  archive                   {archive_mb:10,.1f} MB")
    print(f"  download-all total        {total:10.2f} s   ({archive_mb / total:,.0f} MB/s)")
    print(f"  time to first byte (curl) {ttfb:10.3f} s")
    print(f"  streaming after TTFB      {total - ttfb:10.2f} s   ({archive_mb / max(total - ttfb, 1e-9):,.0f} MB/s)")
    print(f"  zip -0 -r                 {zip_time:10.2f} s")
    print(f"  cat > file on disk        {cat_disk_time:10.2f} s")
    print(f"  cat > /dev/null           {cat_time:10.2f} s")
    print(f"  ratio download-all / zip -0 -r       {total / zip_time:6.2f}")
    print(f"  ratio download-all / cat > file      {total / cat_disk_time:6.2f}")
    print(f"  ratio download-all / cat > /dev/null {total / cat_time:6.2f}")
    print(f"  worker RSS before {baseline_kib / 1024:.1f} MB, peak sampled {sampler.peak_kib / 1024:.1f} MB, "
          f"high-water mark {hwm_kib / 1024:.1f} MB (album {album_bytes / MB:,.0f} MB)")
    print(f"  temp files left after the downloads: {len(left)} (lingering, ARCHIVE_LINGER_SECONDS)")
    print(f"  download-all of the lingering archive (built already): total {warm.total:.2f} s, "
          f"first byte {warm.ttfb * 1000:.1f} ms")
    full_first = median([t.ttfb for t in cold_full])
    range_first = median([t.ttfb for t in cold_range])
    print("  never-built version, raw socket (time to the first body byte, not the headers):")
    print(f"    whole archive: first byte {full_first * 1000:10.1f} ms, total {median([t.total for t in cold_full]):.2f} s")
    print(f"    range at 90 %: first byte {range_first * 1000:10.1f} ms, total {median([t.total for t in cold_range]):.2f} s")
    print(f"    ratio never-built download-all / cat > file {median([t.total for t in cold_full]) / cat_disk_time:6.2f}")
    if aria is not None:
        print(f"  aria2c -x 8 -s 8 of a never-built version: {aria[0]:.2f} s, builds {aria[1]}, "
              f"identical to the server's archive: {aria[2]}, every photo listed: {aria[3]}")
    else:
        print("  aria2c is not installed: skipping the download-manager check")

    # A worker that never planned this album version (started after the version was made): it loads the plan
    # kept on disk (plan_files.py) instead of planning before its first byte. /healthz first: the database
    # connection and imports are not what is measured.
    fresh_full, fresh_range = [], []
    for _ in range(args.rounds):
        for headers, timings in (({}, fresh_full), ({"Range": f"bytes={archive_size * 9 // 10}-"}, fresh_range)):
            stop(gunicorn)
            wait_empty(instance / "tmp")
            gunicorn = start_gunicorn(instance, port, workdir / "gunicorn.log")
            cleanup.callback(stop, gunicorn)
            subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/healthz"], check=False)
            timings.append(raw_download(port, path, headers))
    print("  a freshly started worker's first request of a never-built version (raw socket, first body byte):")
    print(f"    whole archive {median([t.ttfb for t in fresh_full]) * 1000:10.1f} ms, "
          f"range at 90 % {median([t.ttfb for t in fresh_range]) * 1000:10.1f} ms")

    if args.cold:
        cold_caches(instance, port, path, files, archive_size, args.rounds, deadline, workdir)

    nginx_port = free_port()
    nginx = start_nginx(originals.parent, workdir, nginx_port)
    if nginx is not None:
        cleanup.callback(stop, nginx)
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True, timeout=deadline)  # warm again
    side_by_side(port, path, instance, files, args.rounds, deadline, workdir,
                 nginx_port if nginx is not None else None, originals.parent)
    if nginx is not None:
        photo = next(path for path in files if path.stat().st_size == max(p.stat().st_size for p in files))
        size = photo.stat().st_size
        ours = f"/api/share/{token}/download/{photo_id}"
        theirs = f"/originals/{photo.name}"
        whole_requests = max(5, int(400 * MB / size))
        print()
        print(f"Single photo ({size / MB:.1f} MB), one keep-alive connection, vs nginx (sendfile) on the same file")
        results = {}
        for name, port_, path in (("photoshare", port, ours), ("nginx", nginx_port, theirs)):
            whole = range_throughput(port_, path, size, whole_requests, None)
            small = range_throughput(port_, path, size, args.range_requests, 64 * 1024)
            results[name] = (whole, small)
            print(f"  {name:10s} whole-photo ranges {whole[0]:8,.0f} MB/s   64 KiB ranges {small[1]:8,.0f} req/s")
        (ours_whole, ours_small), (nginx_whole, nginx_small) = results["photoshare"], results["nginx"]
        print(f"  ratio photoshare / nginx: whole-photo throughput {ours_whole[0] / nginx_whole[0]:.2f}, "
              f"64 KiB ranges per second {ours_small[1] / nginx_small[1]:.2f}")
    signal.alarm(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
