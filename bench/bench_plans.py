"""Benchmark a selection and a part against plain tools doing the same work, and print ratios.

    .venv/bin/python bench/bench_plans.py                    # 100 of 2,000 photos of 0.5 MB; part 2 of 3
    .venv/bin/python bench/bench_plans.py --photos 300 --mb 0.2 --select 30   # a quick smoke run

On a generated album (bench_downloads.make_bulk_album: random bytes as photos, rows written directly) served
by gunicorn (deploy/gunicorn.conf.py, one worker) with ARCHIVE_PART_MB set so that the album comes in 3 parts:
- the API calls that name the plans: POST of a selection of --select photos chosen at random, and the album
  JSON that lists the parts (both plan the whole album);
- the selection's ZIP and part 2 of 3, fetched by curl (time to first byte, total) while the temp archive of
  their version exists or is built, and over a raw socket for a never-built version (the first body byte);
- side by side with `cat` of the same photo files to a file and `zip -0` of them.
Files are in the page cache (a `cat` warms them first). Everything is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_downloads import (  # noqa: E402
    MB,
    curl_download,
    free_port,
    make_bulk_album,
    median,
    raw_download,
    start_gunicorn,
    stop,
    timed,
    wait_empty,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=2000, help="photos in the album (default 2,000)")
    parser.add_argument("--mb", type=float, default=0.5, help="size of each photo in MB (default 0.5)")
    parser.add_argument("--select", type=int, default=100, help="photos in the selection (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each timing; the median is shown")
    parser.add_argument("--timeout", type=int, default=1800, help="abort the whole run after this many seconds")
    return parser.parse_args()


def request(method: str, url: str, body: object | None = None) -> tuple[float, dict]:
    """(seconds, JSON answer) of one API call."""
    data = json.dumps(body).encode() if body is not None else None
    call = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(call, timeout=120) as response:
        answer = json.loads(response.read())
    return time.perf_counter() - started, answer


def album_files(instance: Path) -> list[tuple[int, Path]]:
    """(photo id, original file) of every photo, in album order."""
    from photoshare import albums, create_app
    from photoshare.extensions import db
    from photoshare.models import Album

    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench"})
    with app.app_context():
        album = db.session.execute(db.select(Album)).scalar_one()
        found = [(p.id, Path(app.config["UPLOAD_DIR"]) / albums.photo_key(p)) for p in album.photos]
        db.session.remove()
        db.engine.dispose()
    return found


def measure(name: str, url: str, port: int, files: list[Path], workdir: Path, tmp: Path, rounds: int,
            timeout: int) -> None:
    """Print the download's times beside `cat` and `zip -0` of the same photo files."""
    path = url.split(f"127.0.0.1:{port}", 1)[1]
    warm = [curl_download(url, timeout) for _ in range(rounds)]
    cold = []
    for _ in range(rounds):
        wait_empty(tmp)
        cold.append(raw_download(port, path, timeout=timeout))
    out = workdir / "reference.out"
    cat_times, zip_times = [], []
    listing = workdir / "files.txt"
    listing.write_text("\n".join(str(f.relative_to(files[0].parent.parent)) for f in files) + "\n")
    for _ in range(rounds):
        with out.open("wb") as sink:
            cat_times.append(timed(["cat", *map(str, files)], timeout, stdout=sink))
        out.unlink()
        with listing.open("rb") as names:
            zip_times.append(timed(["zip", "-0", "-q", "-@", str(out)], timeout, stdin=names,
                                   cwd=files[0].parent.parent))
        out.unlink()
    size = warm[0].size
    total, ttfb = median([t.total for t in warm]), median([t.ttfb for t in warm])
    cold_total, cold_first = median([t.total for t in cold]), median([t.ttfb for t in cold])
    cat_time, zip_time = median(cat_times), median(zip_times)
    print(f"\n{name}: {len(files)} photos, {size / MB:,.1f} MB")
    print(f"  curl, total                    {total:8.3f} s   time to first byte {ttfb * 1000:8.1f} ms")
    print(f"  never built (raw socket) total {cold_total:8.3f} s   first body byte    {cold_first * 1000:8.1f} ms")
    print(f"  cat > file                     {cat_time:8.3f} s")
    print(f"  zip -0                         {zip_time:8.3f} s")
    print(f"  ratio total / cat > file       {total / cat_time:8.2f}   never built {cold_total / cat_time:.2f}")
    print(f"  ratio total / zip -0           {total / zip_time:8.2f}   never built {cold_total / zip_time:.2f}")


def run(args: argparse.Namespace, workdir: Path, cleanup: ExitStack) -> int:
    instance = workdir / "instance"
    print(f"generating {args.photos} photos of {args.mb:g} MB in {workdir} ...", flush=True)
    token, _largest, _originals = make_bulk_album(instance, args.photos, args.mb, args.mb)
    photos = album_files(instance)
    album_bytes = sum(path.stat().st_size for _id, path in photos)
    # Three parts: a third of the album and room for the ZIP's headers and one photo more.
    os.environ["ARCHIVE_PART_MB"] = f"{(album_bytes / 3 + 2 * args.mb * MB + args.photos * 200) / MB:.3f}"
    port = free_port()
    gunicorn = start_gunicorn(instance, port, workdir / "gunicorn.log")
    cleanup.callback(stop, gunicorn)
    base = f"http://127.0.0.1:{port}/api/share/{token}"
    subprocess.run(["cat", *(str(p) for _i, p in photos)], stdout=subprocess.DEVNULL, check=True)  # page cache
    request("GET", base)  # imports, database connection

    listing_times, answer = [], {}
    for _ in range(args.rounds):
        seconds, answer = request("GET", base)
        listing_times.append(seconds)
    parts = answer["archives"]
    if len(parts) != 3:
        print(f"expected 3 parts, the album has {len(parts)}")
        return 1
    chosen = random.Random(7).sample(range(len(photos)), args.select)
    ids = [photos[i][0] for i in chosen]
    select_times, selection = [], {}
    for _ in range(args.rounds):
        seconds, selection = request("POST", f"{base}/selections", {"photo_ids": ids})
        select_times.append(seconds)
    print(f"album: {len(photos)} photos, {album_bytes / MB:,.0f} MB, ARCHIVE_PART_MB={os.environ['ARCHIVE_PART_MB']}; "
          f"{args.rounds} rounds each, medians")
    print(f"  album JSON with its 3 parts listed  {median(listing_times) * 1000:8.1f} ms")
    print(f"  POST a selection of {args.select} photos      {median(select_times) * 1000:8.1f} ms")

    tmp = instance / "tmp"
    selected_files = [photos[i][1] for i in sorted(chosen)]
    measure(f"selection of {args.select} of {len(photos)}", selection["download_url"].replace(
        "http://localhost:8000", f"http://127.0.0.1:{port}"), port, selected_files, workdir, tmp, args.rounds,
        args.timeout)
    first = parts[0]["photo_count"]
    part_files = [path for _id, path in photos[first:first + parts[1]["photo_count"]]]
    measure("part 2 of 3", parts[1]["download_url"].replace("http://localhost:8000", f"http://127.0.0.1:{port}"),
            port, part_files, workdir, tmp, args.rounds, args.timeout)
    wait_empty(tmp)
    print(f"\ntemp files left: {len(os.listdir(tmp))}")
    return 0


def main() -> int:
    args = parse_args()

    def give_up(*_: object) -> None:
        raise TimeoutError(f"the benchmark ran over --timeout {args.timeout} s")

    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(args.timeout)
    for tool in ("curl", "zip", "cat"):
        if shutil.which(tool) is None:
            print(f"{tool} is required")
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="photoshare-bench-plans-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        return run(args, workdir, cleanup)


if __name__ == "__main__":
    raise SystemExit(main())
