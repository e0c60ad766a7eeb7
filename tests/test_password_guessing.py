"""Password guessing against a real gunicorn: a guess is counted before its hash is checked, so a burst of parallel
wrong guesses gets at most the limit checked; hash checks run at most 4 at once per process; rate-limit headers
only where a limit answers.

Hashes are counted inside the workers (tests/gunicorn_hash_count.py wraps `hashlib.scrypt`, the real one runs).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT, LiveServer
from tests.jobs_support import RedisServer, at_once, http

PASSWORD = "blue tulips 42"
BURST = 64
HASH_COUNT_CONFIG = ROOT / "tests" / "gunicorn_hash_count.py"


class CountingServer(LiveServer):
    """gunicorn with 2 workers of 16 threads whose password hashes are counted in `hash_log`."""

    def __init__(self, app, instance: Path, env: dict[str, str] | None = None) -> None:
        self.hash_log = instance / "hashes.log"
        super().__init__(instance, env={"HASH_LOG": str(self.hash_log), **(env or {})},
                         database_url=app.config["SQLALCHEMY_DATABASE_URI"], config_file=HASH_COUNT_CONFIG)

    def hashes(self) -> list[tuple[int, int]]:
        """(pid, hashes running at once in that process) for every hash computed so far."""
        if not self.hash_log.exists():
            return []
        return [tuple(map(int, line.split())) for line in self.hash_log.read_text().splitlines()]


def guess_burst(server: LiveServer, token: str, password: str, visitors: int = BURST) -> Counter:
    """`visitors` parallel requests to the album API with `password`; how many got each status."""
    url = f"{server.url}/api/share/{token}"
    return Counter(at_once(lambda: http("GET", url, headers={"X-Share-Password": password}).status, visitors))


@pytest.fixture
def locked_share(make_album, make_share) -> str:
    return make_share(make_album(count=1), password=PASSWORD)


def test_parallel_wrong_guesses_are_counted_before_checking_in_redis(app, instance, tmp_path, locked_share):
    redis = RedisServer(tmp_path / "redis")
    (instance / "config.py").write_text(f"RATELIMIT_STORAGE_URI = {redis.url!r}\n")  # shared by both workers
    server = CountingServer(app, instance)
    try:
        statuses = guess_burst(server, locked_share, "wrong guess")
    finally:
        server.stop()
        redis.stop()
    assert set(statuses) <= {403, 429} and sum(statuses.values()) == BURST, statuses
    assert statuses[403] == 10, statuses  # PASSWORD_RATE_LIMIT: 10 per minute, for both workers together
    assert len(server.hashes()) == 10


def test_without_redis_each_process_checks_at_most_the_limit(app, instance, locked_share, monkeypatch):
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    server = CountingServer(app, instance)
    try:
        statuses = guess_burst(server, locked_share, "wrong guess")
    finally:
        server.stop()
    hashes = server.hashes()
    assert set(statuses) <= {403, 429} and statuses[403] == len(hashes), statuses
    assert 10 <= len(hashes) <= 10 * 2, statuses  # each of the 2 workers counts on its own
    assert all(count <= 10 for count in Counter(pid for pid, _ in hashes).values())


def test_at_most_4_hashes_run_at_once_per_process(app, instance, locked_share):
    # A limit high enough for 48 parallel requests: each is counted until its (right) password is checked.
    server = CountingServer(app, instance, env={"PASSWORD_RATE_LIMIT": "100 per minute"})
    try:
        statuses = guess_burst(server, locked_share, PASSWORD, visitors=48)
    finally:
        server.stop()
    hashes = server.hashes()
    assert statuses == Counter({200: 48}) and len(hashes) == 48
    assert max(at_once for _, at_once in hashes) == 4  # 16 threads a worker, 4 hashing at a time


def test_right_passwords_are_given_back_so_only_wrong_guesses_use_up_the_limit(app, instance, locked_share):
    server = CountingServer(app, instance, env={"PASSWORD_RATE_LIMIT": "3 per minute", "TEST_GUNICORN_WORKERS": "1"})
    url = f"{server.url}/api/share/{locked_share}"
    try:
        statuses = [http("GET", url, headers={"X-Share-Password": password}).status
                    for password in [PASSWORD] * 5 + ["wrong"] * 3 + [PASSWORD, "wrong", PASSWORD]]
    finally:
        server.stop()
    assert statuses == [200] * 5 + [403] * 3 + [429] * 3  # once over, even the right password waits


# ---- rate-limit headers only where a limit answers ------------------------------------------------------------

LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")


def test_downloads_and_pages_carry_no_rate_limit_headers_and_429s_do(live_server, make_album, make_share):
    album_id = make_album(count=2)
    open_token, locked_token = make_share(album_id), make_share(album_id, password=PASSWORD)
    album = http("GET", f"{live_server.url}/api/share/{open_token}").json()
    photo_url = album["photos"][0]["download_url"]
    photo_id = album["photos"][0]["id"]
    answers = {
        "album json": http("GET", f"{live_server.url}/api/share/{open_token}"),
        "gallery": http("GET", f"{live_server.url}/s/{open_token}"),
        "thumbnail": http("GET", f"{live_server.url}/s/{open_token}/thumb/{photo_id}"),
        "photo": http("GET", photo_url),
        "photo range": http("GET", photo_url, headers={"Range": "bytes=0-9"}),
        "download all": http("GET", album["download_all_url"]),
        "locked, right password": http("GET", f"{live_server.url}/api/share/{locked_token}",
                                       headers={"X-Share-Password": PASSWORD}),
        "locked, no password": http("GET", f"{live_server.url}/s/{locked_token}"),
    }
    for what, reply in answers.items():
        assert reply.status in (200, 206, 401), what
        assert not [name for name in LIMIT_HEADERS if name in reply.headers], (what, reply.headers)

    def wrong_guess():
        return http("GET", f"{live_server.url}/s/{locked_token}", headers={"X-Share-Password": "wrong"})

    guesses = [wrong_guess() for _ in range(10 * 2)]  # 10 a minute in each of the 2 workers (no Redis)
    refused = next((reply for reply in guesses if reply.status == 429), None) or wrong_guess()
    assert all(name not in reply.headers for reply in guesses if reply.status == 403 for name in LIMIT_HEADERS)
    assert refused.status == 429 and b"Too many attempts" in refused.body
    assert refused.headers["x-ratelimit-limit"] == "10" and refused.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
