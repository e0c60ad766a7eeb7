"""`flask --app wsgi demo`: a demo owner, an album of generated photos and its share link."""

from __future__ import annotations

import colorsys
import io
import random
from datetime import datetime, timedelta

import click
from PIL import Image, ImageDraw

from . import albums
from .access import create_share_link, share_url
from .auth import create_user
from .cli import Command
from .extensions import db
from .models import Album, User

DEMO_EMAIL = "demo@photoshare.local"
DEMO_PASSWORD = "demo-password"  # noqa: S105 (printed for the demo on purpose)
DEMO_TITLE = "Demo: Summer on the coast"


def generated_photo(index: int, rng: random.Random) -> bytes:
    """A colourful 1600x1067 JPEG with a date in its EXIF, different for every index."""
    width, height = 1600, 1067
    hue = rng.random()
    top = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.55, 0.95))
    bottom = tuple(int(c * 255) for c in colorsys.hsv_to_rgb((hue + 0.15) % 1, 0.75, 0.45))
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    for _ in range(12):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(40, 220)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(255, 255, 255), width=6)
    draw.text((60, height - 120), f"Photo {index + 1}", fill=(255, 255, 255), font_size=72)
    exif = Image.Exif()
    taken = datetime(2026, 7, 1, 9, 0) + timedelta(minutes=37 * index)
    exif.get_ifd(0x8769)[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88, exif=exif.tobytes())
    return out.getvalue()


@click.command("demo", cls=Command)
@click.option("--photos", default=24, show_default=True, help="How many photos to generate.")
def demo_command(photos: int) -> None:
    """Create (once) a demo owner and album, and print the album's share link."""
    from .schema import upgrade_database  # Alembic: imported by commands only (start-up time)

    upgrade_database()  # the same schema as init-db, so the demo also works on a fresh database
    owner = db.session.execute(db.select(User).where(User.email == DEMO_EMAIL)).scalar_one_or_none()
    owner = owner or create_user(DEMO_EMAIL, DEMO_PASSWORD)
    album = db.session.execute(
        db.select(Album).where(Album.owner_id == owner.id, Album.title == DEMO_TITLE)
    ).scalar_one_or_none()
    if album is None:
        album = albums.create_album(owner, DEMO_TITLE)
        rng = random.Random(42)  # noqa: S311 (colours, not secrets)
        with click.progressbar(range(photos), label="generating photos") as bar:
            for index in bar:
                albums.add_photo(album, f"IMG_{index + 1:04d}.jpg", io.BytesIO(generated_photo(index, rng)), commit=False)
        albums.refresh_version(album)
    link = next((s for s in album.share_links if s.is_active and s.password_hash is None), None)
    link = link or create_share_link(album)
    click.echo(f"Owner login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
    click.echo(f"Share link:  {share_url(link.token)}")


__all__ = ["demo_command"]
