"""Load test of the production stack: 50 concurrent clients through nginx (deploy/nginx.conf, HTTPS) and gunicorn
(deploy/gunicorn.conf.py), against nginx serving the very same bytes as static files.

    .venv/bin/python bench/load_test.py [--seconds 20] [--clients 50] [--photos 24]

The mix, per request (wrk, HTTP/1.1 keep-alive, loopback only): 35 % gallery page, 15 % thumbnails, 30 % photo
downloads (a third whole, a third resumed with `Range: bytes=N-`, a third resumed with Range + If-Range) and
20 % "Download all" of the album, whose archive is in the ZIP cache (whole, or resumed from the middle).
It runs three times: the app with SENDFILE_BACKEND=x-accel (nginx sends the files), the app streaming the
files itself, and nginx alone serving copies of the same responses. Afterwards it checks that nothing leaked:
TEMP_DIR empty, each gunicorn worker's open file descriptors and resident memory before and after.
Needs root (nginx), wrk, openssl and Debian's nginx-light; prints a table for the README.

While wrk runs, two probe clients ask for the gallery page and the album's API JSON one after the other and time
each answer (a new HTTPS connection each, like a visitor arriving): their p50 and p99 are what a visitor of the
gallery or a script waits under that load. `--activity off` runs the app with ACTIVITY_ENABLED=false (the cost of
recording visits and downloads); `--stacks x-accel` skips the streaming stack.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from photoshare import albums, create_app  # noqa: E402
from photoshare.access import create_share_link  # noqa: E402
from photoshare.auth import create_user  # noqa: E402
from photoshare.extensions import db  # noqa: E402
from tests.conftest import base_config, free_port  # noqa: E402
from tests.nginx_support import fetch, make_certificate, start_stack, world_readable_tempdir  # noqa: E402

LARGE_RSS_GROWTH_KB = 20 * 1024  # more than this per worker after the run counts as a leak


@dataclass
class Album:
    token: str
    album_id: int
    photos: list[tuple[int, int, str]]  # (id, size, stored name)


@dataclass
class Result:
    name: str
    requests_per_s: float = 0.0
    mb_per_s: float = 0.0
    latency: dict[str, str] = field(default_factory=dict)
    errors: int = 0
    bad_status: int = 0
    requests: int = 0
    probes: dict[str, list[float]] = field(default_factory=dict)  # kind -> seconds per answer, during the run


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else float("nan")


class Probe:
    """Clients that time the gallery page and the API's album JSON while wrk loads the stack."""

    def __init__(self, base: str, album: Album, clients: int = 2) -> None:
        self.paths = {"gallery": f"/s/{album.token}", "api": f"/api/share/{album.token}"}
        self.base, self.samples = base, {kind: [] for kind in self.paths}
        self.failures = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Probe:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self) -> None:
        while not self.stop.is_set():
            for kind, path in self.paths.items():
                started = time.perf_counter()
                try:
                    ok = fetch(self.base + path, timeout=60).status == 200
                except OSError:
                    ok = False
                if ok:
                    self.samples[kind].append(time.perf_counter() - started)
                else:
                    self.failures += 1


def noise_jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "JPEG", quality=90)
    return out.getvalue()


def make_album(app, count: int) -> Album:
    with app.app_context():
        db.create_all()
        owner = create_user("bench@example.com", "correct horse battery")
        album = albums.create_album(owner, "Load test")
        for index in range(count):
            albums.add_photo(album, f"IMG_{index:04d}.jpg", io.BytesIO(noise_jpeg(640, 480)), commit=False)
        albums.refresh_version(album)
        token = create_share_link(album).token
        return Album(token, album.id, [(p.id, p.size, p.stored_name) for p in album.photos])


# ---- the request mix -------------------------------------------------------------------------------------------


def request_mix(paths: dict[str, str], album: Album, etags: dict[str, str], archive_size: int, seed: int) -> list:
    """A shuffled list of (path, headers) in the mix's proportions; `paths` maps kinds to URL patterns."""
    rng = random.Random(seed)
    mix: list[tuple[str, dict[str, str]]] = []
    for _ in range(1000):
        roll = rng.random()
        photo_id, size, _ = rng.choice(album.photos)
        if roll < 0.35:
            mix.append((paths["gallery"], {}))
        elif roll < 0.50:
            mix.append((paths["thumb"].format(id=photo_id), {}))
        elif roll < 0.80:
            path, kind = paths["photo"].format(id=photo_id), rng.randrange(3)
            headers = {} if kind == 0 else {"Range": f"bytes={rng.randrange(size // 2, size - 1)}-"}
            if kind == 2:
                headers["If-Range"] = etags[path]
            mix.append((path, headers))
        else:
            resume = rng.random() < 0.5
            headers = {"Range": f"bytes={rng.randrange(archive_size // 4, archive_size // 2)}-",
                       "If-Range": etags[paths["archive"]]} if resume else {}
            mix.append((paths["archive"], headers))
    return mix


def lua_script(mix: list[tuple[str, dict[str, str]]]) -> str:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    rows = []
    for path, headers in mix:
        header_table = ", ".join(f"[{quote(k)}] = {quote(v)}" for k, v in headers.items())
        rows.append(f"  {{{quote(path)}, {{{header_table}}}}},")
    return ("local mix = {\n" + "\n".join(rows) + "\n}\n"
            "local i = 0\n"
            "function init(args) i = math.random(#mix) end\n"
            "function request()\n"
            "  i = i % #mix + 1\n"
            "  return wrk.format(\"GET\", mix[i][1], mix[i][2])\n"
            "end\n")


def run_wrk(name: str, url: str, mix: list, seconds: int, clients: int, workdir: Path) -> Result:
    script = workdir / f"{name}.lua"
    script.write_text(lua_script(mix))
    done = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--timeout", "30s", "--latency",
                           "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 120)
    out = done.stdout
    (workdir / f"{name}.wrk.txt").write_text(out + done.stderr)
    result = Result(name)
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result.requests_per_s = float(m.group(1))
    if m := re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out):
        scale = {"B": 1e-6, "KB": 1024 / 1e6, "MB": 1024**2 / 1e6, "GB": 1024**3 / 1e6}[m.group(2)]
        result.mb_per_s = float(m.group(1)) * scale
    for pct in ("50%", "90%", "99%"):
        if m := re.search(rf"^\s+{re.escape(pct)}\s+(\S+)", out, re.M):
            result.latency[pct] = m.group(1)
    if m := re.search(r"(\d+) requests in", out):
        result.requests = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result.errors = sum(int(x) for x in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        result.bad_status = int(m.group(1))
    return result


# ---- leaks: fds, memory, temp files ------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def process_state(pid: int, database_port: int) -> tuple[int, int, int]:
    """(open file descriptors other than the database pool's, the pool's, resident memory in KiB).

    The pool's connections (SQLite: 3 descriptors each in WAL mode; a database server: one TCP socket each)
    come and go with SQLAlchemy's pool, whose size is bounded; everything else must be back where it was once
    the load is over.
    """
    server_sockets = _database_sockets(pid, database_port)
    other = pool = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if re.search(r"\.sqlite3(-wal|-shm|-journal)?$", target) or target in server_sockets:
            pool += 1
        else:
            other += 1
    rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))
    return other, pool, rss


def _database_sockets(pid: int, port: int) -> set[str]:
    """`socket:[inode]` of the process's TCP connections to a database server on `port` (0: none)."""
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if port and int(fields[2].rsplit(":", 1)[1], 16) == port:
                found.add(f"socket:[{fields[9]}]")
    return found


def snapshot(master: int, database_port: int) -> dict[int, tuple[int, int, int]]:
    return {pid: process_state(pid, database_port) for pid in children(master)}


# ---- one stack -------------------------------------------------------------------------------------------------


def warm_up(base: str, album: Album) -> tuple[dict[str, str], dict[str, bytes]]:
    """Fetch every response once (thumbnails made, archive cached); returns ETags and bodies by path."""
    etags, bodies = {}, {}
    paths = [f"/s/{album.token}", f"/api/share/{album.token}/download-all"]
    paths += [f"/s/{album.token}/thumb/{pid}" for pid, _, _ in album.photos]
    paths += [f"/api/share/{album.token}/download/{pid}" for pid, _, _ in album.photos]
    for path in paths:
        reply = fetch(base + path, timeout=120)
        assert reply.status == 200, (path, reply.status, reply.body[:300])
        etags[path], bodies[path] = reply.header("ETag") or "", reply.body
    return etags, bodies


def app_paths(album: Album) -> dict[str, str]:
    return {"gallery": f"/s/{album.token}", "thumb": f"/s/{album.token}/thumb/{{id}}",
            "photo": f"/api/share/{album.token}/download/{{id}}", "archive": f"/api/share/{album.token}/download-all"}


def static_copies(static_root: Path, album: Album, bodies: dict[str, bytes]) -> None:
    """The same bytes as files for nginx alone: the page, thumbnails, originals, the archive."""
    paths = app_paths(album)
    (static_root / "gallery.html").write_bytes(bodies[paths["gallery"]])
    (static_root / "album.zip").write_bytes(bodies[paths["archive"]])
    for pid, _, _ in album.photos:
        (static_root / f"thumb-{pid}.jpg").write_bytes(bodies[paths["thumb"].format(id=pid)])
        (static_root / f"photo-{pid}.jpg").write_bytes(bodies[paths["photo"].format(id=pid)])
    for path in static_root.iterdir():
        path.chmod(0o644)


def measure_stack(name: str, root: Path, instance: Path, app, album: Album, cert: Path, key: Path, settings: dict,
                  args, static_root: Path | None = None) -> tuple[list[Result], list[str]]:
    extra = ""
    static_port = free_port()
    if static_root is not None:
        extra = (f"    server {{\n        listen 127.0.0.1:{static_port} ssl;\n        ssl_certificate {cert};\n"
                 f"        ssl_certificate_key {key};\n        location / {{ root {static_root}; }}\n    }}\n")
    stack = start_stack(root / f"nginx-{name}", instance, database_url=app.config["SQLALCHEMY_DATABASE_URI"],
                        settings=settings, cert=cert, key=key, extra_nginx=extra, gunicorn_workers=args.workers)
    results, notes = [], []
    try:
        etags, bodies = warm_up(stack.url, album)
        archive_size = len(bodies[app_paths(album)["archive"]])
        mix = request_mix(app_paths(album), album, etags, archive_size, seed=1)
        run_wrk(f"{name}-warm", stack.url, mix, 3, args.clients, root)  # imports, pools, page cache
        time.sleep(6)  # idle keep-alive connections close (gunicorn keepalive 5 s)
        before = snapshot(stack.gunicorn.process.pid, args.database_port)
        log_start = len(stack.gunicorn.log.read_text())
        with Probe(stack.url, album) as probe:
            results.append(run_wrk(name, stack.url, mix, args.seconds, args.clients, root))
        results[-1].probes = probe.samples
        if probe.failures:
            notes.append(f"{name}: {probe.failures} probe request(s) failed")
        time.sleep(6)
        after = snapshot(stack.gunicorn.process.pid, args.database_port)
        temp_left = os.listdir(app.config["TEMP_DIR"])
        notes.append(f"{name}: TEMP_DIR after the run: {len(temp_left)} file(s)")
        for pid in sorted(before):
            fds0, db0, rss0 = before[pid]
            fds1, db1, rss1 = after.get(pid, (None, None, None))
            leak = fds1 != fds0 or rss1 is None or rss1 - rss0 > LARGE_RSS_GROWTH_KB
            notes.append(f"{name}: worker {pid}: fds {fds0} -> {fds1} (+ database pool {db0} -> {db1}), "
                         f"RSS {rss0 / 1024:.1f} -> {(rss1 or 0) / 1024:.1f} MiB{'  <-- LEAK?' if leak else ''}")
        log = stack.gunicorn.log.read_text()[log_start:]
        errors = sorted({line for line in log.splitlines() if re.match(r"^\w+(\.\w+)*(Error|Exception): ", line)})
        notes.append(f"{name}: tracebacks in gunicorn's log during the run: {log.count('Traceback')} {errors[:3]}")
        if static_root is not None:
            static_copies(static_root, album, bodies)
            static_paths = {"gallery": "/gallery.html", "thumb": "/thumb-{id}.jpg", "photo": "/photo-{id}.jpg",
                            "archive": "/album.zip"}
            static_url = f"https://127.0.0.1:{static_port}"
            static_etags = {path: fetch(static_url + path, method="HEAD").header("ETag") or ""
                            for path in [static_paths["archive"]] + [f"/photo-{pid}.jpg" for pid, _, _ in album.photos]}
            static_mix = request_mix(static_paths, album, static_etags, archive_size, seed=1)
            results.append(run_wrk("nginx static", static_url, static_mix, args.seconds, args.clients, root))
    finally:
        stack.stop()
    return results, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--postgres", action="store_true", help="a throw-away PostgreSQL server instead of SQLite")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, wrk output)")
    parser.add_argument("--activity", choices=("on", "off"), default="on", help="record visits and downloads")
    parser.add_argument("--stacks", choices=("both", "x-accel"), default="both")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (GUNICORN_WORKERS)")
    parser.add_argument("--threads", type=int, help="threads per worker (GUNICORN_THREADS; default the config's)")
    args = parser.parse_args()
    for tool in ("wrk", "openssl"):
        if not shutil.which(tool):
            print(f"load_test: {tool} is missing (apt-get install {tool})", file=sys.stderr)
            return 2
    root = world_readable_tempdir("photoshare-load-")
    instance = root / "instance"
    instance.mkdir()
    static_root = root / "static"
    static_root.mkdir()
    static_root.chmod(0o755)
    cert, key = make_certificate(root)
    postgres = None
    database: dict[str, str] = {}
    args.database_port = 0
    if args.postgres:
        from tests.postgres import PostgresServer

        postgres = PostgresServer()
        database = {"DATABASE_URL": postgres.new_database()}
        args.database_port = postgres.port
    app = create_app(base_config(instance) | database)
    album = make_album(app, args.photos)
    common = {"PROXY_FIX_HOPS": "1", "DOWNLOAD_ALL_RATE_LIMIT": "1000000 per minute",
              "ACTIVITY_ENABLED": "true" if args.activity == "on" else "false"}
    if args.threads:
        common["GUNICORN_THREADS"] = str(args.threads)
    results, notes = [], []
    stacks = [("app + X-Accel", {"SENDFILE_BACKEND": "x-accel"}, static_root),
              ("app streaming", {"SENDFILE_BACKEND": ""}, None)]
    try:
        for name, settings, static in stacks[:1] if args.stacks == "x-accel" else stacks:
            found, said = measure_stack(name.replace(" ", "").replace("+", "-"), root, instance, app, album, cert, key,
                                        {**common, **settings}, args, static)
            for result in found:
                result.name = name if result.name != "nginx static" else result.name
            results += found
            notes += said
    finally:
        with app.app_context():
            db.engine.dispose()
        if postgres is not None:
            postgres.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    archive_mb = sum(size for _, size, _ in album.photos) / 1e6
    print(f"\nmachine: {os.cpu_count()} cores, {platform.machine()}, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GiB; Python {platform.python_version()}")
    print(f"album: {len(album.photos)} photos, {archive_mb:.1f} MB; {args.clients} clients for {args.seconds} s, HTTPS; "
          f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; activity recording {args.activity}; "
          f"gunicorn {args.workers} workers, {args.threads or 'the configured'} threads each")
    print("\n| server | requests/s | MB/s | p50 | p90 | p99 | requests | errors | non-2xx/3xx |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r.name} | {r.requests_per_s:.0f} | {r.mb_per_s:.0f} | {r.latency.get('50%', '?')} | "
              f"{r.latency.get('90%', '?')} | {r.latency.get('99%', '?')} | {r.requests} | {r.errors} | {r.bad_status} |")
    print("\n| server | gallery p50 | gallery p99 | API p50 | API p99 | probe answers |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        if r.probes:
            gallery, api = r.probes["gallery"], r.probes["api"]
            print(f"| {r.name} | {percentile(gallery, 50) * 1000:.0f} ms | {percentile(gallery, 99) * 1000:.0f} ms | "
                  f"{percentile(api, 50) * 1000:.0f} ms | {percentile(api, 99) * 1000:.0f} ms | {len(gallery) + len(api)} |")
    print()
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
