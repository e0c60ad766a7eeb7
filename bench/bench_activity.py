"""What recording a visit costs a request, side by side with what it cost before (a database write in the
request), and what the writer then pays per event.

    .venv/bin/python bench/bench_activity.py [--calls 5000] [--postgres]

Measured in-process, in a real request context (session, User-Agent, address), on a throw-away instance:
- before: `increment(ShareLink, id, "view_count")`, the UPDATE + COMMIT every gallery view did in the request;
- after, embedded: `share.record_visit(link)` (the whole request-path cost: session, address truncation, the
  Event, the deque append), each call a new visitor, so each is a row for the writer;
- after, Redis: the same with REDIS_URL set (an RPUSH to a real redis-server), when redis-server is installed;
- the writer: `Recorder.flush()` of the queued events (one transaction per 500), per event.
Medians of 5 rounds; prints microseconds per call and the ratios against "before".
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import session  # noqa: E402

from photoshare import activity, albums, create_app  # noqa: E402
from photoshare.access import create_share_link  # noqa: E402
from photoshare.auth import create_user  # noqa: E402
from photoshare.extensions import db  # noqa: E402
from photoshare.models import ShareLink, increment  # noqa: E402
from photoshare.share import record_visit  # noqa: E402
from tests.conftest import base_config, free_port  # noqa: E402

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Version/17.1 Mobile Safari/604.1"


def make_app(instance: Path, extra: dict) -> tuple:
    instance.mkdir(parents=True)
    app = create_app(base_config(instance) | {"ACTIVITY_FLUSH_SECONDS": 3600.0} | extra)
    with app.app_context():
        db.create_all()
        owner = create_user("bench@example.com", "correct horse battery")
        album = albums.create_album(owner, "Bench")
        link = create_share_link(album)
        return app, link.id


def per_call(fn: Callable[[], object], calls: int, rounds: int = 5) -> float:
    """Median over `rounds` of the mean seconds per call."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - started) / calls)
    return statistics.median(times)


def measure(app, link_id: int, calls: int) -> dict[str, float]:
    found = {}
    headers = {"User-Agent": UA, "X-Forwarded-For": "203.0.113.9"}
    with app.test_request_context("/s/token", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        link = db.session.get(ShareLink, link_id)
        found["before: UPDATE view_count in the request"] = per_call(
            lambda: increment(ShareLink, link_id, "view_count"), max(200, calls // 10))
        # A new visitor session each time: every call is a visit, i.e. a row for the writer (the worst case).
        found["after: record_visit (request path)"] = per_call(lambda: (session.clear(), record_visit(link)), calls)
    queued = activity.recorder(app).pending or calls
    started = time.perf_counter()
    written = activity.flush(app)
    found["writer: flush, per event"] = (time.perf_counter() - started) / max(1, written or queued)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="photoshare-bench-activity-"))
    postgres, redis = None, None
    try:
        database = {}
        if args.postgres:
            from tests.postgres import PostgresServer

            postgres = PostgresServer()
            database = {"DATABASE_URL": postgres.new_database()}
        app, link_id = make_app(root / "embedded", database)
        results = {f"embedded {k}" if k.startswith("writer") else k: v for k, v in measure(app, link_id, args.calls).items()}
        if shutil.which("redis-server"):
            port = free_port()
            redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            extra = database if not args.postgres else {"DATABASE_URL": postgres.new_database()}
            app, link_id = make_app(root / "redis", extra | {"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
            for name, value in measure(app, link_id, args.calls).items():
                if not name.startswith("before"):
                    results[name.replace("after:", "after, Redis:") if name.startswith("after") else f"Redis {name}"] = value
            activity.recorder(app).redis_url = None  # the server goes now: nothing left to drain at exit
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
    before = results["before: UPDATE view_count in the request"]
    print(f"\ndatabase: {'PostgreSQL' if args.postgres else 'SQLite (WAL)'}; {args.calls} calls per round, medians of 5")
    print("\n| what | µs per call | ÷ before |")
    print("| --- | --- | --- |")
    for name, seconds in results.items():
        print(f"| {name} | {seconds * 1e6:.1f} | {seconds / before:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
