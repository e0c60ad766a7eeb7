"""The owner's e-mails about activity, through a real SMTP server (aiosmtpd): the first finished download of
each link (once), and the daily digest (only albums that asked, once per day), sent by the embedded job pool
and scheduler under gunicorn, and by a real Celery worker and beat with Redis (where the events themselves go
through Redis and the job system writes them)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from photoshare import activity
from photoshare.extensions import db
from photoshare.jobs.owner_mail import send_due_digests
from photoshare.models import ActivityEvent, Album, Photo, ShareLink, utcnow
from tests.conftest import Site
from tests.jobs_support import CeleryWorker, RedisServer, SmtpSink, http, wait_until

OWNER = "owner@example.com"


def mail_env(smtp: SmtpSink) -> dict[str, str]:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_FROM": "photos@example.com"}


def make_site(root: Path, env: dict[str, str], database_url: str | None) -> Site:
    instance = root / "instance"
    instance.mkdir()
    config = {k: (int(v) if v.isdigit() else v) for k, v in env.items()}
    if database_url:
        config["DATABASE_URL"] = database_url
    return Site.start(instance, config, env=env, owner_email=OWNER)


def first_photo(site: Site, album_id: int) -> int:
    with site.app.app_context():
        return db.session.execute(db.select(Photo.id).where(Photo.album_id == album_id).order_by(Photo.id)).scalars().first()


def yesterday_activity(site: Site, album_id: int, token: str, *, digest: bool) -> None:
    """Two visits and a finished download yesterday; the album's digest switched on or off."""
    with site.app.app_context():
        link = db.session.execute(db.select(ShareLink).where(ShareLink.token == token)).scalar_one()
        link.first_download_at = utcnow()  # no first-download e-mail in the way
        at = utcnow() - timedelta(days=1)
        for kind, finished, sent in (("visit", False, 0), ("visit", False, 0), ("album", True, 2_500_000)):
            db.session.add(ActivityEvent(at=at, share_id=link.id, album_id=album_id, kind=kind, bytes=sent,
                                         finished=finished, visitor=kind + str(sent)))
        db.session.get(Album, album_id).daily_digest = digest
        db.session.commit()


def messages_to_owner(smtp: SmtpSink, subject_part: str) -> list:
    return [m for m in smtp.messages if m["To"] == OWNER and subject_part in m["Subject"]]


@pytest.fixture
def smtp():
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def embedded(tmp_path, smtp, database_config):
    env = {**mail_env(smtp), "ACTIVITY_FLUSH_SECONDS": "0.2", "JOB_SWEEP_SECONDS": "1"}
    site = make_site(tmp_path, env, database_config.get("DATABASE_URL"))
    yield site
    site.server.stop()
    with site.app.app_context():
        db.engine.dispose()


def test_owner_is_emailed_once_when_each_link_is_first_downloaded(embedded, smtp):
    site = embedded
    album_id, token = site.album(photos=1, title="Sea & sand")
    with site.app.app_context():
        from photoshare.access import create_share_link

        second = create_share_link(db.session.get(Album, album_id)).token
    photo_id = first_photo(site, album_id)
    assert http("GET", f"{site.server.url}/s/{token}").status == 200
    assert messages_to_owner(smtp, "downloaded") == []  # a visit is no download
    for _ in range(3):
        assert http("GET", f"{site.server.url}/api/share/{token}/download/{photo_id}").status == 200

    [message] = wait_until(lambda: messages_to_owner(smtp, "downloaded"), what="the first-download e-mail")
    assert message["Subject"] == "Your album “Sea & sand” was downloaded"
    assert f"{site.server.url}/s/{token}" in message.get_content()
    assert f"/albums/{album_id}/activity" in message.get_content()

    assert http("GET", f"{site.server.url}/api/share/{second}/download/{photo_id}").status == 200
    wait_until(lambda: len(messages_to_owner(smtp, "downloaded")) == 2, what="the second link's e-mail")
    assert http("GET", f"{site.server.url}/api/share/{token}/download/{photo_id}").status == 200
    wait_until(lambda: len(site_events(site)) == 5, what="all five downloads written")
    assert len(messages_to_owner(smtp, "downloaded")) == 2


def site_events(site: Site) -> list[int]:
    with site.app.app_context():
        return db.session.execute(db.select(ActivityEvent.id).where(ActivityEvent.kind != "visit")).scalars().all()


def test_embedded_scheduler_sends_the_daily_digest_once_only_for_albums_that_asked(embedded, smtp):
    site = embedded
    album_id, token = site.album(photos=1, title="Wedding")
    quiet_id, quiet_token = site.album(photos=1, title="Not asked")
    yesterday_activity(site, album_id, token, digest=True)
    yesterday_activity(site, quiet_id, quiet_token, digest=False)
    assert http("GET", f"{site.server.url}/healthz").status == 200  # a request starts the workers' sweepers

    [message] = wait_until(lambda: messages_to_owner(smtp, "Activity of"), what="the digest")
    day = (utcnow() - timedelta(days=1)).date().isoformat()
    assert message["Subject"] == f"Activity of “Wedding” on {day}"
    body = message.get_content()
    assert "Visits: 2" in body and "Downloads: 1" in body and "Data sent: 2.5 MB" in body
    with site.app.app_context():
        assert db.session.get(Album, album_id).digest_sent_on == utcnow().date()
        assert db.session.get(Album, quiet_id).digest_sent_on is None
        assert send_due_digests() == 0  # already sent today, by one of the two workers only
    assert len(messages_to_owner(smtp, "Activity of")) == 1


def test_digest_is_off_by_default_and_nothing_is_sent_without_smtp(app, make_album):
    album_id = make_album(count=1)
    with app.app_context():
        assert db.session.get(Album, album_id).daily_digest is False
        db.session.get(Album, album_id).daily_digest = True
        db.session.commit()
        assert send_due_digests() == 0
        assert db.session.get(Album, album_id).digest_sent_on is None  # not claimed: sent once SMTP is set


@pytest.fixture
def celery_site(tmp_path, smtp, database_config):
    """gunicorn that never flushes activity itself (an hour): events wait in Redis until the job system (the
    Celery worker's beat-driven sweep, every second here) writes them."""
    redis = RedisServer(tmp_path / "redis")
    env = {**mail_env(smtp), "REDIS_URL": redis.url, "ACTIVITY_FLUSH_SECONDS": "3600", "JOB_SWEEP_SECONDS": "3600"}
    site = make_site(tmp_path, env, database_config.get("DATABASE_URL"))
    worker_env = {**env, "SECRET_KEY": "test-secret-key", "BASE_URL": site.server.url,
                  "DATABASE_URL": site.app.config["SQLALCHEMY_DATABASE_URI"], "JOB_SWEEP_SECONDS": "1"}
    worker = CeleryWorker(site.instance, worker_env, beat=True)
    yield site, redis, worker
    worker.stop()
    site.server.stop()
    activity.recorder(site.app).redis_url = None  # this test process's own recorder: nothing to drain at exit
    redis.stop()
    with site.app.app_context():
        db.engine.dispose()


def test_with_redis_events_go_through_redis_and_celery_writes_them_and_mails_the_owner(celery_site, smtp):
    site, redis, worker = celery_site
    album_id, token = site.album(photos=1, title="Via Celery")
    photo_id = first_photo(site, album_id)
    assert http("GET", f"{site.server.url}/api/share/{token}/download/{photo_id}").status == 200

    wait_until(lambda: site_events(site), what="the event written by the job system")
    [message] = wait_until(lambda: messages_to_owner(smtp, "downloaded"), what="the first-download e-mail")
    assert "Via Celery" in message["Subject"]
    log = worker.log.read_text()
    assert "photoshare.first_download" in log and redis.client.llen("photoshare:activity") == 0

    digest_id, digest_token = site.album(photos=1, title="Beat digest")
    yesterday_activity(site, digest_id, digest_token, digest=True)
    [digest] = wait_until(lambda: messages_to_owner(smtp, "Activity of"), what="the digest sent by beat")
    assert "Beat digest" in digest["Subject"]
