"""Every setting Photoshare reads, its default, and the environment variable that overrides it.

Order of precedence (lowest first): the defaults below, `instance/config.py`, environment variables,
then the `config` mapping handed to `create_app` (tests). Nothing is read at import time.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message is one line a person can act on."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _log_format(value: str) -> str:
    if value.strip().lower() not in {"text", "json"}:
        raise ValueError("text or json")
    return value.strip().lower()


# name -> (default, parser). A default of None means "derived from the instance folder" or "off".
SETTINGS: dict[str, tuple[Any, Callable[[str], Any]]] = {
    "PHOTOSHARE_ENV": ("development", str),  # "production" makes SECRET_KEY mandatory
    "SECRET_KEY": (None, str),
    "BASE_URL": ("http://localhost:8000", str),  # every absolute link the app prints or e-mails
    "DATABASE_URL": (None, str),  # any SQLAlchemy URL; default sqlite in instance/
    # Connections a process keeps open to a database server: at least a worker's threads (GUNICORN_THREADS)
    # and its background threads, so that no request under load opens and closes a connection of its own.
    "DATABASE_POOL_SIZE": (20, int),
    "UPLOAD_DIR": (None, str),  # default instance/uploads
    "TEMP_DIR": (None, str),  # archives being built or served; default instance/tmp
    # Seconds a "Download all" temp archive stays after its last response closed: a download manager's next
    # connection or a resume within it reuses the archive instead of building it again; 0: removed at once.
    "ARCHIVE_LINGER_SECONDS": (30, float),
    # Seconds a "Download all" spends checking its photos on disk (one stat each) before the first byte; the
    # builder checks the rest beside its copying (a bad one then cuts the download short, and retries get the
    # clear error). A cold disk reads an inode per photo: 5,000 take about 70 ms.
    "ARCHIVE_CHECK_SECONDS": (0.025, float),
    "ZIP_CACHE_DIR": (None, str),  # prepared archives; default instance/zip-cache
    "ZIP_CACHE_TTL_HOURS": (24, float),
    "ZIP_CACHE_MAX_GB": (20, float),
    # An archive (album or selection) larger than this is also offered in parts of at most this size, each a
    # plain ZIP (no ZIP64); a float, so tests can make parts of a few KB; 0: never in parts.
    "ARCHIVE_PART_MB": (2000, float),
    # Photos above which "Download all" prepares in the background; 0: never. Default 100 with s3/r2 (bytes should
    # not go through gunicorn), 0 with local storage, where a "Download all" of any size starts at once.
    "PREPARE_THRESHOLD": (None, int),
    "PREPARE_THRESHOLD_MB": (None, int),  # ... or megabytes above this; 0: never. Default 2048 with s3/r2, 0 local
    "MAX_UPLOAD_MB": (200, int),  # per request; each file is also checked
    "THUMBNAIL_SIZE": (480, int),
    "VIEW_SIZE": (1600, int),  # long side of the large view a visitor opens in the gallery
    "LARGE_SIZE": (2048, int),  # long side of the "web size" JPEG visitors may download instead of the original
    "MAX_IMAGE_PIXELS": (150_000_000, int),  # bigger images are refused per file, from the header, before decoding
    "IMAGE_DECODE_MB": (300, int),  # decoded pixels one process holds at once; a bigger image decodes alone
    "GALLERY_PAGE_SIZE": (60, int),
    "PASSWORD_RATE_LIMIT": ("10 per minute", str),  # wrong share passwords per client address and link
    # Wrong download PINs per link from all addresses together (per address and link: PASSWORD_RATE_LIMIT):
    # a 4-digit PIN has 10,000 values, which many addresses could otherwise share out.
    "DOWNLOAD_PIN_LINK_RATE_LIMIT": ("100 per hour", str),
    "LOGIN_RATE_LIMIT": ("20 per minute", str),  # wrong owner log-ins per client address
    "LOGIN_ACCOUNT_RATE_LIMIT": ("100 per hour", str),  # wrong log-ins per e-mail address, from any client
    "DOWNLOAD_ALL_RATE_LIMIT": ("60 per minute", str),
    "RATELIMIT_ENABLED": (True, _bool),
    "REDIS_URL": (None, str),
    "CELERY_BROKER_URL": (None, str),
    "STORAGE_BACKEND": ("local", str),  # local | s3 | r2 (S3 at Cloudflare's endpoint)
    "S3_BUCKET": (None, str),
    "S3_ACCESS_KEY": (None, str),  # unset: boto3's own chain (instance role, ~/.aws)
    "S3_SECRET_KEY": (None, str),
    "S3_REGION": ("us-east-1", str),  # r2 always uses "auto"
    "S3_ENDPOINT_URL": (None, str),  # R2, MinIO and other S3-compatible stores; required for r2
    "S3_MULTIPART_CHUNK_MB": (8, int),  # uploads above this go in parts of this size (S3's minimum is 5)
    # A store that hangs must cost a request seconds, not minutes: attempts x (connect + read) + backoff (≤ 1 s)
    # bounds it, 13 s with these defaults, so the visitor gets a 503 well within 15 s.
    "S3_CONNECT_TIMEOUT": (2, float),  # seconds to open a connection to the store
    "S3_READ_TIMEOUT": (4, float),  # seconds the store may stay silent on an open connection
    "S3_MAX_ATTEMPTS": (2, int),  # tries per store request, the first one included
    "SIGNED_URL_TTL_SECONDS": (3600, int),  # presigned download URLs for photos
    "CDN_ENABLED": (False, _bool),
    "CDN_BASE_URL": (None, str),  # e.g. https://cdn.example.com, in front of the bucket
    # Both set: every CDN URL is signed with an expiry (CloudFront trusted key group, deploy/cdn.md) and photo
    # downloads go to the CDN; unset: originals only ever by presigned URL from the store.
    "CDN_SIGNING_KEY_ID": (None, str),  # the CloudFront public key's id
    "CDN_SIGNING_KEY_FILE": (None, str),  # the matching RSA private key, PEM
    "SENDFILE_BACKEND": ("", str),  # "x-accel" hands files to nginx
    "PROXY_FIX_HOPS": (0, int),
    "LOG_FORMAT": ("text", _log_format),  # "json": one JSON object per log line, for log collectors
    "HSTS_MAX_AGE": (31536000, int),  # Strict-Transport-Security seconds over HTTPS (headers.py); 0 sends none
    "SMTP_HOST": (None, str),
    "SMTP_PORT": (25, int),
    "SMTP_USER": (None, str),
    "SMTP_PASSWORD": (None, str),
    "SMTP_FROM": ("photoshare@localhost", str),
    "SMTP_STARTTLS": (False, _bool),
    "NOTIFY_RATE_LIMIT": ("5 per hour", str),  # "e-mail me when ready" requests per client address
    "JOB_WORKERS": (2, int),  # embedded mode (no broker): archive builds at once in each app process
    "JOB_STALE_SECONDS": (60, int),  # a preparing job whose heartbeat is older is dead: failed, partial removed
    "JOB_SWEEP_SECONDS": (300, int),  # how often stuck jobs and the ZIP cache are swept (beat or embedded)
    "ACTIVITY_ENABLED": (True, _bool),  # record visits and downloads per share link (photoshare/activity)
    # Seconds between the writer's batches: a request only queues its event; this is how stale the owner's page may be.
    "ACTIVITY_FLUSH_SECONDS": (1.0, float),
    "ACTIVITY_RETENTION_DAYS": (180, float),  # older events are summed into daily totals by the sweeper, then removed
}


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Fill `app.config` from defaults, instance/config.py, the environment and `overrides`."""
    for name, (default, _parser) in SETTINGS.items():
        app.config[name] = default
    app.config.from_pyfile("config.py", silent=True)
    for name, (_default, parser) in SETTINGS.items():
        raw = os.environ.get(name)
        if raw is not None and raw != "":
            try:
                app.config[name] = parser(raw)
            except ValueError as exc:
                raise ConfigError(f"{name}={raw!r} is not a valid value ({exc})") from None
    if overrides:
        app.config.update(overrides)
    _derive(app)


def _derive(app: Flask) -> None:
    """Settings that depend on others: paths under the instance folder, the database URL, the key."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    cfg = app.config
    cfg["UPLOAD_DIR"] = str(Path(cfg["UPLOAD_DIR"] or instance / "uploads").resolve())
    cfg["TEMP_DIR"] = str(Path(cfg["TEMP_DIR"] or instance / "tmp").resolve())
    cfg["ZIP_CACHE_DIR"] = str(Path(cfg["ZIP_CACHE_DIR"] or instance / "zip-cache").resolve())
    cfg["LOCK_DIR"] = str(Path(cfg.get("LOCK_DIR") or instance / "locks").resolve())
    cfg["PLAN_DIR"] = str(Path(cfg.get("PLAN_DIR") or instance / "plans").resolve())  # plan_files.py
    for key in ("UPLOAD_DIR", "TEMP_DIR", "ZIP_CACHE_DIR", "LOCK_DIR", "PLAN_DIR"):
        Path(cfg[key]).mkdir(parents=True, exist_ok=True)

    url = cfg.get("SQLALCHEMY_DATABASE_URI") or cfg["DATABASE_URL"]
    if not url:
        url = f"sqlite:///{instance / 'photoshare.sqlite3'}"
    if url.startswith("postgres://"):  # Heroku-style URLs name a dialect SQLAlchemy 2 removed
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    cfg["SQLALCHEMY_DATABASE_URI"] = url
    if not url.startswith("sqlite") and "SQLALCHEMY_ENGINE_OPTIONS" not in cfg:
        # SQLAlchemy keeps 5 and opens up to 10 more per checkout, closing each when it is returned: under 50
        # clients a PostgreSQL backend was started for a good share of requests.
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": cfg["DATABASE_POOL_SIZE"], "max_overflow": 10}
    cfg["MAX_CONTENT_LENGTH"] = cfg["MAX_UPLOAD_MB"] * 1024 * 1024
    in_bucket = str(cfg["STORAGE_BACKEND"]).strip().lower() in ("s3", "r2")
    for key, bucket_default in (("PREPARE_THRESHOLD", 100), ("PREPARE_THRESHOLD_MB", 2048)):
        if cfg.get(key) is None:
            cfg[key] = bucket_default if in_bucket else 0
    cfg["BASE_URL"] = cfg["BASE_URL"].rstrip("/")
    cfg["BROKER_URL"] = cfg["CELERY_BROKER_URL"] or cfg["REDIS_URL"]
    cfg["RATELIMIT_STORAGE_URI"] = cfg.get("RATELIMIT_STORAGE_URI") or cfg["REDIS_URL"] or "memory://"
    # Flask-Limiter would put X-RateLimit-* and Retry-After on every response of a limited route (a 200 with
    # "Retry-After: 0"); errors.limit_headers gives them to 429s only.
    cfg["RATELIMIT_HEADERS_ENABLED"] = False
    # The owner's session cookie: never sent cross-site by a form post, never read by scripts, and HTTPS-only
    # when the site is (auth.SessionCookies also marks it Secure on any request that came over HTTPS).
    cfg["SESSION_COOKIE_SAMESITE"] = cfg.get("SESSION_COOKIE_SAMESITE") or "Lax"
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SECURE"] = bool(cfg.get("SESSION_COOKIE_SECURE")) or cfg["BASE_URL"].startswith("https://")
    if not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = _development_secret_key(instance, cfg["PHOTOSHARE_ENV"])


def _development_secret_key(instance: Path, env: str) -> str:
    """In production a missing key is an error; in development one is made once and kept."""
    if env == "production":
        raise ConfigError("SECRET_KEY must be set when PHOTOSHARE_ENV=production (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
    key_file = instance / "secret_key"
    if not key_file.exists():
        # Written under a temporary name and renamed, so that workers starting together agree on one key.
        partial = instance / f".secret_key.{os.getpid()}"
        partial.write_text(secrets.token_hex(32))
        partial.chmod(0o600)
        try:
            os.link(partial, key_file)
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    return key_file.read_text().strip()
