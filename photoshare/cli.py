"""Command line: `flask --app wsgi <command>`. Names and output are a public, scriptable interface.

Bad arguments give one line on stderr and exit code 1 (2 for usage errors); never a traceback.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app

from . import albums
from .access import create_share_link
from .auth import create_user
from .extensions import db
from .images import InvalidImage
from .models import Album, User, utcnow


def share_url(token: str) -> str:
    return f"{current_app.config['BASE_URL']}/s/{token}"


@click.command("init-db")
def init_db_command() -> None:
    """Create the database tables (safe to run again: existing data is kept)."""
    db.create_all()
    click.echo("database ready")


@click.command("create-user")
@click.argument("email")
@click.option("--password", required=True, help="At least 8 characters.")
def create_user_command(email: str, password: str) -> None:
    """Create an owner account."""
    try:
        user = create_user(email, password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created user {user.email}")


@click.command("import-album")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--title", required=True)
@click.option("--owner", "owner_email", required=True, help="E-mail of an existing owner.")
@click.option("--json", "as_json", is_flag=True, help='Print {"album_id", "photos", "skipped"}.')
def import_album_command(directory: Path, title: str, owner_email: str, as_json: bool) -> None:
    """Import every image directly in DIRECTORY, in name order, keeping the original filenames."""
    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a directory")
    owner = db.session.execute(db.select(User).where(User.email == owner_email.strip().lower())).scalar_one_or_none()
    if owner is None:
        raise click.ClickException(f"no user {owner_email}; create one with create-user")
    album = albums.create_album(owner, title)
    imported, skipped = 0, []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        try:
            with path.open("rb") as source:
                albums.add_photo(album, path.name, source, commit=False)
            imported += 1
        except InvalidImage as exc:
            skipped.append({"file": path.name, "reason": str(exc)})
    albums.refresh_version(album)
    if as_json:
        click.echo(json.dumps({"album_id": album.id, "photos": imported, "skipped": skipped}))
    else:
        for item in skipped:
            click.echo(f"skipped {item['file']}: {item['reason']}", err=True)
        click.echo(album.id)


@click.command("create-share")
@click.argument("album_id", type=int)
@click.option("--password", default=None, help="Visitors must enter it.")
@click.option("--expires-in", "expires_in", type=click.FloatRange(min=0, min_open=True), default=None, help="Hours.")
@click.option("--no-downloads", is_flag=True, help="Visitors may look but not download.")
@click.option("--json", "as_json", is_flag=True, help='Print {"token", "url"}.')
def create_share_command(
    album_id: int, password: str | None, expires_in: float | None, no_downloads: bool, as_json: bool
) -> None:
    """Create a share link for an album and print its URL."""
    album = db.session.get(Album, album_id)
    if album is None:
        raise click.ClickException(f"no album with id {album_id}")
    expires_at = utcnow() + timedelta(hours=expires_in) if expires_in else None
    link = create_share_link(album, password=password, expires_at=expires_at, downloads_allowed=not no_downloads)
    if as_json:
        click.echo(json.dumps({"token": link.token, "url": share_url(link.token)}))
    else:
        click.echo(share_url(link.token))


COMMANDS = [init_db_command, create_user_command, import_album_command, create_share_command]


def register(app: Flask) -> None:
    from .demo import demo_command

    for command in [*COMMANDS, demo_command]:
        app.cli.add_command(command)
