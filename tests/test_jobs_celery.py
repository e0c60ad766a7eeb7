"""Background ZIP preparation in production mode: a real redis-server, a real Celery worker process (prefork,
never eager mode), gunicorn, and a real SMTP server, all started by these tests.

One stack serves the module (starting Celery costs seconds); every test uses its own album and share link.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from photoshare import albums, create_app
from photoshare.access import create_share_link
from photoshare.auth import create_user
from photoshare.delivery import links
from photoshare.extensions import db
from photoshare.jobs import store
from photoshare.models import Album, User
from tests.conftest import LiveServer, base_config, free_port, make_jpeg
from tests.jobs_support import (
    JOB_ENV,
    CeleryWorker,
    RedisServer,
    SlowPhoto,
    SmtpSink,
    at_once,
    expected_archive,
    http,
    job_count,
    job_row,
    leave_dead_archive,
    poll_status,
    sha256,
    wait_until,
    zip_cache,
)


class Stack:
    def __init__(self, root: Path, database_url: str | None) -> None:
        self.redis = RedisServer(root / "redis")
        self.smtp = SmtpSink()
        self.instance = root / "instance"
        self.instance.mkdir()
        self.env = {**JOB_ENV, "REDIS_URL": self.redis.url, "SMTP_HOST": "127.0.0.1",
                    "SMTP_PORT": str(self.smtp.port), "SMTP_FROM": "photos@example.com"}
        config = base_config(self.instance) | {k: (int(v) if v.isdigit() else v) for k, v in self.env.items()}
        if database_url:
            config["DATABASE_URL"] = database_url
        self.app = create_app(config)
        with self.app.app_context():
            db.create_all()
            self.owner_id = create_user("owner@example.com", "correct horse battery").id
        url = self.app.config["SQLALCHEMY_DATABASE_URI"]
        self.server = LiveServer(self.instance, env=self.env, database_url=url)
        worker_env = {**self.env, "SECRET_KEY": "test-secret-key", "BASE_URL": self.server.url, "DATABASE_URL": url,
                      "JOB_SWEEP_SECONDS": "1"}  # beat sends the sweep every second here
        self.worker = CeleryWorker(self.instance, worker_env, beat=True)
        self.url = self.server.url

    def album(self, count: int = 3, title: str = "Wedding", size: int = 300) -> tuple[int, str]:
        """A new album of noise photos and a share link on it: (album id, token)."""
        with self.app.app_context():
            album = albums.create_album(db.session.get(User, self.owner_id), title)
            for i in range(count):
                albums.add_photo(album, f"IMG_{i:04d}.jpg", io.BytesIO(make_jpeg(size, size, noise=1)), commit=False)
            albums.refresh_version(album)
            return album.id, create_share_link(album).token

    def prepare(self, token: str, **kwargs) -> tuple[int, dict]:
        reply = http("POST", f"{self.url}/api/share/{token}/prepare-download", **kwargs)
        return reply.status, reply.json()

    def stop(self) -> None:
        self.worker.stop()
        self.server.stop()
        self.smtp.stop()
        self.redis.stop()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


def parent_pid(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_server):
    database_url = postgres_server.new_database() if postgres_server else None
    stack = Stack(tmp_path_factory.mktemp("celery-stack"), database_url)
    yield stack
    stack.stop()


@pytest.fixture(autouse=True)
def fresh_redis(stack):
    """No rate-limit counts or stray messages carried from one test to the next."""
    stack.redis.client.flushall()


def test_prepare_on_celery_reports_progress_then_ready_and_link_resumes(stack, tmp_path):
    album_id, token = stack.album(count=3)
    expected = expected_archive(stack.app, album_id)
    slow = SlowPhoto(stack.app, album_id, index=2)
    try:
        status, data = stack.prepare(token)
        assert status == 202 and data["status"] == "queued"
        slow.finish(chunk=16384, delay=0.12)
        seen: list[dict] = []
        ready = poll_status(stack.url, token, data["job_id"], seen=seen)
    finally:
        slow.restore()
    progress = [answer["progress"] for answer in seen]
    assert ready["status"] == "ready" and any(0 < p < 100 for p in progress) and progress == sorted(progress)
    worker_pid = int(job_row(stack.app, data["job_id"]).worker.rsplit(":", 1)[1])
    assert parent_pid(worker_pid) == stack.worker.process.pid  # built by a Celery pool child, not by gunicorn

    url = ready["download_url"]
    assert url.startswith(f"{stack.url}/d/")
    first = http("GET", url, headers={"Range": "bytes=0-999"})
    etag = first.headers["etag"]
    rest = http("GET", url, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert (first.status, rest.status) == (206, 206) and sha256(first.body + rest.body) == sha256(expected)
    assert http("GET", url, headers={"Range": "bytes=1000-", "If-Range": '"zip-other"'}).status == 200

    out = tmp_path / "album.zip"
    subprocess.run(["curl", "-sS", "-r", "0-9999", "-o", str(out), url], check=True)
    subprocess.run(["curl", "-sS", "-C", "-", "-o", str(out), url], check=True)
    assert sha256(out.read_bytes()) == sha256(expected)


def test_cache_hit_is_instant_and_album_change_invalidates_on_celery(stack):
    album_id, token = stack.album(count=2, title="Cached")
    job_id = stack.prepare(token)[1]["job_id"]
    old_url = poll_status(stack.url, token, job_id)["download_url"]

    started = time.monotonic()
    status, again = stack.prepare(token)
    assert status == 200 and again["status"] == "ready" and again["job_id"] == job_id
    assert time.monotonic() - started < 1.0 and job_count(stack.app, album_id) == 1

    with stack.app.app_context():
        albums.delete_photo(db.session.get(Album, album_id).photos[0])
    assert not any(name.startswith(f"album-{album_id}-") for name in zip_cache(stack.app))
    gone = http("GET", old_url)
    assert gone.status == 410 and f"/s/{token}/prepare".encode() in gone.body
    status, fresh = stack.prepare(token)
    assert status == 202 and fresh["job_id"] != job_id
    new_url = poll_status(stack.url, token, fresh["job_id"])["download_url"]
    assert http("GET", new_url).body == expected_archive(stack.app, album_id)


def test_concurrent_prepares_through_gunicorn_share_one_celery_job(stack):
    album_id, token = stack.album(count=2, title="Crowd")
    slow = SlowPhoto(stack.app, album_id, index=0)
    try:
        answers = at_once(lambda: stack.prepare(token))
        slow.finish()
        ready = poll_status(stack.url, token, answers[0][1]["job_id"])
    finally:
        slow.restore()
    assert len(answers) == 16 and len({data["job_id"] for _, data in answers}) == 1
    assert job_count(stack.app, album_id) == 1 and ready["status"] == "ready"


def test_killed_celery_worker_process_leaves_a_failed_job_and_no_partial(stack):
    album_id, token = stack.album(count=3, title="Killed")
    slow = SlowPhoto(stack.app, album_id, index=1)
    try:
        job_id = stack.prepare(token)[1]["job_id"]
        slow.feed(until=len(slow.data) // 2)
        wait_until(lambda: job_row(stack.app, job_id).status == "processing" and any(
            n.startswith(".partial") for n in zip_cache(stack.app)), what="the job to be mid-build")
        pid = int(job_row(stack.app, job_id).worker.rsplit(":", 1)[1])
        assert pid != stack.worker.process.pid  # a prefork child; the worker's master replaces it
        os.kill(pid, signal.SIGKILL)
        failed = poll_status(stack.url, token, job_id, timeout=15)
    finally:
        slow.restore()
    assert failed["status"] == "failed" and failed["error"] == store.INTERRUPTED
    assert not any(n.startswith(".partial") for n in zip_cache(stack.app))
    status, again = stack.prepare(token)  # Redis's build lock expired with the dead worker's heartbeat
    assert status == 202 and again["job_id"] != job_id
    assert poll_status(stack.url, token, again["job_id"], timeout=30)["status"] == "ready"


def test_failing_celery_job_says_why_and_leaves_no_file(stack):
    album_id, token = stack.album(count=2, title="Broken")
    with stack.app.app_context():
        photo = db.session.get(Album, album_id).photos[1]
        Path(stack.app.config["UPLOAD_DIR"], albums.photo_key(photo)).unlink()
    failed = poll_status(stack.url, token, stack.prepare(token)[1]["job_id"])
    assert failed["status"] == "failed" and "IMG_0001.jpg" in failed["error"]
    assert not any(n.startswith((".partial", f"album-{album_id}-")) for n in zip_cache(stack.app))


def test_email_from_the_celery_worker_arrives_with_a_working_link(stack):
    album_id, token = stack.album(count=2, title="Birthday")
    before = len(stack.smtp.messages)
    status, data = stack.prepare(token, data={"email": "friend@example.com"})
    # 202 while it builds; 200 when the worker finished two small photos before the answer left (the notice is
    # then dispatched at once): both must end in the e-mail.
    assert status in (200, 202) and data["job_id"]
    poll_status(stack.url, token, data["job_id"])
    wait_until(lambda: len(stack.smtp.messages) > before, timeout=15, what="the e-mail")
    message = stack.smtp.messages[-1]
    assert message["To"] == "friend@example.com" and "Birthday" in message["Subject"]
    url = next(w for w in message.get_content().split() if w.startswith(f"{stack.url}/d/"))
    assert sha256(http("GET", url).body) == sha256(expected_archive(stack.app, album_id))


def test_expired_and_tampered_links_on_celery_stack(stack):
    album_id, token = stack.album(count=1, title="Links")
    url = poll_status(stack.url, token, stack.prepare(token)[1]["job_id"])["download_url"]
    with stack.app.app_context():
        share_id = db.session.get(Album, album_id).share_links[0].id
        version = db.session.get(Album, album_id).version
        signed = links.sign(links.Grant(album_id, version, share_id), issued_at=time.time() - 25 * 3600)
    expired = f"{stack.url}/d/{signed}"
    gone = http("GET", expired)
    assert gone.status == 410 and b"Prepare the download again" in gone.body
    head, _, signature = url.rpartition(".")  # change a character that carries signature bits, not padding
    assert http("GET", f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}").status == 404
    assert http("GET", url).status == 200


@pytest.mark.parametrize("setting", ["REDIS_URL", "CELERY_BROKER_URL"])
def test_redis_down_gives_503_json_not_a_traceback(app, instance, make_album, make_share, monkeypatch, setting):
    """REDIS_URL down fails at the rate limiter already; a broker-only URL fails when the job is queued."""
    for name, value in JOB_ENV.items():
        monkeypatch.setenv(name, value)
    album_id = make_album(count=1)
    token = make_share(album_id)
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    server = LiveServer(instance, env={setting: dead}, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        started = time.monotonic()
        reply = http("POST", f"{server.url}/api/share/{token}/prepare-download")
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert elapsed < 10 and job_count(app, album_id) in (0, 1)
    assert reply.status == 503 and reply.headers["content-type"].startswith("application/json")
    assert reply.json()["error"] == "jobs_unavailable" and b"Traceback" not in reply.body
    assert int(reply.headers["retry-after"]) > 0


def test_beat_schedule_sweeps_outdated_zips_and_leftover_partials_through_the_worker(stack):
    album_id, _token = stack.album(count=1, title="Swept")
    cache_dir = Path(stack.app.config["ZIP_CACHE_DIR"])
    outdated = cache_dir / f"album-{album_id}-0123456789abcdef.zip"  # a version the album does not have
    leftover = cache_dir / f".partial-{'e' * 32}.zip"  # no such job is running
    outdated.write_bytes(b"old")
    leftover.write_bytes(b"half")
    wait_until(lambda: not outdated.exists() and not leftover.exists(), timeout=15, what="the scheduled sweep")


def test_web_process_on_celery_removes_its_own_dead_download_all_leftovers(stack, tmp_path):
    """Beat may sweep on another machine: each web process clears its own TEMP_DIR (not beat's here)."""
    instance = tmp_path / "web"
    instance.mkdir()
    app = create_app(base_config(instance) | {"REDIS_URL": stack.redis.url, "JOB_SWEEP_SECONDS": 1})
    runner = app.extensions["photoshare.jobs"]
    assert runner.mode == "celery"
    files = leave_dead_archive(app.config)  # after create_app: only the periodic pass can find them
    try:
        app.test_client().get("/login")  # any request starts this process's sweeper
        wait_until(lambda: not any(path.exists() for path in files), timeout=10, what="the web process's sweep")
    finally:
        runner.stop()
