"""The share API for prepared downloads: start or join a preparation, and poll its progress.

Same password rules as every share endpoint (`visitor_share`); the logic is in `jobs`.
"""

from __future__ import annotations

from flask import current_app, jsonify, request
from werkzeug.wrappers import Response

from .. import jobs
from ..access import require_downloads
from ..extensions import limiter
from ..jobs import notify
from . import api_bp, archives, visitor_share
from .download_gate import check_download, grant_pin


def requested_email() -> str:
    """The optional "e-mail me when it's ready" address, from a JSON body or a form."""
    body = request.get_json(silent=True)
    raw = body.get("email") if isinstance(body, dict) else request.form.get("email")
    return raw.strip() if isinstance(raw, str) else ""


# Only requests that ask for an e-mail count: one bucket per client address, so nobody can mail-bomb through us.
notify_requests = limiter.shared_limit(
    lambda: current_app.config["NOTIFY_RATE_LIMIT"], scope="notify-email", exempt_when=lambda: not requested_email()
)


def _json(data: dict, status: int = 200) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@api_bp.post("/<token>/prepare-download")
@notify_requests
def prepare_download(token: str) -> Response:
    """Start (or join) the background build of the album's ZIP, or of a selection's or a part's (`selection_id`,
    `part` in the JSON body or the query): 202 while it runs, 200 with the link when that ZIP, as the album is
    now, is already cached."""
    link = visitor_share(token)
    pin_checked = check_download(link, "prepared")
    variant = archives.requested_variant(link)
    raw_email = requested_email()
    email = notify.normalize_address(raw_email) if raw_email else None
    plan = archives.requested_plan(link.album, **archives.plan_args(), variant=variant) if link.album.photos else None
    job = jobs.prepare(link, plan=plan, email=email)
    response = _json(job.to_json(), 200 if job.status == "ready" else 202)
    return grant_pin(response, link) if pin_checked else response


@api_bp.get("/<token>/download-status/<job_id>")
def download_status(token: str, job_id: str) -> Response:
    """Where the preparation stands: status, progress 0-100, the signed link when ready, the error if failed."""
    link = visitor_share(token)
    require_downloads(link)
    return _json(jobs.status(link, job_id).to_json())
