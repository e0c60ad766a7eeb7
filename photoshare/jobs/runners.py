"""Where jobs run: Celery workers when a broker is configured, else a thread pool inside each app process.

Both hand the same job ids to the same task functions (`build.run_build`, `notify.send_for_job`); the job state
is in the database either way. Each runner also supplies the build lock that keeps one album version from
being built twice at once: Redis `SET NX` with expiry for Celery (workers may be on several machines), an
`flock` for the embedded pool (released by the kernel when a process dies).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from flask import Flask

from .current import BuildLock

log = logging.getLogger(__name__)
SweepTask = Literal["sweep", "temp"]  # everything (embedded) | this machine's temp leftovers only (Celery web)


def _wait_loop(try_once: Callable[[], bool], timeout: float, on_wait: Callable[[], object]) -> bool:
    deadline, last_beat = time.monotonic() + timeout, time.monotonic()
    while True:
        if try_once():
            return True
        if time.monotonic() >= deadline:
            return False
        if time.monotonic() - last_beat >= 1.0:
            on_wait()
            last_beat = time.monotonic()
        time.sleep(0.2)


class FileBuildLock:
    """An exclusive `flock` on LOCK_DIR/build-<album>-<version>.lock; a dead process's lock is gone at once."""

    def __init__(self, lock_dir: str, album_id: int, version: str) -> None:
        self.path = Path(lock_dir) / f"build-{album_id}-{version}.lock"
        self.fd: int | None = None

    def _try(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The sweeper may unlink an idle lock file; a lock on an unlinked inode locks nothing.
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                raise BlockingIOError()
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return False
        self.fd = fd
        return True

    def acquire(self, timeout: float, on_wait: Callable[[], object]) -> bool:
        return _wait_loop(self._try, timeout, on_wait)

    def extend(self) -> None:
        pass  # held until released or the process dies

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


class RedisBuildLock:
    """`SET key token NX PX` through redis-py's Lock; its expiry (JOB_STALE_SECONDS) frees a dead worker's
    lock, and every progress report extends it while the build is alive."""

    def __init__(self, client: Any, album_id: int, version: str, ttl: float) -> None:
        self.lock = client.lock(f"photoshare:build:{album_id}:{version}", timeout=ttl, thread_local=False)
        self.held = False

    def acquire(self, timeout: float, on_wait: Callable[[], object]) -> bool:
        self.held = _wait_loop(lambda: bool(self.lock.acquire(blocking=False)), timeout, on_wait)
        return self.held

    def extend(self) -> None:
        if self.held:
            self.lock.reacquire()

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                self.lock.release()
            except Exception as exc:  # noqa: BLE001 (expired meanwhile: nothing left to release)
                log.info("build lock already gone: %s", exc)


class EmbeddedRunner:
    """A thread pool per process, started on its first request (so a fork after `create_app` gets its own),
    plus a sweeper thread that marks stuck jobs, takes over orphaned queued jobs and sweeps the ZIP cache."""

    mode = "embedded"

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._pid: int | None = None
        self._guard = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._stop = threading.Event()

    def ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._guard:
            if self._pid == os.getpid():
                return
            workers = max(1, int(self.app.config["JOB_WORKERS"]))
            self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photoshare-job")
            self._stop = _start_sweeper(self, "sweep")
            self._pid = os.getpid()

    def _submit(self, fn: Callable[[Any], object], job_id: str | int) -> None:
        self.ensure_started()
        assert self._executor is not None
        self._executor.submit(self._in_context, fn, job_id)

    def _in_context(self, fn: Callable[[Any], object], job_id: str | int) -> None:
        with self.app.app_context():
            try:
                fn(job_id)
            except Exception:
                log.exception("background job %s failed in %s", job_id, fn.__name__)

    def dispatch_build(self, job_id: str) -> None:
        from .build import run_build

        self._submit(run_build, job_id)

    def dispatch_notices(self, job_id: str) -> None:
        from .notify import send_for_job

        self._submit(send_for_job, job_id)

    def dispatch_first_download(self, share_id: int) -> None:
        from .owner_mail import send_first_download

        self._submit(send_first_download, share_id)

    def build_lock(self, album_id: int, version: str) -> BuildLock:
        return FileBuildLock(self.app.config["LOCK_DIR"], album_id, version)

    def stop(self) -> None:
        """Stop the sweeper and wait for running jobs (tests, and a clean shutdown)."""
        self._stop.set()
        executor, self._executor, self._pid = self._executor, None, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _start_sweeper(runner: EmbeddedRunner | CeleryRunner, task: SweepTask) -> threading.Event:
    """A daemon thread of this process running `task` ("sweep": everything; "temp": this machine's leftover
    "Download all" temp archives only) every JOB_SWEEP_SECONDS; setting the returned event stops it."""
    stop, interval = threading.Event(), max(1.0, float(runner.app.config["JOB_SWEEP_SECONDS"]))
    # The thread holds the runner weakly: an app that is gone (tests make many) ends its sweeper.
    args = (weakref.ref(runner), stop, interval, task)
    threading.Thread(target=_sweep_loop, args=args, name="photoshare-sweeper", daemon=True).start()
    return stop


def _sweep_loop(runner_ref: weakref.ref[Any], stop: threading.Event, interval: float, task: SweepTask) -> None:
    from .owner_mail import send_due_digests
    from .sweep import remove_temp_leftovers, sweep

    while not stop.wait(interval):
        runner = runner_ref()
        if runner is None:
            return
        with runner.app.app_context():
            try:
                if task == "sweep":
                    sweep(revive=True)
                    send_due_digests()  # once per album and day, claimed in the database
                else:
                    remove_temp_leftovers(runner.app.config)
            except Exception:
                log.exception("the periodic sweep failed; trying again in %.0f s", interval)
        del runner


class CeleryRunner:
    """Jobs go to Celery through the broker; a broker that is down raises (the API answers 503).

    Celery beat sweeps jobs and the ZIP cache; each web process still removes the "Download all" temp
    archives of its own machine that a killed worker left, since beat may run on another machine."""

    mode = "celery"

    def __init__(self, app: Flask, celery: Any) -> None:
        self.app, self.celery = app, celery
        self._redis: Any = None
        self._redis_pid: int | None = None
        self._guard = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()

    def ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._guard:
            if self._pid != os.getpid():
                self._stop = _start_sweeper(self, "temp")
                self._pid = os.getpid()

    def dispatch_build(self, job_id: str) -> None:
        self.celery.send_task("photoshare.build_archive", args=[job_id], ignore_result=True)

    def dispatch_notices(self, job_id: str) -> None:
        self.celery.send_task("photoshare.send_notices", args=[job_id], ignore_result=True)

    def dispatch_first_download(self, share_id: int) -> None:
        self.celery.send_task("photoshare.first_download", args=[share_id], ignore_result=True)

    def _redis_url(self) -> str | None:
        broker = self.app.config["BROKER_URL"] or ""
        return self.app.config["REDIS_URL"] or (broker if broker.startswith(("redis", "unix")) else None)

    def redis(self) -> Any:
        if self._redis is None or self._redis_pid != os.getpid():
            import redis

            self._redis = redis.Redis.from_url(self._redis_url(), socket_connect_timeout=3, socket_timeout=10)
            self._redis_pid = os.getpid()
        return self._redis

    def build_lock(self, album_id: int, version: str) -> BuildLock:
        if self._redis_url() is None:  # a non-Redis broker: workers must then share one machine's LOCK_DIR
            return FileBuildLock(self.app.config["LOCK_DIR"], album_id, version)
        return RedisBuildLock(self.redis(), album_id, version, ttl=float(self.app.config["JOB_STALE_SECONDS"]))

    def stop(self) -> None:
        self._stop.set()
        self._pid = None
