"""Fail at once while the store is known not to answer, instead of waiting out its timeout again and again.

A store that accepts connections and never replies costs each request its whole timeout (s3.py: attempts x
(connect + read)), and each such request holds a server thread meanwhile. A gallery whose thumbnails the app
sends (s3 without a CDN, or a password-protected share) asks for dozens at once: it would take every thread,
and pages that never need the store would queue behind it. So once a request to the store ends without an
answer (a timeout, a refused or dropped connection), every request in the next COOL_DOWN_SECONDS fails at
once, without touching the network (a 503 for the visitor); then the store is tried again. An answer, even a
404 or a 403, closes it. Per process; nothing to configure.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, HTTPClientError
from botocore.exceptions import ConnectionError as StoreConnectionError

COOL_DOWN_SECONDS = 10.0  # about one timeout's worth: long enough to spare the threads, short enough to recover


class StoreNotAnswering(BotoCoreError):
    """Raised before sending while the breaker is open; not retried, and the caller's StorageError says why."""

    fmt = "the store did not answer {ago:.0f} s ago; not asking it again for {left:.0f} s"


class Breaker:
    """Watches one boto3 client through its events; the state is one timestamp (assignments are atomic)."""

    def __init__(self, cool_down: float = COOL_DOWN_SECONDS) -> None:
        self.cool_down = cool_down
        self._silent_since: float | None = None

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-send.s3", self._before_send)
        events.register("after-call.s3", self._answered)
        events.register("after-call-error.s3", self._failed)

    def _before_send(self, **_: Any) -> None:
        since = self._silent_since
        if since is not None and (ago := time.monotonic() - since) < self.cool_down:
            raise StoreNotAnswering(ago=ago, left=self.cool_down - ago)

    def _answered(self, **_: Any) -> None:
        self._silent_since = None

    def _failed(self, exception: BaseException, **_: Any) -> None:
        if isinstance(exception, StoreConnectionError | HTTPClientError):  # timeouts, refused or cut connections
            self._silent_since = time.monotonic()
