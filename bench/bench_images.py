"""Image work in bounded memory: each gunicorn worker's peak RSS while visitors open the large view of an
88-megapixel PNG for the first time, and while the owner uploads it.

    .venv/bin/python bench/bench_images.py                  # 11000 x 8000 PNG, 16 parallel views, 4 uploads
    .venv/bin/python bench/bench_images.py --small          # 3000 x 2000: a smoke run in seconds

gunicorn runs with deploy/gunicorn.conf.py (gthread, 2 workers on this machine, 16 threads each) on a throw-away
instance folder; a fresh server per phase, so that each worker's VmHWM (/proc/<pid>/status) is that phase's peak:

- views: the photo is added, then its thumbnail and view are removed (a photo from before they were made at
  upload), and N visitors ask for the view at once; counts how often the original was decoded (the app's log);
- uploads: N owners' requests upload the PNG at once (each makes the view and thumbnail from one decode).

Prints each worker's peak against the 400 MB the issue asks for, and seconds per phase.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from PIL import Image  # noqa: E402

from photoshare import albums, create_app  # noqa: E402
from photoshare.access import create_share_link  # noqa: E402
from photoshare.auth import create_user  # noqa: E402
from photoshare.extensions import db  # noqa: E402
from tests.conftest import LiveServer, csrf_token  # noqa: E402

OWNER, PASSWORD = "bench@example.com", "bench-password"
TARGET_MB = 400


def gradient_png(width: int, height: int) -> bytes:
    """Many pixels in few bytes: a smooth RGB picture compresses to a few hundred KB."""
    image = Image.linear_gradient("L").resize((width, height))
    rgb = Image.merge("RGB", (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image))
    out = io.BytesIO()
    rgb.save(out, "PNG", compress_level=9)
    return out.getvalue()


def prepare(instance: Path, png: bytes) -> tuple[str, int, int]:
    """An owner, an album with the PNG as an older photo (no thumbnail or view yet); (token, album, photo)."""
    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False})
    with app.app_context():
        db.create_all()
        album = albums.create_album(create_user(OWNER, PASSWORD), "Bench album")
        photo = albums.add_photo(album, "panorama.png", io.BytesIO(png))
        uploads = Path(app.config["UPLOAD_DIR"])
        for folder in ("thumbs", "views"):
            shutil.rmtree(uploads / folder, ignore_errors=True)
        return create_share_link(album).token, album.id, photo.id


def worker_peaks(server: LiveServer) -> list[int]:
    """Each worker's peak resident memory so far (VmHWM), in MB."""
    master = server.process.pid
    peaks = []
    for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) // 1024)
    return sorted(peaks)


def start(instance: Path) -> LiveServer:
    env = {"RATELIMIT_ENABLED": "false", "GUNICORN_ACCESS_LOG": "/dev/null"}
    return LiveServer(instance, env=env, config_file=ROOT / "deploy" / "gunicorn.conf.py")


def views_phase(instance: Path, token: str, photo_id: int, count: int) -> tuple[list[int], float, str]:
    server = start(instance)
    try:
        url = f"{server.url}/s/{token}/view/{photo_id}"
        started = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            answers = list(pool.map(lambda _: requests.get(url, timeout=600), range(count)))
        elapsed = time.perf_counter() - started
        statuses = sorted({a.status_code for a in answers})
        decodes = server.log.read_text().count(" from originals/")
        return worker_peaks(server), elapsed, f"statuses {statuses}, originals decoded: {decodes}"
    finally:
        server.stop()


def uploads_phase(instance: Path, album_id: int, png: bytes, count: int) -> tuple[list[int], float, str]:
    server = start(instance)
    try:
        sessions = [login(server.url) for _ in range(count)]
        tokens = [csrf_token(s.get(f"{server.url}/albums/{album_id}", timeout=30).text) for s in sessions]

        def upload(i: int) -> requests.Response:
            return sessions[i].post(
                f"{server.url}/albums/{album_id}/photos", files={"photos": (f"upload-{i}.png", png)},
                headers={"Accept": "application/json", "X-CSRFToken": tokens[i]}, timeout=600,
            )

        started = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            answers = list(pool.map(upload, range(count)))
        elapsed = time.perf_counter() - started
        saved = sum(a.status_code == 200 and a.json()["saved"] for a in answers)
        return worker_peaks(server), elapsed, f"{saved}/{count} saved"
    finally:
        server.stop()


def login(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    session.post(f"{base}/login", data={"email": OWNER, "password": PASSWORD, "csrf_token": csrf_token(page)},
                 timeout=30)
    return session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="3000 x 2000 instead of 11000 x 8000")
    parser.add_argument("--views", type=int, default=16, help="parallel first views")
    parser.add_argument("--uploads", type=int, default=4, help="parallel uploads")
    args = parser.parse_args()
    width, height = (3000, 2000) if args.small else (11000, 8000)
    png = gradient_png(width, height)
    print(f"PNG {width} x {height} ({width * height / 1e6:.0f} megapixels, {len(png) / 1024:.0f} KB), "
          f"{width * height * 3 / 1e6:.0f} MB decoded as RGB")
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        instance = Path(tmp) / "instance"
        token, album_id, photo_id = prepare(instance, png)
        rows = [
            (f"{args.views} parallel first views", *views_phase(instance, token, photo_id, args.views)),
            (f"{args.uploads} parallel uploads", *uploads_phase(instance, album_id, png, args.uploads)),
        ]
    print(f"\n| phase | worker peak RSS (MB) | under {TARGET_MB} MB | seconds | notes |")
    print("| --- | --- | --- | --- | --- |")
    ok = True
    for name, peaks, seconds, notes in rows:
        under = max(peaks) < TARGET_MB
        ok &= under
        print(f"| {name} | {' / '.join(map(str, peaks))} | {'yes' if under else 'NO'} | {seconds:.1f} | {notes} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
