"""Shared fixtures: an app on a temporary instance folder, test data, a real gunicorn, and `Site` (the two together)."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from photoshare import albums, create_app
from photoshare.access import create_share_link
from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import Album, ShareLink, User

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


def database_settings(postgres_server) -> dict[str, Any]:
    """Extra app config choosing the database: a fresh PostgreSQL database, or the default SQLite."""
    if postgres_server is None:
        return {}
    return {"DATABASE_URL": postgres_server.new_database()}


@pytest.fixture
def database_config(postgres_server) -> dict[str, Any]:
    """`database_settings` for one test."""
    return database_settings(postgres_server)


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    return path


@contextmanager
def running_app(config: dict[str, Any]) -> Iterator[Flask]:
    """An app made from `config` with its tables created; its database connections closed afterwards."""
    app = create_app(config)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(instance: Path, database_config: dict[str, Any]):
    with running_app(base_config(instance) | database_config) as app:
        yield app


@pytest.fixture
def embedded_jobs(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[None]:
    """Background jobs in the app's own pool (no broker), with a short heartbeat limit for every app of the test,
    in-process and gunicorn alike; the pool is stopped afterwards. Use it before `app`, which reads the environment:
    `pytestmark = pytest.mark.usefixtures("embedded_jobs")`."""
    from tests.jobs_support import JOB_ENV

    for name, value in JOB_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    app = request.getfixturevalue("app")
    yield
    app.extensions["photoshare.jobs"].stop()


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


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never one given before in this run: a stack picks nginx's HTTPS port,
    then gunicorn's and nginx's HTTP port before any of them is bound, and the kernel may offer one twice."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


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


def module_instance(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """An empty instance folder for a module-scoped site (`name` tells the modules' folders apart)."""
    path = tmp_path_factory.mktemp(name) / "instance"
    path.mkdir()
    return path


def stop_serving(app: Flask, server: LiveServer) -> None:
    """Stop a site's gunicorn, then close its app's database connections."""
    server.stop()
    with app.app_context():
        db.engine.dispose()


def noise_jpeg(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "JPEG", quality=92)
    return out.getvalue()


@dataclass
class Site:
    """An app with an owner and the gunicorn serving it, seen from outside: a module's real server."""

    app: Flask
    server: LiveServer
    instance: Path
    owner_id: int

    @classmethod
    def start(cls, instance: Path, config: dict[str, Any] | None = None, *, env: dict[str, str] | None = None,
              owner_email: str = OWNER_EMAIL, workers: int = 2) -> Site:
        """Create the database and the owner for `base_config(instance) | config`, then start gunicorn with
        `env` on it; `stop()` ends both."""
        app = create_app(base_config(instance) | (config or {}))
        with app.app_context():
            db.create_all()
            owner_id = create_user(owner_email, OWNER_PASSWORD).id
        server = LiveServer(instance, env=env, workers=workers, database_url=app.config["SQLALCHEMY_DATABASE_URI"])
        return cls(app, server, instance, owner_id)

    def stop(self) -> None:
        stop_serving(self.app, self.server)

    @property
    def temp_dir(self) -> Path:
        return Path(self.app.config["TEMP_DIR"])

    def album(self, photos: int = 3, side: int = 300, title: str = "Holiday") -> tuple[int, str]:
        """A new album of noise JPEGs (side × side) and a share link: (album id, token)."""
        with self.app.app_context():
            album = albums.create_album(db.session.get(User, self.owner_id), title)
            for i in range(photos):
                albums.add_photo(album, f"IMG_{i:04d}.jpg", io.BytesIO(noise_jpeg(side)), commit=False)
            albums.refresh_version(album)
            return album.id, create_share_link(album).token

    def version(self, album_id: int) -> str:
        with self.app.app_context():
            return db.session.get(Album, album_id).version

    def builds(self, album_id: int) -> int:
        """How many times any worker built this album's current archive (from the log)."""
        return self.server.log.read_text().count(f"built archive album-{self.version(album_id)}.zip")

    def downloads(self, token: str) -> int:
        """Finished downloads of the link."""
        with self.app.app_context():
            return db.session.execute(db.select(ShareLink.download_count).where(ShareLink.token == token)).scalar_one()

    def started(self, token: str) -> int:
        with self.app.app_context():
            column = ShareLink.download_started_count
            return db.session.execute(db.select(column).where(ShareLink.token == token)).scalar_one()

    def url(self, token: str, what: str = "download-all") -> str:
        return f"{self.server.url}/api/share/{token}/{what}"

    def wait_temp_empty(self, timeout: float = 10) -> list[str]:
        """The temp folder's files once it is empty, or whatever is still there after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (left := sorted(os.listdir(self.temp_dir))) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left


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
    with running_app(base_config(instance) | database_config | s3_config) as app:
        yield app
