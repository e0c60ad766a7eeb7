"""Photoshare: share photo albums with a link; visitors view and download them, resumably."""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask, redirect, url_for
from sqlalchemy.orm import configure_mappers
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from .config import ConfigError, load_config
from .converters import IdConverter
from .extensions import csrf, db, limiter, login_manager
from .logs import init_logging


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, storage, blueprints, CLI and error pages."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("PHOTOSHARE_INSTANCE")
    instance_path = os.path.abspath(instance_path) if instance_path else None
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    load_config(app, config)
    if click.get_current_context(silent=True) is not None:  # a command (`flask db ...`), not a gunicorn worker;
        from .schema import init_migrations  # before the log handlers: Alembic's import-time notes stay out

        init_migrations(app)
    init_logging(app)  # one line per record, with the request id, never a password

    if app.config["PROXY_FIX_HOPS"]:
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]

    db.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    from .storage import init_storage

    init_storage(app)
    # Before any blueprint adds its rules: every `<int:…>` is an id the database can hold (converters.py).
    app.url_map.converters["int"] = IdConverter

    from . import activity, auth, bad_input, cli, demo, errors, headers, health, i18n, jobs, language
    from .owner import bp as owner_bp
    from .share import api_bp, pages_bp

    i18n.init_app(app)  # the language: the share's fixed one, the footer menu's cookie, Accept-Language
    app.session_interface = auth.SessionCookies()
    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(language.bp)  # the footer's language menu
    app.register_blueprint(owner_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # the API takes no cookies-only writes: shares are opened by token and password
    errors.register_error_handlers(app)
    headers.init_app(app)  # CSP, frame, sniffing, referrer and HSTS headers on every response
    bad_input.init_app(app)  # a NUL character in any query or form field is a 400 (PostgreSQL refuses it)
    cli.register(app)
    app.cli.add_command(demo.demo_command)
    jobs.init_jobs(app)  # background ZIP preparation, the ZIP cache, `flask cleanup`
    activity.init_app(app)  # visits and downloads per link, written off the request path; `share-activity`
    # The mappers are configured now, at start, not by a worker's first query (about 30 ms of a first request).
    configure_mappers()

    @app.get("/")
    def index() -> Response:
        return redirect(url_for("owner.albums"))

    return app


__all__ = ["ConfigError", "create_app"]
