"""E-mails to album owners about their visitors: a link's first finished download, and the optional daily
digest of an album's activity (the album page's checkbox; off by default).

Both are sent by the job system, never by a request: the first-download e-mail is dispatched when the activity
writer records that download (activity.first_download, claimed once per link in the database), the digest by
the scheduler (Celery beat's "photoshare.digest", or the embedded sweeper thread), once per album per UTC day
about the day before, claimed in the database before sending so that several processes never send it twice.
Through the SMTP settings of notify.py; without SMTP_HOST nothing is sent or claimed.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import date, timedelta
from email.message import EmailMessage
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from ..access import share_url
from ..activity import report
from ..extensions import db
from ..i18n import filesize
from ..models import Album, ShareLink, utcnow
from . import notify

log = logging.getLogger(__name__)


def on_first_download(sender: Any, share_id: int, **_extra: Any) -> None:
    """activity.first_download's receiver: hand the e-mail to the job runner (a Celery task or the pool)."""
    runner = getattr(sender, "extensions", {}).get("photoshare.jobs")
    if runner is not None and sender.config["SMTP_HOST"]:
        runner.dispatch_first_download(share_id)


# Jobs run outside any request, where the visitor's Accept-Language cannot choose: owners' e-mails are written
# in the source language (the owner's own language is not stored yet).
OWNER_LOCALE = "en"


def send_first_download(share_id: int) -> bool:
    """Tell the album's owner that the link was downloaded for the first time; False when nothing was sent."""
    with force_locale(OWNER_LOCALE):
        return _send_first_download(share_id)


def _send_first_download(share_id: int) -> bool:
    if not notify.enabled():
        return False
    link = db.session.get(ShareLink, share_id)
    if link is None:
        return False
    album = link.album
    message = _message(
        album.owner.email,
        _("Your album “%(title)s” was downloaded", title=album.title),
        _("Hello,\n\nA visitor has just finished the first download through a share link of your album "
          "“%(title)s”:\n\n%(url)s\n\nSee every visit and download on the album's activity page:\n%(activity)s\n\n"
          "-- Photoshare\n", title=album.title, url=share_url(link.token), activity=_activity_url(album)),
    )
    return _send(message, f"first download of link {share_id}")


def send_due_digests(today: date | None = None) -> int:
    """Send every album whose owner asked for it the digest of yesterday's activity (UTC), once per day; an
    album without any activity that day is claimed but gets no e-mail. Returns how many were sent."""
    if not notify.enabled():
        return 0
    today = today or utcnow().date()
    due = db.session.execute(
        db.select(Album.id).where(Album.daily_digest.is_(True),
                                  (Album.digest_sent_on.is_(None)) | (Album.digest_sent_on < today))
    ).scalars().all()
    with force_locale(OWNER_LOCALE):
        return sum(_digest(album_id, today) for album_id in due)


def _digest(album_id: int, today: date) -> bool:
    claimed = db.session.execute(
        db.update(Album)
        .where(Album.id == album_id, Album.daily_digest.is_(True),
               (Album.digest_sent_on.is_(None)) | (Album.digest_sent_on < today))
        .values(digest_sent_on=today)
    ).rowcount == 1
    db.session.commit()
    if not claimed:
        return False  # another process took it
    album = db.session.get(Album, album_id)
    day = today - timedelta(days=1)
    totals = report.totals(report.Scope(album_id, first_day=day, last_day=day))
    if not (totals.visits or totals.downloads or totals.bytes):
        return False
    body = _(
        "Hello,\n\nActivity of your album “%(title)s” on %(day)s (UTC):\n\n"
        "Visits: %(visits)d\nVisitors: %(visitors)d\nDownloads: %(downloads)d\nData sent: %(size)s\n\n"
        "Details: %(activity)s\n\nYou receive this e-mail because daily summaries are on for this album; switch "
        "them off on the album's page.\n\n-- Photoshare\n",
        title=album.title, day=day.isoformat(), visits=totals.visits, visitors=totals.visitors,
        downloads=totals.downloads, size=filesize(totals.bytes), activity=_activity_url(album),
    )
    message = _message(album.owner.email, _("Activity of “%(title)s” on %(day)s", title=album.title,
                                             day=day.isoformat()), body)
    return _send(message, f"digest of album {album_id}")


def _activity_url(album: Album) -> str:
    return f"{current_app.config['BASE_URL']}/albums/{album.id}/activity"


def _message(to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["SMTP_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def _send(message: EmailMessage, what: str) -> bool:
    try:
        notify.deliver(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("could not e-mail the %s to its owner: %s", what, exc)
        return False
    log.info("e-mailed the %s to its owner", what)
    return True

