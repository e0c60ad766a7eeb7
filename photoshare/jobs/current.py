"""What a job asks of whichever runner runs it (runners.py): a build lock, a dispatch, the mode.

Apart from runners.py so that the task functions (build.py, sweep.py) reach their runner without importing the
module that imports them: the runner runs them, they only talk to it through `get_runner()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flask import Flask, current_app

EXTENSION = "photoshare.jobs"


class BuildLock(Protocol):
    def acquire(self, timeout: float, on_wait: Callable[[], object]) -> bool: ...

    def extend(self) -> None: ...

    def release(self) -> None: ...


class Runner(Protocol):
    mode: str

    def dispatch_build(self, job_id: str) -> None: ...

    def dispatch_notices(self, job_id: str) -> None: ...

    def dispatch_first_download(self, share_id: int) -> None: ...

    def build_lock(self, album_id: int, version: str) -> BuildLock: ...

    def ensure_started(self) -> None: ...


def get_runner(app: Flask | None = None) -> Runner:
    return (app or current_app).extensions[EXTENSION]
