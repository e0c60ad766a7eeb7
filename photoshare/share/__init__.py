"""The visitor's side: gallery pages (`pages_bp`) and the share API with the downloads (`api_bp`)."""

from __future__ import annotations

from flask import Blueprint, current_app, g, request

from ..access import WrongPassword, open_share
from ..extensions import client_and_share_key, limiter
from ..models import ShareLink

pages_bp = Blueprint("share", __name__)
api_bp = Blueprint("share_api", __name__, url_prefix="/api/share")

# Wrong passwords count against one bucket per client address and link; right ones cost nothing.
password_attempts = limiter.shared_limit(
    lambda: current_app.config["PASSWORD_RATE_LIMIT"],
    scope="share-password",
    key_func=client_and_share_key,
    deduct_when=lambda response: bool(g.get("wrong_password")),
)


def supplied_password() -> str | None:
    """A password from the form, `?password=` or the `X-Share-Password` header, in that order."""
    return request.form.get("password") or request.args.get("password") or request.headers.get("X-Share-Password")


def visitor_share(token: str) -> ShareLink:
    """The share link this request may open (rules in `access`); notes a wrong password for the limiter."""
    try:
        return open_share(
            token, password=supplied_password(), cookies=request.cookies, secret_key=current_app.config["SECRET_KEY"]
        )
    except WrongPassword:
        g.wrong_password = True
        raise


from . import api, pages  # noqa: E402,F401  (routes register on the blueprints above)
from . import jobs_api, prepare  # noqa: E402,F401  (prepared downloads: API, preparing page, signed link)
