"""E-mail when a prepared download is ready: the address a visitor left, the link, and when it expires.

The message is fixed text (album title, size, link): a visitor chooses only the recipient, once per job, so
the endpoint cannot relay anything. A failure to send is logged and never fails the job. It is written in the
share link's fixed language, else in the language of the page where the address was left.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from .. import plans
from ..access import ShareGone, ShareNotFound, find_share
from ..delivery import links
from ..errors import AppError
from ..extensions import db
from ..i18n import LANGUAGES, counted, current_language, datetime_utc, filesize, supported
from ..models import Album, DownloadJob, DownloadNotice, ShareLink, utcnow
from ..sizes import Variant

log = logging.getLogger(__name__)
MAX_NOTICES_PER_JOB = 20
SMTP_TIMEOUT = 15


class InvalidAddress(AppError):
    status, error = 400, "invalid_email"
    message = _l("That e-mail address does not look right.")


class NotificationsOff(AppError):
    status, error = 400, "email_unavailable"
    message = _l("This server cannot send e-mail; keep this page open and the download will start by itself.")


def enabled() -> bool:
    return bool(current_app.config["SMTP_HOST"])


def normalize_address(raw: str) -> str:
    """The address in canonical form; InvalidAddress with the validator's reason when it is not one."""
    if not enabled():
        raise NotificationsOff()
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidAddress(_("That e-mail address does not look right: %(reason)s", reason=exc)) from None


def add_notice(job: DownloadJob, share: ShareLink, address: str) -> bool:
    """Remember to e-mail `address` when `job` is ready, in the language of this request; False when it was
    already on the list or the list is full."""
    count = db.session.execute(
        db.select(db.func.count()).select_from(DownloadNotice).where(DownloadNotice.job_id == job.id)
    ).scalar_one()
    if count >= MAX_NOTICES_PER_JOB:
        return False
    db.session.add(DownloadNotice(job_id=job.id, share_id=share.id, email=address, language=current_language()))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def send_for_job(job_id: str) -> int:
    """E-mail every address waiting on the ready job `job_id`; returns how many were sent."""
    job = db.session.get(DownloadJob, job_id, populate_existing=True)
    if job is None or job.status != "ready":
        return 0
    waiting = db.session.execute(
        db.select(DownloadNotice).where(DownloadNotice.job_id == job_id, DownloadNotice.sent_at.is_(None))
    ).scalars()
    sent = 0
    for notice in list(waiting):
        if _claim(notice) and _send_notice(job, notice):
            sent += 1
    return sent


def _claim(notice: DownloadNotice) -> bool:
    """Mark the notice taken before sending, so two workers finishing together never send it twice."""
    result = db.session.execute(
        db.update(DownloadNotice)
        .where(DownloadNotice.id == notice.id, DownloadNotice.sent_at.is_(None))
        .values(sent_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1


def _send_notice(job: DownloadJob, notice: DownloadNotice) -> bool:
    share = db.session.get(ShareLink, notice.share_id)
    album = db.session.get(Album, job.album_id)
    if share is None or album is None:
        return False
    try:
        find_share(share.token)  # revoked or expired since: no link to send
    except (ShareGone, ShareNotFound):
        return False
    grant = links.Grant(album_id=album.id, version=job.album_version, share_id=share.id, plan_ref=job.plan_ref,
                        variant=job.variant)
    try:  # a selection's or a part's own photo count
        photos = plans.resolve(album, job.plan_ref, Variant.from_key(job.variant)).photo_count
    except AppError:
        photos = len(album.photos)
    with force_locale(supported(share.language) or supported(notice.language) or LANGUAGES[0]):
        message = ready_message(notice.email, album.title, photos, job.archive_size, links.url(grant), links.expires_at())
    try:
        deliver(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("could not e-mail job %s to %s: %s", job.id, notice.email, exc)
        return False
    log.info("e-mailed the download link of job %s", job.id)
    return True


def ready_message(to: str, title: str, photos: int, size: int, url: str, expires: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["SMTP_FROM"]
    message["To"] = to
    message["Subject"] = _("Your download of “%(title)s” is ready", title=title)
    contents = counted("%(num)s photo", "%(num)s photos", photos)
    paragraphs = [
        _("Hello,"),
        _("The ZIP of the album “%(title)s” (%(contents)s, %(size)s) is ready to download:",
          title=title, contents=contents, size=filesize(size)),
        url,
        _("The link works until %(moment)s (24 hours). After that, open the album again and choose “Download all” "
          "to prepare a new one.", moment=datetime_utc(expires)),
        _("You receive this message because this address was entered on the download page. It is sent once; "
          "nothing else will follow."),
        "-- Photoshare",
    ]
    message.set_content("\n\n".join(paragraphs) + "\n")
    return message


def deliver(message: EmailMessage) -> None:
    """Send through SMTP_HOST:SMTP_PORT, with STARTTLS and a login when configured."""
    cfg = current_app.config
    with smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=SMTP_TIMEOUT) as smtp:
        if cfg["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if cfg["SMTP_USER"]:
            smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"] or "")
        smtp.send_message(message)

