"""Recording off the request path: a request appends an event to a queue and returns; a writer thread of the
same process writes the queue to the database in batches every ACTIVITY_FLUSH_SECONDS.

Why: a database write inside each gallery request (view_count) and each download (its counters) queued behind
every other writer (SQLite has one write lock) and put the gallery's p99 over 3 s under 50 clients; the link's
counters now travel with the events (Event.counters) and are added in the writer's batch. Now a request costs an append to a deque (embedded) or one
RPUSH to Redis (REDIS_URL set: the events then survive a killed process, and any process's writer, or the
sweeper run by Celery beat, drains the list).

Nothing is lost on a clean shutdown: an `atexit` hook (which gunicorn's workers run when they exit after
SIGTERM or a reload) and deploy/gunicorn.conf.py's `worker_exit` flush what is queued. A failed write is
logged and kept for the next attempt (bounded by MAX_PENDING); it never reaches the request that recorded it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import weakref
from collections import deque
from typing import Any

from flask import Flask

from .events import Event
from .store import first_download, write_batch

log = logging.getLogger(__name__)
EXTENSION = "photoshare.activity"
REDIS_KEY = "photoshare:activity"
BATCH = 500  # events per transaction
MAX_PENDING = 100_000  # events kept in memory while the database refuses them; older ones are dropped beyond
_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


class Recorder:
    """The activity queue of one app in one process, and its writer thread (started by the first event)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        # Off: no event rows are kept, but the links' counters (views, downloads, limit slots) still are.
        self.keep_rows = bool(app.config["ACTIVITY_ENABLED"])
        self.interval = max(0.05, float(app.config["ACTIVITY_FLUSH_SECONDS"]))
        self.redis_url: str | None = app.config["REDIS_URL"]
        self._pending: deque[Event] = deque()
        self._flushing = threading.Lock()
        self._starting = threading.Lock()
        self._pid: int | None = None
        self._redis: Any = None
        self._stop = threading.Event()
        _recorders.add(self)

    def record(self, event: Event) -> None:
        """Queue `event`; never raises and never waits for the database."""
        try:
            self._ensure_writer()
            if self.redis_url and self._push(event):
                return
            self._pending.append(event)  # deque.append is atomic: no lock on the request path
        except Exception:  # recording must never fail the request
            log.exception("could not queue an activity event")

    def flush(self, *, drain_redis: bool = True) -> int:
        """Write everything queued now (this process's queue, and the Redis list unless `drain_redis` is False);
        returns how many were written. Never raises: what fails stays queued and is logged."""
        written = 0
        with self._flushing, self.app.app_context():
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                if not self._write(batch):
                    self._requeue(batch)
                    break
                written += len(batch)
            if self.redis_url and drain_redis:
                written += self._drain_redis()
        return written

    @property
    def pending(self) -> int:
        return len(self._pending)

    def stop(self) -> None:
        """Stop the writer thread after a last flush (tests; the process's exit does the same by atexit)."""
        self._stop.set()
        self.flush()

    def _write(self, batch: list[Event]) -> bool:
        try:
            firsts = write_batch(batch, keep_rows=self.keep_rows)
        except Exception:
            log.exception("could not write %d activity event(s); kept for the next attempt", len(batch))
            return False
        for share_id in firsts:
            try:
                first_download.send(self.app, share_id=share_id)
            except Exception:  # the e-mail's failure is the notifier's to log; the events are written
                log.exception("first-download notification of link %s failed", share_id)
        return True

    def _requeue(self, batch: list[Event]) -> None:
        self._pending.extendleft(reversed(batch))
        excess = len(self._pending) - MAX_PENDING
        if excess > 0:
            for _ in range(excess):
                self._pending.popleft()
            log.error("dropped the %d oldest activity event(s): the database refused writes too long", excess)

    def _ensure_writer(self) -> None:
        if self._pid == os.getpid():
            return
        with self._starting:
            if self._pid == os.getpid():
                return
            # A forked worker must start its own thread (threads do not survive fork), and its own Redis client.
            self._redis, self._stop = None, threading.Event()
            thread = threading.Thread(target=_writer_loop, args=(weakref.ref(self), self._stop, self.interval),
                                      name="photoshare-activity", daemon=True)
            thread.start()
            self._pid = os.getpid()

    def _client(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=2)
        return self._redis

    def _push(self, event: Event) -> bool:
        try:
            self._client().rpush(REDIS_KEY, json.dumps(event.as_dict()))
        except Exception as exc:  # noqa: BLE001 (Redis down: keep it in this process instead)
            log.warning("Redis refused an activity event, kept in process: %s", exc)
            return False
        return True

    def _drain_redis(self) -> int:
        """LPOP in batches: each event goes to exactly one process's writer, whichever drains first."""
        written = 0
        try:
            client = self._client()
            while raw := client.lpop(REDIS_KEY, BATCH):
                batch = [Event.from_dict(json.loads(item)) for item in raw]
                if not self._write(batch):
                    client.lpush(REDIS_KEY, *reversed(raw))  # back at the head, in order
                    break
                written += len(batch)
        except Exception as exc:  # noqa: BLE001 (Redis down: the list waits there for the next attempt)
            log.warning("could not drain activity events from Redis: %s", exc)
        return written


def _writer_loop(recorder_ref: weakref.ref[Recorder], stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        recorder = recorder_ref()
        if recorder is None:  # the app is gone (tests make many)
            return
        recorder.flush()
        del recorder


def flush_all() -> int:
    """Write what every recorder of this process still holds: at exit, and from gunicorn's worker_exit hook.
    Events already in Redis are safe there and wait for another writer: an exiting process does not drain."""
    return sum(recorder.flush(drain_redis=False) for recorder in list(_recorders))


atexit.register(flush_all)
