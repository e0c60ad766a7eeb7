"""Command line: `flask --app wsgi <command>`. Names and output are a public, scriptable interface.

Bad arguments give one line on stderr and exit code 1 (2 for usage errors); never a traceback.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from . import albums
from .access import PIN_SHAPE, create_share_link, share_url
from .auth import create_user, find_user, set_password
from .config import ConfigError
from .extensions import db
from .i18n import LANGUAGES
from .images import InvalidImage
from .models import Album, User, utcnow
from .storage import StorageError
from .storage.local import LocalStorage
from .storage.migrate import migrate

MAX_EXPIRY_HOURS = 10 * 365 * 24  # keeps `now + hours` a real date, like the owner pages' limit


class Command(click.Command):
    """A command whose every failure is one line on stderr: usage errors (exit 2), database and storage errors
    (exit 1) alike, without click's usage banner and never with a traceback."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            error = click.ClickException(exc.format_message())
            error.exit_code = exc.exit_code
            raise error from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:
            first_line = (str(getattr(exc, "orig", None) or exc).splitlines() or ["unknown"])[0]
            raise click.ClickException(
                f"database error: {first_line} (is DATABASE_URL right, and has init-db been run?)"
            ) from None
        except StorageError as exc:
            raise click.ClickException(f"storage error: {exc}") from None


class Hours(click.ParamType):
    """A number of hours the new link stays open: more than 0, finite, at most 10 years."""

    name = "hours"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            hours = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of hours", param, ctx)
        if not math.isfinite(hours) or not 0 < hours <= MAX_EXPIRY_HOURS:
            self.fail(f"{value!r} must be more than 0 and at most {MAX_EXPIRY_HOURS} hours", param, ctx)
        return hours


@click.command("init-db", cls=Command)
@with_appcontext
def init_db_command() -> None:
    """Create the database or upgrade it to the latest migration (safe to run again: existing data is kept)."""
    from .schema import upgrade_database

    upgrade_database()
    click.echo("database ready")


@click.command("create-user", cls=Command)
@click.argument("email")
@click.option("--password", required=True, help="At least 8 characters.")
@with_appcontext
def create_user_command(email: str, password: str) -> None:
    """Create an owner account."""
    try:
        user = create_user(email, password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created user {user.email}")


@click.command("set-password", cls=Command)
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters.")
@with_appcontext
def set_password_command(email: str, password: str) -> None:
    """Give an owner a new password; every browser logged in as them is logged out."""
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    try:
        set_password(user, password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password changed for {user.email}; every session of theirs has ended")


@click.command("import-album", cls=Command)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--title", required=True)
@click.option("--owner", "owner_email", required=True, help="E-mail of an existing owner.")
@click.option("--json", "as_json", is_flag=True, help='Print {"album_id", "photos", "skipped"}.')
@with_appcontext
def import_album_command(directory: Path, title: str, owner_email: str, as_json: bool) -> None:
    """Import every image directly in DIRECTORY, in name order, keeping the original filenames."""
    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a directory")
    owner = db.session.execute(db.select(User).where(User.email == owner_email.strip().lower())).scalar_one_or_none()
    if owner is None:
        raise click.ClickException(f"no user {owner_email}; create one with create-user")
    try:
        album = albums.create_album(owner, title)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    imported, skipped = 0, []
    for path in sorted((p for p in directory.iterdir() if p.is_file()), key=lambda p: p.name):
        try:
            with path.open("rb") as source:
                albums.add_photo(album, path.name, source, commit=False)
            imported += 1
        except InvalidImage as exc:
            skipped.append({"file": path.name, "reason": str(exc)})
        except OSError as exc:  # unreadable (permissions, vanished): report it and go on with the rest
            skipped.append({"file": path.name, "reason": f"cannot read the file ({exc.strerror or exc})"})
    albums.refresh_version(album)
    if as_json:
        click.echo(json.dumps({"album_id": album.id, "photos": imported, "skipped": skipped}))
    else:
        for item in skipped:
            click.echo(f"skipped {item['file']}: {item['reason']}", err=True)
        click.echo(album.id)


@click.command("make-renditions", cls=Command)
@with_appcontext
def make_renditions_command() -> None:
    """Make every photo's missing thumbnail and large view (after the upgrade that renamed them, older photos
    get theirs here rather than on a visitor's request); safe to run again."""
    from .storage import get_storage

    made = albums.make_missing_renditions(get_storage(), lambda line: click.echo(line, err=True))
    click.echo(f"made the thumbnail and view of {made} photos")


@click.command("create-share", cls=Command)
@click.argument("album_id", type=int)
@click.option("--password", default=None, help="Visitors must enter it.")
@click.option("--expires-in", "expires_in", type=Hours(), default=None, help="Hours until the link stops working.")
@click.option("--no-downloads", is_flag=True, help="Visitors may look but not download.")
@click.option("--ask-email", is_flag=True, help="Visitors give an e-mail address before downloads.")
@click.option("--download-pin", default=None, help="4 to 6 digits needed to download (viewing needs none).")
@click.option("--max-album-downloads", type=click.IntRange(min=1, max=1_000_000), default=None, help="Album, part and selection archives.")
@click.option("--max-photo-downloads", type=click.IntRange(min=1, max=1_000_000), default=None, help="Single photos.")
@click.option(
    "--language", type=click.Choice(LANGUAGES), default=None,
    help="The language of the link's pages and e-mails, whatever the visitor's browser says (default: the visitor's).",
)
@click.option("--web-size-only", is_flag=True, help="Visitors download LARGE_SIZE JPEGs, never the originals.")
@click.option("--keep-location", is_flag=True, help="Leave GPS and place names in downloads (removed by default).")
@click.option("--json", "as_json", is_flag=True, help='Print {"token", "url"}.')
@with_appcontext
def create_share_command(
    album_id: int, password: str | None, expires_in: float | None, no_downloads: bool, ask_email: bool,
    download_pin: str | None, max_album_downloads: int | None, max_photo_downloads: int | None, language: str | None,
    web_size_only: bool, keep_location: bool, as_json: bool,
) -> None:
    """Create a share link for an album and print its URL."""
    if password is not None and not password:
        raise click.ClickException("--password must not be empty (leave it out for a link without a password)")
    album = db.session.get(Album, album_id)
    if album is None:
        raise click.ClickException(f"no album with id {album_id}")
    expires_at = utcnow() + timedelta(hours=expires_in) if expires_in else None
    if download_pin is not None and not PIN_SHAPE.fullmatch(download_pin):
        raise click.ClickException("--download-pin must be 4 to 6 digits")
    link = create_share_link(
        album, password=password, expires_at=expires_at, downloads_allowed=not no_downloads, ask_email=ask_email,
        download_pin=download_pin, max_album_downloads=max_album_downloads, max_photo_downloads=max_photo_downloads,
        language=language, web_size_only=web_size_only, strip_location=not keep_location,
    )
    if as_json:
        click.echo(json.dumps({"token": link.token, "url": share_url(link.token)}))
    else:
        click.echo(share_url(link.token))


@click.command("storage-migrate")
@click.option("--to", "backend", type=click.Choice(["s3", "r2"]), required=True, help="The store to copy into.")
@with_appcontext
def storage_migrate_command(backend: str) -> None:
    """Make older photos' missing thumbnails, views, large downloads and location-free copies, then copy every
    local file (originals and all those) into the bucket, verified; safe to run again."""
    from .storage.s3 import S3Storage  # boto3 only where a bucket is used

    config = current_app.config
    try:
        target = S3Storage.from_config(config, backend)
        target.check()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    source = LocalStorage(config["UPLOAD_DIR"])
    made = albums.make_missing_renditions(source, click.echo)
    click.echo(f"made the thumbnail and view of {made} older photos")
    click.echo(f"copying {source.root} to bucket {target.bucket}")
    try:
        report = migrate(source, target, click.echo)
    except StorageError as exc:
        raise click.ClickException(f"{exc}; verified files are kept, run the command again to resume") from None
    click.echo(f"done: {report.copied} copied, {report.present} already present, {len(report.failed)} failed")
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} files failed verification; run the command again")


COMMANDS = [init_db_command, create_user_command, set_password_command, import_album_command, create_share_command,
            storage_migrate_command, make_renditions_command]


def register(app: Flask) -> None:
    """The commands here; `flask demo` (demo.py, built on `Command`) is registered by create_app, so this
    module never imports the one that imports it."""
    for command in COMMANDS:
        app.cli.add_command(command)
