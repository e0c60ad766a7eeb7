"""A photo's thumbnail and large view: made together from one decode, never by visitors in parallel.

They are made when the photo is added (upload, import, the demo) and when storage-migrate copies an older
album into a bucket. A visitor's request only sends them. An older photo may still lack them (views used to be
made on first view) or have them under their old name; then `make_missing` makes the pair once: an flock per
photo in LOCK_DIR orders the threads and gunicorn workers that ask at the same moment, and whoever waited
re-checks the store and finds them made. A request waits at most `wait` seconds for another's making (then a
503 to retry), and decodes in the process's decode budget like an upload.

No Flask here: callers pass the storage, the keys and the limits.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask_babel import lazy_gettext as _l

from .decoding import DecodeBudget
from .errors import AppError
from .images import Rendition, render
from .lockfiles import is_current
from .storage import Storage

log = logging.getLogger(__name__)
POLL_SECONDS = 0.05


class RenditionBusy(AppError):
    status, error = 503, "preview_busy"
    message = _l("This photo's preview is still being made. Please try again in a moment.")

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "5"})


@dataclass(frozen=True)
class Limits:
    """What one decode may cost: pixels per image and the process's budget of decoded bytes."""

    max_pixels: int
    budget: DecodeBudget


@dataclass(frozen=True)
class Target:
    key: str
    rendition: Rendition


def make(storage: Storage, original_key: str, targets: Sequence[Target], limits: Limits) -> None:
    """Decode the original once and store every target. Raises FileNotFoundError (no original) and
    InvalidImage (it cannot be decoded within the limits)."""
    started = time.monotonic()
    with storage.open(original_key) as original:
        _info, jpegs = render(original, [t.rendition for t in targets], max_pixels=limits.max_pixels,
                              budget=limits.budget)
    for target, jpeg in zip(targets, jpegs, strict=True):
        storage.save(target.key, io.BytesIO(jpeg))
    log.info("made %s from %s in %.2fs", ", ".join(t.key for t in targets), original_key, time.monotonic() - started)


def make_missing(
    storage: Storage, original_key: str, targets: Sequence[Target], limits: Limits, *, lock: Path, wait: float,
    stale_keys: Sequence[str] = (),
) -> bool:
    """Make the targets unless all exist, one maker per `lock` across threads and processes; then remove
    `stale_keys` (the same images under an older name). True when this call made them. Raises RenditionBusy
    after `wait` seconds of waiting for another maker."""
    if all(storage.exists(t.key) for t in targets):
        return False
    with one_maker(lock, wait):
        if all(storage.exists(t.key) for t in targets):
            return False  # made while we waited
        make(storage, original_key, targets, limits)
    for key in stale_keys:
        storage.delete(key)
    return True


@contextmanager
def one_maker(path: Path, wait: float) -> Iterator[None]:
    """Hold the exclusive flock on `path`; the holder removes the file, so LOCK_DIR keeps nothing. Whoever
    then gets the lock on the removed file sees it is no longer `path` and locks the current one."""
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _flock_until(fd, deadline)
        except BaseException:
            os.close(fd)
            raise
        if is_current(fd, path):
            break
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


_one_maker = one_maker  # the name tests knew it by


def _flock_until(fd: int, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise RenditionBusy() from None
            time.sleep(POLL_SECONDS)


