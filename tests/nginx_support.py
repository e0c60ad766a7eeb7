"""The production stack on this machine: nginx (Debian's nginx-light) with the site file from deploy/nginx.conf,
in front of gunicorn started with deploy/gunicorn.conf.py. Used by tests/test_nginx.py and bench/load_test.py.

nginx runs as root's child in a temporary prefix (its own pid, logs and temp folders, `daemon off`), its
workers as `nobody`, like www-data on a server: a file nginx may not read shows up here as it would there.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, LiveServer, free_port, stop_process, wait_for_port

DEPLOY = ROOT / "deploy"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"


def ensure_nginx() -> str:
    """The nginx binary, installed from Debian's nginx-light when absent (the tests run as root)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx-light"], check=True, env=env,
                   capture_output=True, timeout=600)
    return shutil.which("nginx") or "/usr/sbin/nginx"


def render_site(values: dict[str, str]) -> str:
    """deploy/nginx.conf with its placeholders filled by deploy/render_nginx.py's own `render`."""
    spec = importlib.util.spec_from_file_location("render_nginx", DEPLOY / "render_nginx.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.render(values)


def world_readable_tempdir(prefix: str) -> Path:
    """A temp folder nginx's `nobody` workers can enter (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


MAIN_CONF = """daemon off;
worker_processes {workers};
user nobody nogroup;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    access_log {root}/stock-access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
{extra}
    include {root}/site.conf;
}}
"""


class NginxServer:
    """nginx with the rendered site file; `extra` is added to the http block (the benchmark's static server)."""

    def __init__(self, root: Path, *, upstream: str, instance: Path, cert: Path, key: Path,
                 max_upload_mb: int, workers: int = 2, extra: str = "", https_port: int | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(exist_ok=True)
        self.http_port, self.https_port = free_port(), https_port or free_port()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.site = render_site({
            "PHOTOSHARE_SERVER_NAME": "127.0.0.1 localhost",
            "PHOTOSHARE_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "PHOTOSHARE_HTTPS_LISTEN": f"127.0.0.1:{self.https_port}",
            "PHOTOSHARE_ACCESS_LOG": str(root / "access.log"),
            "PHOTOSHARE_TLS_CERT": str(cert),
            "PHOTOSHARE_TLS_KEY": str(key),
            "PHOTOSHARE_UPSTREAM": upstream,
            "PHOTOSHARE_MAX_UPLOAD_MB": str(max_upload_mb),
            "PHOTOSHARE_STATIC_DIR": str(ROOT / "photoshare" / "static"),
            "PHOTOSHARE_UPLOAD_DIR": str(instance / "uploads"),
            "PHOTOSHARE_ZIP_CACHE_DIR": str(instance / "zip-cache"),
        })
        (root / "site.conf").write_text(self.site)
        self.conf = root / "nginx.conf"
        self.conf.write_text(MAIN_CONF.format(root=root, workers=workers, extra=extra))
        binary = ensure_nginx()
        check = subprocess.run([binary, "-t", "-p", str(root), "-c", str(self.conf)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {check.stderr}")
        self.process = subprocess.Popen([binary, "-p", str(root), "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=(root / "stderr.log").open("ab"))
        wait_for_port(self.https_port, self.process, root / "error.log")

    def stop(self) -> None:
        stop_process(self.process)  # TERM: fast shutdown of master and workers


@dataclass
class Stack:
    """gunicorn (deploy/gunicorn.conf.py) behind nginx (deploy/nginx.conf) on one instance folder."""

    gunicorn: LiveServer
    nginx: NginxServer
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def x_accel(self) -> bool:
        return self.settings.get("SENDFILE_BACKEND") == "x-accel"

    def stop(self) -> None:
        self.nginx.stop()
        self.gunicorn.stop()


def start_stack(root: Path, instance: Path, *, database_url: str, settings: dict[str, str], cert: Path, key: Path,
                gunicorn_workers: int = 2, nginx_workers: int = 2, extra_nginx: str = "") -> Stack:
    """nginx's port is chosen first, so that the app's BASE_URL names it."""
    https_port = free_port()
    env = {"GUNICORN_WORKERS": str(gunicorn_workers), "BASE_URL": f"https://127.0.0.1:{https_port}", **settings}
    server = LiveServer(instance, env=env, database_url=database_url, config_file=GUNICORN_CONF)
    try:
        nginx = NginxServer(root, upstream=f"127.0.0.1:{server.port}", instance=instance, cert=cert, key=key,
                            max_upload_mb=int(settings.get("MAX_UPLOAD_MB", "200")), workers=nginx_workers,
                            extra=extra_nginx, https_port=https_port)
    except BaseException:
        server.stop()
        raise
    return Stack(server, nginx, settings)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def _unverified_context() -> ssl.SSLContext:
    """TLS without checking the certificate (the test's own), made once: `ssl.create_default_context()` loads
    the system's CA bundle, 30 ms of CPU per request, which the load test's probes used to count as waiting."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


UNVERIFIED_TLS = _unverified_context()


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
          source: str | None = None, timeout: float = 30) -> Reply:
    """One HTTPS request (certificate not checked: it is the test's own), optionally from a given local address
    (127.0.0.2, 127.0.0.3, ...: distinct clients as nginx sees them)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    kwargs: dict[str, Any] = {"timeout": timeout}
    if parts.scheme == "https":
        kwargs["context"] = UNVERIFIED_TLS
    if source:
        kwargs["source_address"] = (source, 0)
    connection = connection_class(parts.hostname, parts.port, **kwargs)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()
