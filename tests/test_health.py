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
