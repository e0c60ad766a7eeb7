"""Background preparation benchmark: how long a 1,000-photo album takes to prepare, and what the ZIP cache
buys a visitor in time to first byte.

    .venv/bin/python bench/bench_prepare.py            # 1,000 photos of ~500 KB (about 500 MB)
    .venv/bin/python bench/bench_prepare.py --small    # 50 photos: a smoke run in a few seconds

Everything runs through a real gunicorn (gthread) in the embedded job mode, on a throw-away instance folder.
Photos are random bytes registered as album rows (the archive never decodes them): the upload path is not
what is measured here. Prints the times and these ratios:

- prepare time against `cat` of the same files (reading them is the floor) and against `zip -0 -r`;
- time to first byte of the synchronous "Download all" (builds first) against the prepared, cached link.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_album(instance: Path, photos: int, photo_kb: int) -> str:
    """An album of `photos` files and a share link on it; returns the share token."""
    from photoshare import albums, create_app
    from photoshare.access import create_share_link
    from photoshare.auth import create_user
    from photoshare.extensions import db
    from photoshare.models import Photo

    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False})
    with app.app_context():
        db.create_all()
        album = albums.create_album(create_user("bench@example.com", "bench-password"), "Bench album")
        originals = Path(app.config["UPLOAD_DIR"]) / "originals"
        originals.mkdir(parents=True, exist_ok=True)
        block = os.urandom(photo_kb * 1024)
        for i in range(photos):
            data = i.to_bytes(4, "big") + block[4:]  # distinct files, written fast
            stored = f"{uuid.uuid4().hex}.jpg"
            (originals / stored).write_bytes(data)
            album.photos.append(Photo(
                position=i, original_filename=f"IMG_{i:05d}.jpg", stored_name=stored, size=len(data),
                sha256=hashlib.sha256(data).hexdigest(), crc32=zlib.crc32(data), content_type="image/jpeg",
                width=1, height=1, taken_at=datetime(2024, 6, 1, 12, 0, 0),
            ))
        albums.refresh_version(album)
        return create_share_link(album).token


def request(method: str, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=600) as response:
        return response.status, response.read()


def first_byte(url: str) -> tuple[float, int]:
    """Seconds until the first body byte arrives, then drains the rest; returns (ttfb, bytes)."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        response.read(1)
        ttfb = time.perf_counter() - started
        total = 1
        while chunk := response.read(1 << 20):
            total += len(chunk)
    return ttfb, total


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--photo-kb", type=int, default=500)
    parser.add_argument("--small", action="store_true", help="50 photos of 100 KB: a quick smoke run")
    args = parser.parse_args()
    if args.small:
        args.photos, args.photo_kb = 50, 100

    root = Path(tempfile.mkdtemp(prefix="photoshare-bench-prepare-"))
    instance = root / "instance"
    server = None
    try:
        print(f"album: {args.photos} photos of {args.photo_kb} KB ({args.photos * args.photo_kb / 1024:.0f} MB)")
        token = make_album(instance, args.photos, args.photo_kb)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PHOTOSHARE_INSTANCE": str(instance), "SECRET_KEY": "bench", "BASE_URL": base,
               "RATELIMIT_ENABLED": "false"}
        for name in ("REDIS_URL", "CELERY_BROKER_URL"):
            env.pop(name, None)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", "--worker-class",
             "gthread", "--threads", "4", "--workers", "2", "--timeout", "600"],
            cwd=ROOT, env=env, stdout=(root / "gunicorn.log").open("wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"gunicorn did not start: {(root / 'gunicorn.log').read_text()[-2000:]}") from None
                time.sleep(0.1)

        for _ in range(4):  # warm both workers (imports, first connections) so they are not measured
            request("GET", f"{base}/api/share/{token}")
        originals = instance / "uploads" / "originals"
        cat_time = timed(["sh", "-c", "cat * > /dev/null"], originals)
        zip_time = timed(["zip", "-0", "-q", "-r", str(root / "reference.zip"), "."], originals)

        sync_ttfb, size = first_byte(f"{base}/api/share/{token}/download-all")  # builds before the first byte

        started = time.perf_counter()
        status, body = request("POST", f"{base}/api/share/{token}/prepare-download", b"")
        job = json.loads(body)
        while job["status"] not in ("ready", "failed"):
            time.sleep(0.05)
            job = json.loads(request("GET", f"{base}/api/share/{token}/download-status/{job['job_id']}")[1])
        prepare_time = time.perf_counter() - started
        if job["status"] != "ready":
            raise SystemExit(f"preparation failed: {job.get('error')}")

        cached_ttfb, cached_size = first_byte(job["download_url"])
        hit_started = time.perf_counter()
        status, body = request("POST", f"{base}/api/share/{token}/prepare-download", b"")
        hit_time = time.perf_counter() - hit_started
        assert status == 200 and json.loads(body)["status"] == "ready", "second prepare should be a cache hit"
        assert cached_size == size, "prepared and synchronous archives differ in size"

        mb = size / 1e6
        print(f"archive: {mb:.0f} MB")
        print(f"cat of the photos:            {cat_time:8.2f} s")
        print(f"zip -0 -r of the photos:      {zip_time:8.2f} s")
        print(f"prepare (queued to ready):    {prepare_time:8.2f} s  ({mb / prepare_time:.0f} MB/s)")
        print(f"prepare again (cache hit):    {hit_time * 1000:8.1f} ms")
        print(f"first byte, uncached download-all: {sync_ttfb * 1000:8.1f} ms")
        print(f"first byte, prepared cached link:  {cached_ttfb * 1000:8.1f} ms")
        print("ratios:")
        print(f"  prepare / cat            = {prepare_time / cat_time:6.2f}x")
        print(f"  prepare / zip -0         = {prepare_time / zip_time:6.2f}x")
        print(f"  uncached / cached TTFB   = {sync_ttfb / cached_ttfb:6.1f}x")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
