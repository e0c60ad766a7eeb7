"""The database schema over time: Alembic revisions in migrations/ (Flask-Migrate), and `init-db`'s one step.

`flask --app wsgi db upgrade` upgrades an installation and keeps its data; `init-db` does the same and also
creates a new database, and adopts one made before migrations existed (by `db.create_all()`). No `request`.
"""

from __future__ import annotations

import flask_migrate
from sqlalchemy import inspect

from .extensions import db

VERSION_TABLE = "alembic_version"


def upgrade_database() -> str:
    """Bring the database to the latest revision; returns "created", "adopted", "upgraded" or "current".

    Safe to run again and on a database in use: a revision already applied is never applied twice.
    """
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
