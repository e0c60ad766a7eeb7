"""A never-built "Download all" by this checkout and by an earlier commit, interleaved on the same photos.

    .venv/bin/python bench/bench_before_after.py --before 571eb7b                  # 500 photos of 2 to 8 MB
    .venv/bin/python bench/bench_before_after.py --before 571eb7b --photos 5000 --mb 0.5

The earlier commit is checked out in a temporary git worktree and served by its own gunicorn (one worker,
deploy/gunicorn.conf.py, this virtualenv) from a copy of the album's instance whose photos are hard links to
the same files, so both read the same page cache. Each round downloads a never-built version from each server
over a raw socket (which goes first alternates), then `cat`s the photos to a file; each with the machine's
busy CPU time (bench_downloads.with_cpu). Between downloads the temp archive is removed as the sweeper would,
which waits for a build that goes on after its download. Prints each round and the medians of the ratios.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import bench_downloads as bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--mb", type=float, nargs="+", default=[2.0, 8.0], help="photo size, or min and max, MB")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    low, high = args.mb[0], args.mb[-1]
    with ExitStack() as cleanup:
        work = Path(tempfile.mkdtemp(prefix="photoshare-before-after-"))
        cleanup.callback(shutil.rmtree, work, True)
        tree = work / "before"
        subprocess.run(["git", "-C", str(bench.ROOT), "worktree", "add", "--detach", "-q", str(tree), args.before],
                       check=True)
        cleanup.callback(subprocess.run, ["git", "-C", str(bench.ROOT), "worktree", "remove", "--force", str(tree)])
        print(f"generating {args.photos} photos of {low:g} to {high:g} MB ...", flush=True)
        token, _, originals = bench.make_bulk_album(work / "after-instance", args.photos, low, high)
        _copy_instance(work / "after-instance", work / "before-instance")
        servers = {}
        for name, root in (("after", bench.ROOT), ("before", tree)):
            port = bench.free_port()
            process = bench.start_gunicorn(work / f"{name}-instance", port, work / f"{name}.log", root)
            cleanup.callback(bench.stop, process)
            servers[name] = (port, work / f"{name}-instance" / "tmp")
        files = sorted(originals.iterdir())
        _rounds(servers, f"/api/share/{token}/download-all", files, work / "cat.out", args.rounds)
    return 0


def _copy_instance(source: Path, target: Path) -> None:
    """The instance again, its photos hard links (one page cache), its SQLite database a copy of its own."""
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)
    for database in target.glob("*.db"):
        database.unlink()
        shutil.copyfile(source / database.name, database)


def _rounds(servers: dict[str, tuple[int, Path]], path: str, files: list[Path], out: Path, rounds: int) -> None:
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    for port, _ in servers.values():
        bench.raw_download(port, path.rsplit("/", 1)[0])  # each worker's first request: imports, database
    rows = []
    for number in range(rounds):
        row = {}
        for name in (("after", "before") if number % 2 == 0 else ("before", "after")):
            port, temp = servers[name]
            bench.wait_empty(temp, 120)
            row[name] = bench.with_cpu(functools.partial(bench.raw_download, port, path))
            bench.wait_empty(temp, 120)
        with out.open("wb") as sink:
            row["cat"] = bench.with_cpu(lambda: bench.timed(["cat", *map(str, files)], 600, stdout=sink))
        out.unlink()
        rows.append(row)
        print(f"  round {number + 1}: " + ", ".join(f"{name} {seconds:.2f} s / {cpu:.2f} core-s"
                                                   for name, (seconds, cpu) in row.items()), flush=True)
    for name in ("after", "before", "cat"):
        print(f"{name:7s} {bench.median([row[name][0] for row in rows]):.2f} s, "
              f"machine busy {bench.median([row[name][1] for row in rows]):.2f} core-s")
    for top, bottom in (("after", "cat"), ("before", "cat"), ("after", "before")):
        ratios = [row[top][0] / row[bottom][0] for row in rows]
        print(f"ratio {top} / {bottom}: {bench.median(ratios):.2f} (rounds {min(ratios):.2f} to {max(ratios):.2f})")


if __name__ == "__main__":
    sys.exit(main())
