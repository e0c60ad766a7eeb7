"""Schema migrations: a migrated database is exactly the models' schema, `init-db` creates, adopts and upgrades,
and `flask db upgrade` keeps the data. Runs on PostgreSQL too (PHOTOSHARE_TEST_POSTGRES=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from photoshare import create_app
from photoshare.auth import create_user
from photoshare.extensions import db
from photoshare.models import User
from photoshare.schema import MIGRATIONS_DIR, VERSION_TABLE, current_revision, init_migrations, upgrade_database
from tests.conftest import ROOT, base_config


@pytest.fixture
def bare_app(instance: Path, database_config):
    """An app whose database has no tables at all (the `app` fixture would create them)."""
    app = create_app(base_config(instance) | database_config)
    init_migrations(app)  # what create_app does under a command line
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def head_revision() -> str:
    script = ScriptDirectory.from_config(flask_migrate.Migrate().get_config(str(MIGRATIONS_DIR)))
    heads = script.get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}; merge them (flask db merge)"
    return heads[0]


def schema_differences() -> list:
    with db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), db.metadata)


def test_migrated_database_matches_the_models_exactly(bare_app):
    with bare_app.app_context():
        assert upgrade_database() == "created"
        assert schema_differences() == []
        assert current_revision() == head_revision()


def test_every_migration_downgrades_and_upgrades_again(bare_app):
    with bare_app.app_context():
        flask_migrate.upgrade(revision="head")
        flask_migrate.downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {VERSION_TABLE}
        flask_migrate.upgrade(revision="head")
        assert schema_differences() == []


def test_init_db_creates_a_new_database_then_runs_again_keeping_data(bare_app):
    runner = bare_app.test_cli_runner()
    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0 and first.stdout == "database ready\n"
    with bare_app.app_context():
        create_user("keep@example.com", "long enough")
    again = runner.invoke(args=["init-db"])
    assert again.exit_code == 0 and again.stdout == "database ready\n"
    with bare_app.app_context():
        assert [u.email for u in db.session.query(User)] == ["keep@example.com"]
        assert current_revision() == head_revision()
        assert upgrade_database() == "current"


def test_init_db_adopts_a_database_made_before_migrations(bare_app):
    with bare_app.app_context():
        db.create_all()  # what init-db did before migrations existed
        create_user("old@example.com", "long enough")
        assert current_revision() is None
    result = bare_app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0
    with bare_app.app_context():
        assert current_revision() == head_revision()
        assert [u.email for u in db.session.query(User)] == ["old@example.com"]
        assert schema_differences() == []


def test_flask_db_upgrade_command_keeps_an_installations_data(bare_app, tmp_path):
    with bare_app.app_context():
        upgrade_database()
        create_user("owner@example.com", "long enough")
        db.session.remove()
        db.engine.dispose()
    # The real command, from another working directory: the revisions are found by an absolute path.
    env = {**os.environ, "PHOTOSHARE_INSTANCE": bare_app.instance_path, "SECRET_KEY": "x",
           "DATABASE_URL": bare_app.config["SQLALCHEMY_DATABASE_URI"], "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with bare_app.app_context():
        assert current_revision() == head_revision()
        assert [u.email for u in db.session.query(User)] == ["owner@example.com"]


def test_names_revision_takes_bidi_out_of_stored_names_and_recomputes_every_album_version(bare_app):
    """Rows written by older code: a bidi trick in a name and a title, and versions digested with the old entry
    names. After the upgrade the names are clean and each version names the archive the app now builds."""
    from datetime import datetime

    from sqlalchemy import text

    from photoshare import albums
    from photoshare.models import Album

    with bare_app.app_context():
        flask_migrate.upgrade(revision="5d7818b17ce4")
        now = datetime(2026, 11, 30, 12, 0, 0)
        run = db.session.execute
        run(text("INSERT INTO users (id, email, password_hash, created_at) VALUES (1, 'o@example.com', 'x', :t)"),
            {"t": now})
        for album_id, title in [(1, "Trip \u202eevil"), (2, "Empty")]:
            run(text("INSERT INTO albums (id, owner_id, title, created_at, updated_at, version) "
                     "VALUES (:id, 1, :title, :t, :t, 'old-version')"), {"id": album_id, "title": title, "t": now})
        for position, name in enumerate(["photo\u202egpj.exe", "CON.jpg", "plain.jpg"]):
            run(text("INSERT INTO photos (album_id, position, original_filename, stored_name, size, sha256, crc32, "
                     "content_type, width, height, taken_at, uploaded_at) VALUES (1, :p, :name, :stored, 10, :sha, 0, "
                     "'image/jpeg', 4, 3, NULL, :t)"),
                {"p": position, "name": name, "stored": f"s{position}.jpg", "sha": str(position) * 64, "t": now})
        db.session.commit()
        flask_migrate.upgrade(revision="head")
        db.session.remove()
        album = db.session.get(Album, 1)
        assert album.title == "Trip evil"
        assert [p.original_filename for p in album.photos] == ["photogpj.exe", "CON.jpg", "plain.jpg"]
        assert [e.name for e in albums.archive_plan(album)] == ["photogpj.exe", "CON_.jpg", "plain.jpg"]
        assert album.version == albums.archive_digest(albums.archive_plan(album)) != "old-version"
        assert db.session.get(Album, 2).version == albums.EMPTY_VERSION


def test_existing_photos_get_random_rendition_names_of_their_own(bare_app):
    from sqlalchemy import text

    with bare_app.app_context():
        flask_migrate.upgrade(revision="5d7818b17ce4")
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO users (id, email, password_hash, created_at) "
                                    "VALUES (1, 'o@example.com', 'x', '2026-01-01')"))
            connection.execute(text("INSERT INTO albums (id, owner_id, title, created_at, updated_at, version) "
                                    "VALUES (1, 1, 'Old', '2026-01-01', '2026-01-01', 'v')"))
            for i in range(3):
                connection.execute(text(
                    "INSERT INTO photos (album_id, position, original_filename, stored_name, size, sha256, crc32, "
                    "content_type, width, height, uploaded_at) VALUES "
                    f"(1, {i}, 'a.jpg', 'stem{i}.jpg', 1, 'h', 0, 'image/jpeg', 1, 1, '2026-01-01')"))
        flask_migrate.upgrade(revision="head")
        with db.engine.connect() as connection:
            names = [row[0] for row in connection.execute(text("SELECT rendition_name FROM photos"))]
        assert len(set(names)) == 3 and all(len(name) == 32 and "stem" not in name for name in names)
        assert schema_differences() == []


def test_owners_made_before_session_tokens_each_get_their_own(bare_app):
    import sqlalchemy as sa

    with bare_app.app_context():
        flask_migrate.upgrade(revision="5d7818b17ce4")
        with db.engine.begin() as connection:
            for email in ("a@example.com", "b@example.com"):
                connection.execute(sa.text("INSERT INTO users (email, password_hash, created_at) "
                                           "VALUES (:email, 'x', CURRENT_TIMESTAMP)"), {"email": email})
        flask_migrate.upgrade(revision="head")
        tokens = [user.session_token for user in db.session.query(User)]
        assert len(tokens) == 2 and len(set(tokens)) == 2 and all(len(token) >= 40 for token in tokens)
        assert schema_differences() == []


def test_rules_revision_keeps_existing_links_open_with_no_rules(bare_app):
    """Links made before the download rules existed: no e-mail asked, no PIN, no limits, nothing counted."""
    from datetime import datetime

    from sqlalchemy import text

    from photoshare.models import ShareLink

    with bare_app.app_context():
        flask_migrate.upgrade(revision="a7c3e9d1f2b4")
        now = datetime(2026, 12, 1, 12, 0, 0)
        run = db.session.execute
        run(text("INSERT INTO users (id, email, password_hash, created_at, session_token) "
                 "VALUES (1, 'o@example.com', 'x', :t, 'tok')"), {"t": now})
        run(text("INSERT INTO albums (id, owner_id, title, created_at, updated_at, version) "
                 "VALUES (1, 1, 'Old', :t, :t, 'empty')"), {"t": now})
        run(text("INSERT INTO share_links (id, album_id, token, revoked, downloads_allowed, created_at, view_count, "
                 "download_started_count, download_count) VALUES (1, 1, 'old-token', false, true, :t, 4, 3, 2)"),
            {"t": now})
        db.session.commit()
        flask_migrate.upgrade(revision="head")
        db.session.remove()
        link = db.session.get(ShareLink, 1)
        assert (link.ask_email, link.download_pin_hash, link.download_pin_generation) == (False, None, 0)
        assert (link.max_album_downloads, link.max_photo_downloads) == (None, None)
        assert (link.album_downloads, link.photo_downloads, link.download_count) == (0, 0, 2)
