"""Shared fixtures: an app on a temporary instance folder, test data, and a real gunicorn."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from photoshare import albums, create_app
from photoshare.access import create_share_link
from photoshare.auth import create_user
from photoshare.extensions import db

ROOT = Path(__file__).resolve().parent.parent
OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "correct horse battery"


def make_jpeg(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 80, 40), *,
              taken_at: datetime | None = None, orientation: int | None = None, noise: int = 0) -> bytes:
    """A real JPEG; `noise` bytes of random pixels make files bigger and distinct."""
    image = Image.new("RGB", (width, height), color)
    if noise:
        image.putdata([tuple(os.urandom(3)) for _ in range(width * height)])
    exif = Image.Exif()
    if taken_at:
        exif.get_ifd(0x8769)[36867] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
    if orientation:
        exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def base_config(instance: Path) -> dict[str, Any]:
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key",
        "BASE_URL": "http://photoshare.test",
        # A temp archive goes as its last response closes, as every "nothing left behind" test checks at once;
        # test_downloads_archive.py tests the linger itself.
        "ARCHIVE_LINGER_SECONDS": 0,
    }


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server when PHOTOSHARE_TEST_POSTGRES=1, else None (tests use SQLite)."""
    if os.environ.get("PHOTOSHARE_TEST_POSTGRES") != "1":
        yield None
        return
    from tests.postgres import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def database_config(postgres_server) -> dict[str, Any]:
    """Extra app config choosing the database: a fresh PostgreSQL database per test, or the default SQLite."""
    if postgres_server is None:
        return {}
    return {"DATABASE_URL": postgres_server.new_database()}


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def app(instance: Path, database_config: dict[str, Any]):
    app = create_app(base_config(instance) | database_config)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def owner(app):
    with app.app_context():
        return create_user(OWNER_EMAIL, OWNER_PASSWORD).id


@pytest.fixture
def make_album(app, owner) -> Callable[..., int]:
    """make_album(files={"a.jpg": bytes, ...} or count=N, title=...) -> album id."""

    def factory(files: dict[str, bytes] | list[tuple[str, bytes]] | None = None, count: int = 3,
                title: str = "Summer holiday", owner_id: int | None = None) -> int:
        if files is None:
            files = [(f"IMG_{i:04d}.jpg", make_jpeg(color=(i * 40 % 256, 100, 150))) for i in range(count)]
        items = list(files.items()) if isinstance(files, dict) else list(files)
        with app.app_context():
            from photoshare.models import User

            album = albums.create_album(db.session.get(User, owner_id or owner), title)
            for name, data in items:
                albums.add_photo(album, name, io.BytesIO(data), commit=False)
            albums.refresh_version(album)
            return album.id

    return factory


@pytest.fixture
def make_share(app) -> Callable[..., str]:
    """make_share(album_id, password=None, expires_at=None, downloads_allowed=True) -> token."""

    def factory(album_id: int, **kwargs: Any) -> str:
        with app.app_context():
            from photoshare.models import Album

            return create_share_link(db.session.get(Album, album_id), **kwargs).token

    return factory


def login(client, email: str = OWNER_EMAIL, password: str = OWNER_PASSWORD):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


def wait_for_port(port: int, process: subprocess.Popen, log: Path | None = None, timeout: float = 30) -> None:
    """Return once something accepts connections on `port`; fail at once, with its log, if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:] if log and log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered on port {port} in {timeout} s")


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Ask a test server to stop (TERM), and kill it if it has not stopped within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A real gunicorn serving `wsgi:app` on the test's instance folder."""

    def __init__(self, instance: Path, env: dict[str, str] | None = None, workers: int = 2,
                 database_url: str | None = None, config_file: Path | None = None) -> None:
        """`config_file` (e.g. deploy/gunicorn.conf.py) replaces the test flags: only the bind is set here."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = instance / "gunicorn.log"
        environment = {
            **os.environ,
            "PHOTOSHARE_INSTANCE": str(instance),
            "SECRET_KEY": "test-secret-key",
            "BASE_URL": self.url,
            "ARCHIVE_LINGER_SECONDS": "0",  # as base_config: tests check that nothing is left at once
            **({"DATABASE_URL": database_url} if database_url else {}),
            **(env or {}),
        }
        flags = ["--worker-class", "gthread", "--threads", "4", "--workers", str(workers), "--timeout", "120"]
        if config_file is not None:
            flags = ["--config", str(config_file)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.port}", *flags],
            cwd=ROOT, env=environment, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process, self.log)

    def stop(self) -> None:
        stop_process(self.process, timeout=15)


@pytest.fixture
def live_server(app, instance: Path) -> Iterator[LiveServer]:
    """gunicorn on a free port, sharing the `app` fixture's database and files."""
    server = LiveServer(instance, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
    yield server
    server.stop()


# Object storage: a real S3 HTTP endpoint on this machine (moto in server mode), reached by boto3 over HTTP.
S3_TEST_KEYS = {"S3_ACCESS_KEY": "testing-access-key", "S3_SECRET_KEY": "testing-secret-key", "S3_REGION": "us-east-1"}


class MotoServer:
    """`python -m moto.server` on a free port; `env` can switch on moto's IAM checks (wrong-credential tests)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=S3_TEST_KEYS["S3_ACCESS_KEY"],
                            aws_secret_access_key=S3_TEST_KEYS["S3_SECRET_KEY"])

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """One moto S3 server for the whole run; tests keep apart by using their own bucket (`s3_config`)."""
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def s3_config(s3_server: MotoServer) -> dict[str, Any]:
    """App settings for STORAGE_BACKEND=s3 on a fresh, empty bucket of the test's own."""
    import uuid

    bucket = f"photoshare-test-{uuid.uuid4().hex[:16]}"
    s3_server.client().create_bucket(Bucket=bucket)
    return {"STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "S3_ENDPOINT_URL": s3_server.url, **S3_TEST_KEYS}


@pytest.fixture
def make_site(instance: Path, database_config: dict[str, Any]) -> Iterator[Callable[[dict[str, Any]], Any]]:
    """make_site(settings) -> an app on the test's instance folder with an owner; stopped afterwards."""
    made = []

    def factory(settings: dict[str, Any]):
        app = create_app(base_config(instance) | database_config | settings)
        with app.app_context():
            db.create_all()
            create_user("owner@example.com", "long enough password")
        made.append(app)
        return app

    yield factory
    for app in made:
        app.extensions["photoshare.jobs"].stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def s3_app(instance: Path, database_config: dict[str, Any], s3_config: dict[str, Any]):
    """Like `app`, but photos, thumbnails and archives live in the `s3_config` bucket."""
    app = create_app(base_config(instance) | database_config | s3_config)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
