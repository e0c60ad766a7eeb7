"""What web size and location removal cost, side by side with what they replace.

    .venv/bin/python bench/bench_sizes.py              # 12 phone-sized photos (4000 x 3000 noise JPEGs with GPS)
    .venv/bin/python bench/bench_sizes.py --photos 4   # a smoke run

On a throw-away instance folder:

- adding a photo: images.render with the three renditions made now (view, thumbnail, web size from one decode)
  against the two made before (view, thumbnail), and the location-free copy (location.py) against a plain
  sha256 of the file (the cheapest read of it there is);
- "Download all" through gunicorn (curl, files in the page cache, medians of 3): original, location removed and
  web size, time to first byte and total, each against the original archive.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from photoshare import albums, create_app, location  # noqa: E402
from photoshare.access import create_share_link  # noqa: E402
from photoshare.auth import create_user  # noqa: E402
from photoshare.extensions import db  # noqa: E402
from photoshare.images import Rendition, render  # noqa: E402
from tests.conftest import LiveServer  # noqa: E402
from tests.location_support import XMP_PLACE, location_exif  # noqa: E402

ROUNDS = 3


def phone_photo(width: int, height: int) -> bytes:
    """A camera-sized JPEG of noise (it compresses like a real photo does not) with GPS in EXIF and XMP."""
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=location_exif(6), xmp=XMP_PLACE)
    return out.getvalue()


def best(seconds: list[float]) -> float:
    return statistics.median(seconds)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_adding(photo: bytes) -> None:
    two = [Rendition(1600, quality=85), Rendition(480)]
    three = [*two, Rendition(2048, quality=88, keep_profile=True)]
    before = best([timed(lambda: render(io.BytesIO(photo), two)) for _ in range(ROUNDS)])
    after = best([timed(lambda: render(io.BytesIO(photo), three)) for _ in range(ROUNDS)])
    sha = best([timed(lambda: hashlib.sha256(photo).hexdigest()) for _ in range(ROUNDS)])

    def clean() -> None:
        source = io.BytesIO(photo)
        location.write_patched(source, location.location_patches(source), io.BytesIO())

    cleaning = best([timed(clean) for _ in range(ROUNDS)])
    print(f"one {len(photo) / 1e6:.1f} MB photo, 4000 x 3000:")
    print(f"  renditions on upload: view + thumbnail {before * 1000:.0f} ms, + web size {after * 1000:.0f} ms"
          f"  ratio {after / before:.2f}")
    print(f"  location-free copy {cleaning * 1000:.1f} ms, sha256 of the file {sha * 1000:.1f} ms"
          f"  ratio {cleaning / sha:.2f}")


def curl_times(url: str, target: Path) -> tuple[float, float]:
    out = subprocess.run(["curl", "-s", "-o", str(target), "-w", "%{time_starttransfer} %{time_total}", url],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    first, total = (float(value) for value in out.split())
    return first, total


def bench_archives(instance: Path, photos: int, photo: bytes) -> None:
    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False})
    with app.app_context():
        db.create_all()
        album = albums.create_album(create_user("bench@example.com", "bench-password"), "Bench")
        for index in range(photos):
            data = photo if index == 0 else phone_photo(4000, 3000)
            albums.add_photo(album, f"IMG_{index:04d}.jpg", io.BytesIO(data), commit=False)
        albums.refresh_version(album)
        token = create_share_link(album).token  # removes the location
        kept = create_share_link(album, strip_location=False).token
    server = LiveServer(instance, env={"RATELIMIT_ENABLED": "false"}, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        base = f"{server.url}/api/share/{token}/download-all"
        kinds = {"original (location removed)": base, "web size": f"{base}?size=large"}
        kinds = {"original, location kept": f"{server.url}/api/share/{kept}/download-all", **kinds}
        results = {}
        for name, url in kinds.items():
            runs = [curl_times(url, instance / "out.zip") for _ in range(ROUNDS)]
            size = (instance / "out.zip").stat().st_size
            results[name] = (best([r[0] for r in runs]), best([r[1] for r in runs]), size)
        reference = results["original, location kept"]
        print(f"\"Download all\" of {photos} photos through gunicorn (medians of {ROUNDS}):")
        print(f"  {'archive':30} {'size':>9} {'first byte':>11} {'total':>9} {'total ratio':>12}")
        for name, (first, total, size) in results.items():
            print(f"  {name:30} {size / 1e6:7.1f}MB {first * 1000:9.0f}ms {total * 1000:7.0f}ms {total / reference[1]:12.2f}")
    finally:
        server.stop()
        with app.app_context():
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=12)
    args = parser.parse_args()
    photo = phone_photo(4000, 3000)
    bench_adding(photo)
    folder = Path(tempfile.mkdtemp(prefix="bench-sizes-"))
    try:
        instance = folder / "instance"
        instance.mkdir()
        bench_archives(instance, args.photos, photo)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
