"""`GET /healthz`: is every part this instance depends on answering? For load balancers and monitors."""

from __future__ import annotations

import io
import uuid

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from werkzeug.wrappers import Response

from .extensions import db
from .storage import get_storage

bp = Blueprint("health", __name__)


def _check_database() -> None:
    db.session.execute(text("SELECT 1"))


def _check_storage() -> None:
    """A real write, read and delete: a read-only or full store must show here, not on the next upload."""
    storage, key = get_storage(), f"health/{uuid.uuid4().hex}"
    storage.save(key, io.BytesIO(b"ok"))
    try:
        with storage.open(key) as handle:
            if handle.read() != b"ok":
                raise RuntimeError("read back different bytes")
    finally:
        storage.delete(key)


def _check_redis() -> None:
    import redis

    redis.Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=2).ping()


@bp.get("/healthz")
def healthz() -> Response:
    """200 when every part answers, 503 naming the parts that did not."""
    checks = {"database": _check_database, "storage": _check_storage}
    if current_app.config["REDIS_URL"]:
        checks["redis"] = _check_redis
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 (any failure of a dependency is a reportable state, not a crash)
            current_app.logger.warning("health check %s failed: %s", name, exc)
            results[name] = f"failed: {type(exc).__name__}"
    healthy = all(value == "ok" for value in results.values())
    response = jsonify({"status": "ok" if healthy else "failed", "checks": results})
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
