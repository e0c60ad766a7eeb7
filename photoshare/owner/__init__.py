"""Owner pages: albums, uploads, share links. Every route needs a logged-in owner (checked once, here)."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from ..auth import current_user
from ..errors import error_response, wants_json

bp = Blueprint("owner", __name__)


@bp.before_request
def require_owner() -> Response | None:
    """Browsers go to the login page (and come back); scripts get a 401 they can show."""
    if current_user() is not None:
        return None
    if wants_json():
        return error_response(401, "login_required", "Your session has ended. Please log in again.")
    back = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.login", next=back))


from . import account_views, activity_views, album_views, rules_views, share_views, upload_views  # noqa: E402,F401  (routes register on the blueprint above)
