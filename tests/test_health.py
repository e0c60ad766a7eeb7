import os
import stat


def test_healthz_reports_every_part_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}


def test_healthz_names_the_failing_part_when_storage_is_read_only(app, client):
    upload_dir = app.config["UPLOAD_DIR"]
    os.chmod(upload_dir, stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(upload_dir, os.W_OK):  # root ignores modes: make the folder unusable another way
            os.chmod(upload_dir, 0o755)
            os.rename(upload_dir, upload_dir + ".gone")
            open(upload_dir, "w").close()  # a file where the folder should be
        response = client.get("/healthz")
    finally:
        if os.path.isfile(upload_dir):
            os.remove(upload_dir)
            os.rename(upload_dir + ".gone", upload_dir)
        os.chmod(upload_dir, 0o755)
    assert response.status_code == 503
    assert response.json["checks"]["storage"].startswith("failed")
    assert response.json["checks"]["database"] == "ok"


def test_healthz_reports_unreachable_redis(instance):
    from photoshare import create_app
    from tests.conftest import base_config

    app = create_app(base_config(instance) | {"REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        from photoshare.extensions import db

        db.create_all()
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"].startswith("failed")


# The limiter's counters: in Redis when REDIS_URL is set (one count for every gunicorn worker), else in memory.


def wrong_password_once(app) -> int:
    """One wrong password against a new password-protected share of `app`; returns the status."""
    from photoshare import albums
    from photoshare.access import create_share_link
    from photoshare.auth import create_user
    from photoshare.extensions import db

    with app.app_context():
        db.create_all()
        album = albums.create_album(create_user("owner@example.com", "long enough password"), "Trip")
        token = create_share_link(album, password="open sesame").token
    return app.test_client().get(f"/api/share/{token}", headers={"X-Share-Password": "wrong"}).status_code


def test_rate_limits_are_counted_in_redis_when_redis_url_is_set(instance, tmp_path):
    from limits.storage import RedisStorage

    from photoshare import create_app
    from photoshare.extensions import limiter
    from tests.conftest import base_config
    from tests.jobs_support import RedisServer

    redis = RedisServer(tmp_path / "redis")
    try:
        app = create_app(base_config(instance) | {"REDIS_URL": redis.url})
        assert wrong_password_once(app) == 403
        assert isinstance(limiter.storage, RedisStorage)
        assert redis.client.keys("LIMITS*"), "no rate-limit counter reached Redis"
    finally:
        redis.stop()


def test_rate_limits_stay_in_memory_without_redis(instance, monkeypatch):
    from limits.storage import MemoryStorage

    from photoshare import create_app
    from photoshare.extensions import limiter
    from tests.conftest import base_config

    for name in ("REDIS_URL", "CELERY_BROKER_URL", "RATELIMIT_STORAGE_URI"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(base_config(instance))
    assert wrong_password_once(app) == 403
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert isinstance(limiter.storage, MemoryStorage)


def test_healthz_names_an_unreachable_database(instance, tmp_path):
    from photoshare import create_app
    from tests.conftest import base_config

    app = create_app(base_config(instance) | {"DATABASE_URL": f"sqlite:///{tmp_path}/no/such/folder/photoshare.db"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "failed: OperationalError", "storage": "ok"}
    assert "Traceback" not in response.get_data(as_text=True)
