"""What the background-preparation tests share: real servers (redis-server, a Celery worker, an SMTP sink),
an HTTP client on the standard library, and a photo whose bytes the test hands out at its own pace.

The slow photo is a named pipe (FIFO) in place of the stored file: the job really opens and reads it, from
whichever process runs it, and the test decides when each chunk arrives. That makes "mid-job" a state a test
can hold, without a sleep guessed to be long enough.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photoshare import albums
from photoshare.archive import write_archive
from photoshare.extensions import db
from photoshare.models import Album, DownloadJob
from photoshare.storage import get_storage
from tests.conftest import ROOT, free_port, stop_process

# Settings every job test runs with: a dead worker is noticed after 3 s; the periodic sweep stays out of the way.
JOB_ENV = {"JOB_STALE_SECONDS": "3", "JOB_SWEEP_SECONDS": "3600", "JOB_WORKERS": "2"}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, *, headers: dict[str, str] | None = None, data: Any = None, timeout: float = 30) -> Reply:
    """One request with the standard library; error statuses are replies too, not exceptions."""
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def wait_until(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def at_once(call: Callable[[], Any], visitors: int = 16, timeout: float = 30) -> list[Any]:
    """Run `call` in `visitors` threads released together by a barrier; the answers, in arrival order."""
    barrier = threading.Barrier(visitors)
    answers: list[Any] = []

    def visitor() -> None:
        barrier.wait()
        answers.append(call())

    threads = [threading.Thread(target=visitor) for _ in range(visitors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return answers


def poll_status(base: str, token: str, job_id: str, *, until: tuple[str, ...] = ("ready", "failed"),
                timeout: float = 30, seen: list[dict] | None = None, headers: dict[str, str] | None = None) -> dict:
    """Poll the status endpoint until the job reaches one of `until`; every answer is appended to `seen`."""
    def check() -> dict | None:
        reply = http("GET", f"{base}/api/share/{token}/download-status/{job_id}", headers=headers)
        assert reply.status == 200, reply.body
        data = reply.json()
        if seen is not None:
            seen.append(data)
        return data if data["status"] in until else None

    return wait_until(check, timeout=timeout, interval=0.1, what=f"job {job_id} to be {until}")


def expected_archive(app, album_id: int) -> bytes:
    """The album's archive as the phase 1 writer makes it in memory (small test albums only)."""
    with app.app_context():
        album = db.session.get(Album, album_id)
        out = io.BytesIO()
        write_archive(albums.archive_plan(album), out, open_source=get_storage().open)
        return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def job_row(app, job_id: str) -> DownloadJob:
    with app.app_context():
        job = db.session.get(DownloadJob, job_id)
        db.session.expunge(job)
        return job


def job_count(app, album_id: int) -> int:
    with app.app_context():
        query = db.select(db.func.count()).select_from(DownloadJob).where(DownloadJob.album_id == album_id)
        return db.session.execute(query).scalar_one()


def zip_cache(app) -> list[str]:
    return sorted(p.name for p in Path(app.config["ZIP_CACHE_DIR"]).iterdir())


class SlowPhoto:
    """Turns one stored photo into a FIFO and feeds its real bytes through it when the test says so.

    `feed(until, chunk, delay)` writes up to byte `until` (all by default); `finish()` writes the rest and
    closes, which ends the photo for the reader. `restore()` puts the real file back.
    """

    def __init__(self, app, album_id: int, index: int = 0) -> None:
        with app.app_context():
            photo = db.session.get(Album, album_id).photos[index]
            self.path = get_storage().local_path(albums.photo_key(photo))
        self.data = self.path.read_bytes()
        self.path.unlink()
        os.mkfifo(self.path)
        self.sent = 0
        self.fd: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _connect(self) -> bool:
        while not self._stop.is_set():
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
                os.set_blocking(self.fd, True)
                return True
            except OSError as exc:  # ENXIO: no reader yet
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.02)
        return False

    def feed(self, until: int | None = None, chunk: int = 8192, delay: float = 0.0, close: bool = False) -> None:
        """Start writing in the background up to byte `until`; closes the pipe at the end when `close`."""
        until = len(self.data) if until is None else until

        def run() -> None:
            if self.fd is None and not self._connect():
                return
            try:
                while self.sent < until and not self._stop.is_set():
                    piece = self.data[self.sent:min(until, self.sent + chunk)]
                    os.write(self.fd, piece)
                    self.sent += len(piece)
                    if delay:
                        time.sleep(delay)
                if close and self.sent >= len(self.data):
                    self._close()
            except (BrokenPipeError, OSError):
                self._close()  # the reader died (a killed worker): nothing more to feed

        self.join()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def finish(self, chunk: int = 65536, delay: float = 0.0) -> None:
        self.feed(None, chunk=chunk, delay=delay, close=True)

    def join(self, timeout: float = 30) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def restore(self) -> None:
        self._stop.set()
        self.join(5)
        self._close()
        self.path.unlink(missing_ok=True)
        self.path.write_bytes(self.data)


class RedisServer:
    """A real redis-server (Debian package) on a free port, no persistence, in a temporary folder."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
             "--save", "", "--appendonly", "no", "--protected-mode", "no"],
            stdout=(directory / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )
        import redis

        self.client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_until(self._answers, timeout=15, what="redis-server to start")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("redis-server exited at start")
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def stop(self) -> None:
        stop_process(self.process)


class CeleryWorker:
    """`celery -A photoshare.jobs.celery_app worker` as its own process, with the test's environment."""

    def __init__(self, instance: Path, env: dict[str, str], pool: str = "prefork", concurrency: int = 2,
                 beat: bool = False) -> None:
        self.log = instance / f"celery-{free_port()}.log"
        # -B runs beat inside the worker: the sweep schedule, as `celery ... beat` runs it in production.
        extra = ["-B", "-s", str(instance / "celerybeat-schedule")] if beat else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "photoshare.jobs.celery_app", "worker", "--pool", pool,
             "-c", str(concurrency), "--loglevel", "INFO", "-Q", "photoshare", "-n", f"test-{self.log.stem}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat", *extra],
            cwd=ROOT, env={**os.environ, "PHOTOSHARE_INSTANCE": str(instance), **env},
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self._ready, timeout=45, interval=0.1, what="the Celery worker to be ready")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"celery worker exited: {self.log.read_text()[-3000:]}")
        return " ready." in self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the worker and every child it forked (its process group)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free port that keeps every message it receives."""

    def __init__(self, **options: Any) -> None:
        """`options` go to aiosmtpd's Controller, e.g. tls_context= and require_starttls=True."""
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope) -> str:
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def stop(self) -> None:
        self.controller.stop()


def leave_dead_archive(config: Any, version: str = "dead") -> list[Path]:
    """The files a process killed while building a "Download all" temp archive leaves (archive_files): the
    partial archive and both lock files, held by nobody, since the kernel drops a dead process's flocks."""
    files = [Path(config["TEMP_DIR"], f"album-{version}.partial"), Path(config["LOCK_DIR"], f"album-{version}.lock"),
             Path(config["LOCK_DIR"], f"album-{version}.build")]
    for path in files:
        path.write_bytes(b"half an archive" if path.suffix == ".partial" else b"")
    return files
