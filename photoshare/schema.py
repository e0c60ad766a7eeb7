"""The database schema over time: Alembic revisions in migrations/ (Flask-Migrate), and `init-db`'s one step.

`flask --app wsgi db upgrade` upgrades an installation and keeps its data; `init-db` does the same and also
creates a new database, and adopts one made before migrations existed (by `db.create_all()`). No `request`.
"""

from __future__ import annotations

from pathlib import Path

import flask_migrate
from flask import Flask, current_app
from sqlalchemy import inspect

from .extensions import db

# An absolute folder: `flask db ...` and `init-db` find the revisions from any working directory.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

VERSION_TABLE = "alembic_version"


def init_migrations(app: Flask) -> None:
    """Flask-Migrate for `app`: create_app does it for commands only, since importing Alembic is a third of a
    gunicorn worker's start-up and a worker never migrates."""
    if "migrate" not in app.extensions:
        flask_migrate.Migrate(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)


def upgrade_database() -> str:
    """Bring the database to the latest revision; returns "created", "adopted", "upgraded" or "current".

    Safe to run again and on a database in use: a revision already applied is never applied twice.
    """
    init_migrations(current_app._get_current_object())  # type: ignore[attr-defined]
    tables = set(inspect(db.engine).get_table_names())
    if VERSION_TABLE not in tables and tables & set(db.metadata.tables):
        # Made by create_all() before migrations: add any table it lacks, then record it as the latest schema.
        db.create_all()
        flask_migrate.stamp(revision="head")
        return "adopted"
    before = current_revision()
    flask_migrate.upgrade(revision="head")
    after = current_revision()
    if before is None:
        return "created"
    return "current" if before == after else "upgraded"


def current_revision() -> str | None:
    """The revision the database is at, None when it has never been migrated."""
    with db.engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        return connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()  # noqa: S608 (a constant)
