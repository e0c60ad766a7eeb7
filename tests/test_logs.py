"""What the logs say: never a share password, the real size of every file response, one line per record with
the request id (JSON with LOG_FORMAT=json), and no gunicorn control socket in anyone's home.

The stack is the shipped one: gunicorn with deploy/gunicorn.conf.py (access and error logs in files, the
app's own lines on its stderr) behind nginx with the rendered deploy/nginx.conf; every log is read back.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from photoshare import albums
from photoshare.extensions import db
from photoshare.logs import JsonFormatter, LineFormatter, redact
from photoshare.models import Photo
from tests.conftest import LiveServer, make_jpeg
from tests.jobs_support import wait_until
from tests.nginx_support import (
    GUNICORN_CONF,
    Stack,
    fetch,
    make_certificate,
    start_stack,
    world_readable_tempdir,
)

SECRET = "Sup3rSecretPw"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")
# gunicorn's access line (deploy/gunicorn.conf.py): ... "METHOD URI PROTOCOL" STATUS BYTES ...ms "ref" "ua" ID
GUNICORN_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[\d.]+" (?P<status>\d+) (?P<bytes>\d+) .* (?P<id>\S+)$')
NGINX_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[\d.]+" (?P<status>\d+) (?P<bytes>\d+) .* (?P<id>\S+)$')


@dataclass
class Logs:
    """Where the stack writes: gunicorn's access and error logs, the app's stderr, and home (for ~/.gunicorn)."""

    access: Path
    error: Path
    app: Path
    home: Path

    def gunicorn_env(self, **extra: str) -> dict[str, str]:
        return {"GUNICORN_ACCESS_LOG": str(self.access), "GUNICORN_ERROR_LOG": str(self.error), "GUNICORN_WORKERS": "1",
                "GUNICORN_THREADS": "4", "HOME": str(self.home), "XDG_RUNTIME_DIR": "", **extra}


def make_logs(folder: Path, app_log: Path) -> Logs:
    home = folder / "home"
    home.mkdir()
    return Logs(folder / "gunicorn-access.log", folder / "gunicorn-error.log", app_log, home)


@pytest.fixture
def logged_stack(app, instance: Path, tmp_path: Path) -> Iterator[tuple[Stack, Logs]]:
    """nginx (rendered site) in front of gunicorn (deploy/gunicorn.conf.py, PROXY_FIX_HOPS=1), logs in files."""
    root = world_readable_tempdir("photoshare-logs-")
    cert, key = make_certificate(root)
    logs = make_logs(tmp_path, instance / "gunicorn.log")
    stack = start_stack(root / "nginx", instance, database_url=app.config["SQLALCHEMY_DATABASE_URI"], cert=cert,
                        key=key, gunicorn_workers=1, nginx_workers=1,
                        settings=logs.gunicorn_env(PROXY_FIX_HOPS="1", SENDFILE_BACKEND=""))
    yield stack, logs
    stack.stop()
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def share_links_table_gone(app) -> Iterator[None]:
    """A real unhandled error in the server: every share link request fails in the database while this lasts."""
    with app.app_context():
        db.session.execute(text("ALTER TABLE share_links RENAME TO share_links_away"))
        db.session.commit()
    try:
        yield
    finally:
        with app.app_context():
            db.session.execute(text("ALTER TABLE share_links_away RENAME TO share_links"))
            db.session.commit()


def access_lines(path: Path, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return [match for line in path.read_text().splitlines() if (match := pattern.search(line))]


def logged(path: Path, pattern: re.Pattern[str], uri: str, status: int, method: str = "GET") -> re.Match[str]:
    """The last access line for this request; waits for it (a server logs after the client has the last byte)."""

    def find() -> list[re.Match[str]]:
        return [m for m in access_lines(path, pattern) if (m["method"], m["uri"], m["status"]) == (method, uri, str(status))]

    return wait_until(find, timeout=10, what=f"a {status} line for {method} {uri} in {path}")[-1]


def first_photo(app, album_id: int) -> Photo:
    with app.app_context():
        photo = db.session.execute(db.select(Photo).where(Photo.album_id == album_id).order_by(Photo.id)).scalars().first()
        db.session.expunge(photo)
        return photo


def original(app, photo: Photo) -> bytes:
    return (Path(app.config["UPLOAD_DIR"]) / albums.photo_key(photo)).read_bytes()


# ---- passwords ------------------------------------------------------------------------------------------------


def test_share_password_is_in_no_log_line_of_nginx_gunicorn_or_the_app(logged_stack, app, make_album, make_share):
    stack, logs = logged_stack
    album_id = make_album(count=1)
    token = make_share(album_id, password=SECRET)
    photo = f"/api/share/{token}/download/{first_photo(app, album_id).id}"
    for base in (stack.url, stack.gunicorn.url):  # through nginx, and straight to gunicorn
        assert fetch(f"{base}/s/{token}?password={SECRET}").status == 303
        assert fetch(f"{base}/s/{token}?password={SECRET}x").status in (401, 403)
        assert fetch(f"{base}/s/{token}?view=1&p%61ssword={SECRET}").status == 303  # Werkzeug decodes the key
        assert fetch(f"{base}/api/share/{token}", headers={"X-Share-Password": SECRET}).status == 200
        assert fetch(f"{base}{photo}?PASSWORD={SECRET}&password={SECRET}").status == 200
        assert fetch(f"{base}/s/{token}", headers={"Referer": f"https://elsewhere.example/s/{token}?password={SECRET}"}
                     ).status in (200, 401)
    # A request line gunicorn refuses: its error log quotes the line.
    with socket.create_connection(("127.0.0.1", stack.gunicorn.port), timeout=10) as raw:
        raw.sendall(f"GET /s/{token}?password={SECRET}\r\nHost: x\r\n\r\n".encode())
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    wait_until(lambda: "Invalid request" in logs.error.read_text(), what="gunicorn's error line")
    nginx_logs = sorted(stack.nginx.root.glob("*.log"))
    for log in [logs.access, logs.error, logs.app, *nginx_logs]:
        assert SECRET not in log.read_text(), f"{log.name} holds the password:\n{log.read_text()}"
    # The lines are there, redacted: the right files were read.
    assert f"/s/{token}?password=[redacted]" in logs.access.read_text()
    assert f"/s/{token}?view=1&p%61ssword=[redacted]" in logs.access.read_text()
    assert f"/s/{token}?[redacted]" in (stack.nginx.root / "access.log").read_text()
    assert f"/s/{token}?password=[redacted]" in logs.error.read_text()


def test_redact_hides_password_parameters_and_the_header_in_any_spelling():
    assert redact("GET /s/abc?password=hunter2 HTTP/1.1") == "GET /s/abc?password=[redacted] HTTP/1.1"
    assert redact("/s/a?x=1&Pass%77ord=hunter2&y=2") == "/s/a?x=1&Pass%77ord=[redacted]&y=2"
    assert redact("/s/a?password=it's;(a),b&y=2") == "/s/a?password=[redacted]&y=2"  # legal in a query string
    assert redact("form: new_password=hunter2 SMTP_PASSWORD=hunter2") == (
        "form: new_password=[redacted] SMTP_PASSWORD=[redacted]")
    assert redact("{'X-Share-Password': 'hunter 2', 'Accept': '*/*'}") == (
        "{'X-Share-Password': '[redacted]', 'Accept': '*/*'}")
    assert redact("X-Download-Pin: 4821") == "X-Download-Pin: [redacted]"
    assert redact("HTTP_X_DOWNLOAD_PIN=048213 next") == "HTTP_X_DOWNLOAD_PIN=[redacted]"
    assert redact("HTTP_X_SHARE_PASSWORD=hunter2\nx-share-password: hunter 2, more") == (
        "HTTP_X_SHARE_PASSWORD=[redacted]\nx-share-password: [redacted], more")
    assert redact("GET /s/abc?view=1 200 1234 (ratio=1.5)") == "GET /s/abc?view=1 200 1234 (ratio=1.5)"


def test_app_formatters_redact_messages_and_tracebacks():
    try:
        raise ValueError(f"bad /s/t?password={SECRET}")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "open %s", (f"?password={SECRET}",),
                                                   sys.exc_info())
    for formatter in (LineFormatter("%(message)s"), JsonFormatter()):
        line = formatter.format(record)
        assert SECRET not in line and "[redacted]" in line and "\n" not in line


# ---- sizes ------------------------------------------------------------------------------------------------------


def test_access_logs_count_the_bytes_of_photos_ranges_and_archives(logged_stack, app, make_album, make_share):
    stack, logs = logged_stack
    files = {f"p{i}.jpg": make_jpeg(300, 300, noise=1) for i in range(3)}
    album_id = make_album(files=files)
    token = make_share(album_id)
    photo = first_photo(app, album_id)
    size = len(original(app, photo))
    path = f"/api/share/{token}/download/{photo.id}"
    archive = f"/api/share/{token}/download-all"
    full = fetch(stack.url + path)
    part = fetch(stack.url + path, headers={"Range": "bytes=100-1099"})
    whole = fetch(stack.url + archive)
    head = fetch(stack.url + archive, method="HEAD")
    assert (full.status, len(full.body), part.status, len(part.body)) == (200, size, 206, 1000)
    # Every photo is in the archive (random noise makes their sizes differ: not 3 × the first one's).
    assert whole.status == 200 and len(whole.body) > sum(map(len, files.values())) and head.status == 200
    for log, pattern in ((logs.access, GUNICORN_LINE), (stack.nginx.root / "access.log", NGINX_LINE)):
        assert int(logged(log, pattern, path, 200)["bytes"]) == size, log.name
        assert int(logged(log, pattern, path, 206)["bytes"]) == 1000, log.name
        assert int(logged(log, pattern, archive, 200)["bytes"]) == len(whole.body), log.name
        assert int(logged(log, pattern, archive, 200, method="HEAD")["bytes"]) == 0, log.name


def test_straight_to_gunicorn_a_cut_download_logs_what_was_sent(logged_stack, app, make_album, make_share):
    """sendfile for a 206 from an offset, and the whole file: the count is the window's, not the file's."""
    stack, logs = logged_stack
    album_id = make_album(files={"big.jpg": make_jpeg(800, 800, noise=1)})
    token = make_share(album_id)
    photo = first_photo(app, album_id)
    size = len(original(app, photo))
    path = f"/api/share/{token}/download/{photo.id}"
    assert len(fetch(stack.gunicorn.url + path, headers={"Range": f"bytes={size - 777}-"}).body) == 777
    assert len(fetch(stack.gunicorn.url + path).body) == size
    assert int(logged(logs.access, GUNICORN_LINE, path, 206)["bytes"]) == 777
    assert int(logged(logs.access, GUNICORN_LINE, path, 200)["bytes"]) == size


# ---- gunicorn's control socket --------------------------------------------------------------------------------------


def test_gunicorn_makes_no_control_socket_in_the_home_folder(logged_stack):
    stack, logs = logged_stack
    assert fetch(f"{stack.gunicorn.url}/healthz").status == 200
    assert list(logs.home.iterdir()) == []  # gunicorn 25+ would make ~/.gunicorn/gunicorn.ctl


# ---- one line per record, with the request id -----------------------------------------------------------------------


def test_request_id_ties_nginx_gunicorn_and_app_lines_together(logged_stack, app, make_album, make_share):
    stack, logs = logged_stack
    album_id = make_album(count=1)
    token = make_share(album_id)
    photo = first_photo(app, album_id)
    (Path(app.config["UPLOAD_DIR"]) / albums.photo_key(photo)).unlink()  # the app logs an error for this request
    path = f"/api/share/{token}/download/{photo.id}"
    reply = fetch(stack.url + path, headers={"X-Request-ID": "chosen-by-the-client"})
    request_id = reply.header("X-Request-ID")
    assert reply.status == 500 and HEX_ID.match(request_id or "")  # nginx's $request_id, not the client's
    assert logged(stack.nginx.root / "access.log", NGINX_LINE, path, 500)["id"] == request_id
    assert logged(logs.access, GUNICORN_LINE, path, 500)["id"] == request_id
    app_lines = [line for line in logs.app.read_text().splitlines() if f"[{request_id}]" in line]
    assert len(app_lines) == 1 and "missing from storage" in app_lines[0]


def test_a_logged_exception_is_one_line_with_its_request_id(logged_stack, app, make_album, make_share):
    stack, logs = logged_stack
    token = make_share(make_album(count=1))
    with share_links_table_gone(app):
        reply = fetch(f"{stack.url}/s/{token}")
    assert reply.status == 500
    request_id = reply.header("X-Request-ID")
    lines = logs.app.read_text().splitlines()
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ", line) for line in lines), lines
    error = [line for line in lines if f"[{request_id}]" in line]
    assert len(error) == 1 and "unhandled error on GET /s/" in error[0]
    assert "Traceback (most recent call last):\\n" in error[0] and "share_links" in error[0]


def test_request_id_from_the_client_is_believed_only_behind_a_trusted_proxy(app, client):
    assert HEX_ID.match(client.get("/healthz", headers={"X-Request-ID": "forged"}).headers["X-Request-ID"])
    app.config["PROXY_FIX_HOPS"] = 1
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    assert HEX_ID.match(client.get("/healthz", headers={"X-Request-ID": "a b\\nc"}).headers["X-Request-ID"])


def test_json_log_format_writes_one_object_per_line_everywhere(app, instance, tmp_path, make_album, make_share):
    logs = make_logs(tmp_path, instance / "gunicorn.log")
    server = LiveServer(instance, env=logs.gunicorn_env(LOG_FORMAT="json"), database_url=app.config["SQLALCHEMY_DATABASE_URI"],
                        config_file=GUNICORN_CONF)
    try:
        token = make_share(make_album(count=1))
        ok = fetch(f"{server.url}/s/{token}?password={SECRET}")
        with share_links_table_gone(app):
            failed = fetch(f"{server.url}/s/{token}")
    finally:
        server.stop()
    assert ok.status == 303 and failed.status == 500
    records = {log.name: [json.loads(line) for line in log.read_text().splitlines()] for log in
               (logs.app, logs.access, logs.error)}
    assert all(records.values()), records
    [error] = [r for r in records[logs.app.name] if r["request_id"] == failed.header("X-Request-ID")]
    assert error["level"] == "ERROR" and error["message"].startswith("unhandled error on GET /s/")
    assert error["exception"].startswith("Traceback") and "share_links" in error["exception"]
    access = {r["request_id"]: r for r in records[logs.access.name]}
    assert access[failed.header("X-Request-ID")]["status"] == 500
    assert access[ok.header("X-Request-ID")]["request"] == f"GET /s/{token}?password=[redacted] HTTP/1.1"
    assert any("Booting worker" in r["message"] for r in records[logs.error.name])


def test_celery_worker_logs_through_the_apps_handler(app, instance: Path):
    """Celery keeps its hands off the root logger: the worker's records are the app's JSON lines too."""
    from tests.jobs_support import CeleryWorker, RedisServer

    redis = RedisServer(instance / "redis")
    try:
        worker = CeleryWorker(instance, {"REDIS_URL": redis.url, "SECRET_KEY": "test-secret-key", "LOG_FORMAT": "json",
                                         "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"]}, concurrency=1)
        worker.stop()
    finally:
        redis.stop()
    records = [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]
    ready = [r for r in records if r["message"].endswith(" ready.")]
    assert ready and ready[0]["logger"].startswith("celery") and ready[0]["request_id"] == "-"
