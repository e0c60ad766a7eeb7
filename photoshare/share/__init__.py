"""The visitor's side: gallery pages (`pages_bp`) and the share API with the downloads (`api_bp`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, request, session
from flask_limiter.util import get_remote_address

from .. import activity
from ..access import admit, find_share_photo, open_share
from ..delivery import Delivery
from ..models import Photo, ShareLink, utcnow
from .gallery import share_photo

pages_bp = Blueprint("share", __name__)
api_bp = Blueprint("share_api", __name__, url_prefix="/api/share")


def supplied_password() -> str | None:
    """A password from the form, `?password=` or the `X-Share-Password` header, in that order."""
    return request.form.get("password") or request.args.get("password") or request.headers.get("X-Share-Password")


def visitor_share(token: str) -> ShareLink:
    """The share link this request may open (rules in `access`, which also counts password guesses per client
    address and link: any route that reads a password is a place to guess one)."""
    return open_share(token, **_visitor_credentials())


def visitor_photo(token: str, photo_id: int) -> tuple[ShareLink, Photo]:
    """`visitor_share` and its album's photo `photo_id`, read together (a thumbnail is one query); another
    album's photo is a 404 like an unknown id (gallery.share_photo)."""
    link, photo = find_share_photo(token, photo_id)
    admit(link, **_visitor_credentials())
    return link, photo if photo is not None else share_photo(link, photo_id)  # raises its 404


def _visitor_credentials() -> dict[str, Any]:
    """What this request brings to `access.admit`: a password, the access cookie, the client's address."""
    return {"password": supplied_password(), "cookies": request.cookies,
            "secret_key": current_app.config["SECRET_KEY"], "client": get_remote_address()}


# Session keys: the visitor's random id (activity), the pages of links already counted as a visit, and the
# e-mail a visitor gave (written by the visitor e-mail form).
VISITOR_KEY, VISITED_KEY, EMAIL_KEY = "visitor_id", "visited", "visitor_email"
MAX_VISITED = 50  # links remembered per session; an older one opened again counts as a new visit


def count_download(
    link: ShareLink, kind: str = "album", *, photo_id: int | None = None, part: str | None = None,
    size: str | None = "original",
) -> Callable[..., None]:
    """A close callback recording the response as activity (`kind`: photo, album, part, selection, prepared):
    the one place every kind of download reports to. The event carries the link's counters it adds to: a
    download started (a GET from the first byte), one finished (the client acknowledged the file's last byte;
    see received.py for what can still over-count), and the download-limit slot when the request took none
    (`slot`, a column name: the link has no limit, so nothing had to be refused). The activity writer adds
    them in its next batch: no request waits for a counter write (one lock for every writer on SQLite).

    It runs when the server closes the body, after the request's app context is gone, so it takes the visitor
    (session, address, User-Agent) from the request now.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    link_id, album_id, visitor = link.id, link.album_id, current_visitor()

    def on_close(delivery: Delivery, slot: str | None = None) -> None:
        counters = tuple(name for name, counts in (("download_started_count", delivery.started_file),
                                                   ("download_count", delivery.finished_file),
                                                   (slot, slot is not None)) if counts)
        sent = delivery.method == "GET" and delivery.status in (200, 206) and delivery.bytes_sent
        if sent or counters:
            activity.record(_event(link_id, album_id, kind, visitor, photo_id=photo_id, part=part, size=size,
                                   bytes=delivery.bytes_sent, finished=delivery.finished_file,
                                   counters=counters), app)

    return on_close


def record_visit(link: ShareLink) -> None:
    """A gallery page was shown: a `visit` the first time in this visitor's session, a view tick otherwise
    (the link's view_count counts both). Queued, never written here."""
    visited = list(session.get(VISITED_KEY, []))
    first = link.id not in visited
    if first:
        session[VISITED_KEY] = [*visited, link.id][-MAX_VISITED:]
    kind = activity.VISIT if first else activity.VIEW
    activity.record(_event(link.id, link.album_id, kind, current_visitor(create=first)))


def current_visitor(*, create: bool = False) -> activity.Visitor:
    """This request's visitor as activity keeps them: the session's random id (made when `create`), the e-mail
    they gave, their network (/24 or /48, never the address) and User-Agent."""
    visitor_id = session.get(VISITOR_KEY)
    if visitor_id is None and create:
        visitor_id = session[VISITOR_KEY] = secrets.token_urlsafe(12)
    return activity.Visitor(visitor_id, session.get(EMAIL_KEY), activity.truncate_address(get_remote_address()),
                            request.user_agent.string)


def _event(link_id: int, album_id: int, kind: str, visitor: activity.Visitor, **details: object) -> activity.Event:
    return activity.Event(at=utcnow(), share_id=link_id, album_id=album_id, kind=kind, visitor_id=visitor.visitor_id,
                          email=visitor.email, network=visitor.network, user_agent=visitor.user_agent,
                          **details)  # type: ignore[arg-type]


# Routes register on the blueprints above: album API and downloads, pages, prepared downloads (API, page, link),
# selections, and the download rules' forms.
from . import api, download_gate, jobs_api, pages, prepare, selections_api  # noqa: E402,F401
