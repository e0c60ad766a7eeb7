"""Guesses at a password (share links, owner log-ins): counted before they are checked, checked a few at a time.

Flask-Limiter's `deduct_when` tests the count before a request and adds to it afterwards, so a burst of parallel
guesses all pass the test before any of them is counted (64 parallel wrong guesses had 41 checked with a limit of
10). Here each guess is added to its counters first, with one atomic increment in the limiter's storage (Redis
`INCRBY`, or a locked counter in the process without Redis); only a guess that stayed within every limit gets
its hash checked. A right password gives its attempt back: visitors and scripts that send the right password on
every request never run out, while wrong guesses keep counting.

Each check is scrypt (32 MiB, ~100 ms): at most `CHECKS_AT_ONCE` run at once in a process, the rest wait their
turn. Nothing here reads the request: callers name the buckets (an address, a link, an account).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from flask import current_app
from flask_babel import lazy_gettext as _l
from limits import RateLimitItem, parse
from limits.strategies import FixedWindowRateLimiter
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import AppError, limit_headers
from .extensions import limiter

CHECKS_AT_ONCE = 4
_checks = threading.BoundedSemaphore(CHECKS_AT_ONCE)


class TooManyAttempts(AppError):
    status, error, message = 429, "too_many_attempts", _l("Too many attempts. Please wait a minute and try again.")


@dataclass(frozen=True)
class Bucket:
    """One counter of guesses: `limit` (flask-limiter syntax, e.g. "10 per minute") per `scope` and `key`."""

    scope: str
    key: str
    limit: str

    @property
    def item(self) -> RateLimitItem:
        return parse(self.limit)


def verify(password_hash: str, password: str) -> bool:
    """check_password_hash, never more than CHECKS_AT_ONCE at a time in this process (each costs 32 MiB)."""
    with _checks:
        return check_password_hash(password_hash, password)


@cache
def _dummy_hash() -> str:
    """A hash of a random password, made like real ones (same method and cost), once per process."""
    return generate_password_hash(secrets.token_urlsafe(16))


def counted_check(password_hash: str | None, password: str, buckets: Sequence[Bucket]) -> bool:
    """Count one guess in every bucket, then check it; raises TooManyAttempts (and checks nothing) when a bucket
    is over its limit. `password_hash` None (an unknown account) checks a dummy hash, so that it takes as long
    and fails. A right password is refunded to every bucket."""
    counted = _count(buckets)
    right = verify(password_hash or _dummy_hash(), password) and password_hash is not None
    if right:
        for bucket in counted:
            limiter.storage.incr(bucket.item.key_for(bucket.scope, bucket.key), bucket.item.get_expiry(), amount=-1)
    return right


def _count(buckets: Sequence[Bucket]) -> list[Bucket]:
    """Add one to each bucket in turn, stopping at the first one over its limit (later ones are not counted)."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return []
    strategy = FixedWindowRateLimiter(limiter.storage)
    counted: list[Bucket] = []
    for bucket in buckets:
        item = bucket.item
        within = strategy.hit(item, bucket.scope, bucket.key)
        counted.append(bucket)
        if not within:
            reset_at = strategy.get_window_stats(item, bucket.scope, bucket.key).reset_time
            raise TooManyAttempts(headers=limit_headers(item.amount, reset_at))
    return counted
