"""The database: owners, albums, photos and the share links that open them to visitors."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
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
    # The owner asked for a daily e-mail of this album's activity; `digest_sent_on` is the last day one was sent
    # (claimed before sending, so two schedulers never send the same day twice).
    daily_digest: Mapped[bool] = mapped_column(default=False, server_default=false())
    digest_sent_on: Mapped[date | None] = mapped_column(default=None)

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
    # The owner's rules for downloads (download_rules.py). Visitors give an e-mail before their first download.
    ask_email: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A 4-6 digit PIN for downloads only (viewing stays free), hashed like passwords; a new PIN bumps the
    # generation, which every PIN cookie carries, so earlier grants stop working.
    download_pin_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    download_pin_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Limits (None: no limit) and the slots taken against them: one per download begun from the first byte.
    max_album_downloads: Mapped[int | None] = mapped_column(Integer, default=None)
    max_photo_downloads: Mapped[int | None] = mapped_column(Integer, default=None)
    album_downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    photo_downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the first finished download was recorded: set once, atomically, and the owner is e-mailed then.
    first_download_at: Mapped[datetime | None] = mapped_column(default=None)
    # The language its pages, errors and e-mails use whatever the visitor's browser says; None: the visitor's.
    language: Mapped[str | None] = mapped_column(String(8), default=None)
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
    # Which plan of the album (plans.ArchivePlan.ref): "" the whole album, else a selection and/or a part;
    # `album_version` is then that plan's version (the digest of its entries).
    plan_ref: Mapped[str] = mapped_column(String(48), default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | processing | ready | failed
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    archive_size: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(String(500), default=None)  # in a visitor's words
    worker: Mapped[str | None] = mapped_column(String(120), default=None)  # host:pid running it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Selection(db.Model):
    """Photos a visitor picked, keyed by a digest of the album version and the set of photo ids (plans.py)."""

    __tablename__ = "selections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    album_id: Mapped[int] = mapped_column(Integer, index=True)  # no foreign key: an album's deletion ends it anyway
    album_version: Mapped[str] = mapped_column(String(64))  # the album changed since: 410, select again
    photo_ids: Mapped[str] = mapped_column(Text)  # comma-separated, in album order
    photo_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


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
    language: Mapped[str | None] = mapped_column(String(8), default=None)  # the page's when the address was left


class ActivityEvent(db.Model):
    """One thing a visitor did through a share link (photoshare/activity): opened the gallery, or a response of
    a download. Never holds a whole network address (/24 or /48) nor a raw User-Agent (families only)."""

    __tablename__ = "activity_events"
    __table_args__ = (Index("ix_activity_events_album_at", "album_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    # No foreign keys: activity is read and folded in bulk, and outlives nothing (album deletion removes it).
    share_id: Mapped[int] = mapped_column(Integer, index=True)
    album_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # visit | photo | album | part | selection | prepared
    photo_id: Mapped[int | None] = mapped_column(Integer, default=None)
    part: Mapped[str | None] = mapped_column(String(32), default=None)
    size: Mapped[str | None] = mapped_column(String(16), default=None)  # original | large
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    finished: Mapped[bool] = mapped_column(default=False)  # this response delivered (and had acknowledged) the last byte
    browser: Mapped[str | None] = mapped_column(String(64), default=None)
    os: Mapped[str | None] = mapped_column(String(64), default=None)
    network: Mapped[str | None] = mapped_column(String(64), default=None)  # e.g. 203.0.113.0/24
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    visitor: Mapped[str | None] = mapped_column(String(32), default=None)  # random, from the visitor's session


class ActivityDay(db.Model):
    """A share link's events of one UTC day older than ACTIVITY_RETENTION_DAYS, summed; the events are gone."""

    __tablename__ = "activity_days"
    __table_args__ = (UniqueConstraint("share_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    share_id: Mapped[int] = mapped_column(Integer)
    album_id: Mapped[int] = mapped_column(Integer, index=True)
    day: Mapped[date] = mapped_column()
    visits: Mapped[int] = mapped_column(Integer, default=0)
    visitors: Mapped[int] = mapped_column(Integer, default=0)  # distinct that day; summing days over-counts
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)


__all__ = [
    "ActivityDay", "ActivityEvent", "Album", "DownloadJob", "DownloadNotice", "Photo", "Selection", "ShareLink", "User",
    "utcnow",
]
