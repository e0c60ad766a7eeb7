"""The database: owners, albums, photos and the share links that open them to visitors."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    """Naive UTC: what SQLite and PostgreSQL `timestamp` columns both round-trip unchanged."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What a session cookie names (Flask-Login's user id): a new one on log-out and on a password change, so
    # every cookie issued before, copied or not, names nobody.
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_session_token)

    albums: Mapped[list[Album]] = relationship(back_populates="owner", cascade="all, delete-orphan")

    def get_id(self) -> str:
        return self.session_token


class Album(db.Model):
    __tablename__ = "albums"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Digest of what the album's archive contains (names, order, contents, timestamps): it changes exactly
    # when the "Download all" archive would change, and keys ETags and the ZIP cache.
    version: Mapped[str] = mapped_column(String(64), default="empty")

    owner: Mapped[User] = relationship(back_populates="albums")
    photos: Mapped[list[Photo]] = relationship(
        back_populates="album", cascade="all, delete-orphan", order_by="(Photo.position, Photo.id)"
    )
    share_links: Mapped[list[ShareLink]] = relationship(
        back_populates="album", cascade="all, delete-orphan", order_by="ShareLink.created_at.desc()"
    )

    @property
    def total_bytes(self) -> int:
        return sum(photo.size for photo in self.photos)


class Photo(db.Model):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    album_id: Mapped[int] = mapped_column(ForeignKey("albums.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    original_filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)  # chosen by the app, never the user
    # The thumbnail's and large view's name: random on its own, so a public thumbnail URL tells nothing of
    # the original's key.
    rendition_name: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: secrets.token_hex(16))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    crc32: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(default=None)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The "web size" JPEG (LARGE_SIZE, `large/<rendition_name>.jpg`): an archive's layout needs its size and
    # CRC before any byte, like the original's. NULL: not made yet (a photo added before it was).
    large_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    large_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    large_crc32: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The original without its location (GPS, XMP place), made once (`located/<sha256>...`, location.py).
    # has_location NULL: not checked yet; False: the original holds none and is sent as it is.
    has_location: Mapped[bool | None] = mapped_column(default=None)
    clean_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    clean_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    clean_crc32: Mapped[int | None] = mapped_column(BigInteger, default=None)

    album: Mapped[Album] = relationship(back_populates="photos")

    @property
    def archive_time(self) -> datetime:
        """The timestamp an archive entry carries: the photo's own time, never the time of the build."""
        return self.taken_at or self.uploaded_at


class ShareLink(db.Model):
    __tablename__ = "share_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    album_id: Mapped[int] = mapped_column(ForeignKey("albums.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked: Mapped[bool] = mapped_column(default=False)
    downloads_allowed: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    # Downloads asked for from the first byte, and downloads whose last byte the client acknowledged
    # (delivery.Delivery started_file / finished_file): the difference gave up on the way.
    download_started_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    download_count: Mapped[int] = mapped_column(Integer, default=0)  # finished
    # "Web-size downloads only": originals are refused (403), the gallery offers the large JPEG alone.
    web_size_only: Mapped[bool] = mapped_column(default=False, server_default="0")
    # "Remove location from downloads": every file a visitor gets has no GPS position. On for new links;
    # links made before the setting existed keep sending what they sent (off).
    strip_location: Mapped[bool] = mapped_column(default=True, server_default="0")

    album: Mapped[Album] = relationship(back_populates="share_links")

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()

    @property
    def is_active(self) -> bool:
        return not self.revoked and not self.is_expired


class DownloadJob(db.Model):
    """One background preparation of an album version's archive; every worker and process reads it here."""

    __tablename__ = "download_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random: it is what visitors poll with
    album_id: Mapped[int] = mapped_column(Integer, index=True)  # no foreign key: jobs outlive deleted albums
    album_version: Mapped[str] = mapped_column(String(64))  # the digest of the plan it builds (sizes.Variant)
    # Which archive of the album: "original", "large", "original-clean" (sizes.Variant.key); its plan's digest is
    # `album_version`, so each variant is its own job, cache file and signed link.
    variant: Mapped[str] = mapped_column(String(16), default="original", server_default="original")
    # "album_id:version" while the job can still be joined (queued, processing, ready), NULL once it is over.
    # Unique, so concurrent prepares of one album version insert exactly one row: the lock is the database's.
    active_key: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | processing | ready | failed
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    archive_size: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(String(500), default=None)  # in a visitor's words
    worker: Mapped[str | None] = mapped_column(String(120), default=None)  # host:pid running it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class DownloadNotice(db.Model):
    """An address to e-mail once a job's archive is ready, with the share link the visitor came through."""

    __tablename__ = "download_notices"
    __table_args__ = (UniqueConstraint("job_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    share_id: Mapped[int] = mapped_column(Integer)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)  # set before sending: never sent twice


def increment(model: type[db.Model], row_id: int, *columns: str) -> None:
    """Add one to counters in the database itself, in one statement, so concurrent workers never lose a count."""
    attrs = [getattr(model, column) for column in columns]
    db.session.execute(db.update(model).where(model.id == row_id).values({attr: attr + 1 for attr in attrs}))
    db.session.commit()


__all__ = ["Album", "DownloadJob", "DownloadNotice", "Photo", "ShareLink", "User", "increment", "utcnow"]
