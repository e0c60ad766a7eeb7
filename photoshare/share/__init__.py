"""The visitor's side: gallery pages (`pages_bp`) and the share API with the downloads (`api_bp`)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask, current_app, request
from flask_limiter.util import get_remote_address

from ..access import open_share
from ..delivery import Delivery
from ..models import ShareLink, increment

pages_bp = Blueprint("share", __name__)
api_bp = Blueprint("share_api", __name__, url_prefix="/api/share")


def supplied_password() -> str | None:
    """A password from the form, `?password=` or the `X-Share-Password` header, in that order."""
    return request.form.get("password") or request.args.get("password") or request.headers.get("X-Share-Password")


def visitor_share(token: str) -> ShareLink:
    """The share link this request may open (rules in `access`, which also counts password guesses per client
    address and link: any route that reads a password is a place to guess one)."""
    return open_share(
        token, password=supplied_password(), cookies=request.cookies, secret_key=current_app.config["SECRET_KEY"],
        client=get_remote_address(),
    )


def count_download(link: ShareLink) -> Callable[[Delivery], None]:
    """A close callback counting on the link a download started (a GET from the first byte) and one finished
    (the client acknowledged the file's last byte; see received.py for what can still over-count).

    It runs when the server closes the body, after the request's app context is gone: it brings its own.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    link_id = link.id

    def on_close(delivery: Delivery) -> None:
        counters = [name for name, counts in (("download_started_count", delivery.started_file),
                                              ("download_count", delivery.finished_file)) if counts]
        if counters:
            with app.app_context():
                increment(ShareLink, link_id, *counters)

    return on_close


# Routes register on the blueprints above: album API and downloads, pages, prepared downloads (API, page, link),
# selections, and the download rules' forms.
from . import api, download_gate, jobs_api, pages, prepare, selections_api  # noqa: E402,F401
