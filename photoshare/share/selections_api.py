"""The share API for selections: a visitor's chosen photos as one archive plan (plans.py).

`POST /api/share/{token}/selections` names a set of photos (201 when new, 200 when the same set was chosen
before; `size` in the body or query: the links it answers with are of that size); `GET/HEAD
.../selections/{id}/download[?part=N][&size=large]` sends its ZIP through the delivery seam like
"Download all", with the same share rules (password, expiry, revocation, downloads allowed) and rate limit.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for
from werkzeug.wrappers import Response

from .. import delivery, jobs, plans
from ..access import download_variant, require_downloads
from ..plans import ArchivePlan
from . import api_bp, archives, visitor_share
from .api import download_all_limit
from .download_gate import deliver


@api_bp.post("/<token>/selections")
def create_selection(token: str) -> Response:
    """Store (or find) the selection of `{"photo_ids": [...]}`: 400 with nothing stored for anything but
    distinct ids of this album's photos."""
    link = visitor_share(token)
    require_downloads(link)  # the PIN, e-mail and limits are asked when the selection is downloaded
    variant = archives.requested_variant(link)  # `size` in the body or the query: the links it answers with
    body = request.get_json(silent=True)
    plan, created = plans.make_selection(link.album, body.get("photo_ids") if isinstance(body, dict) else None,
                                         variant)
    response = jsonify(selection_json(token, plan))
    response.status_code = 201 if created else 200
    response.headers["Cache-Control"] = "no-store"
    return response


@api_bp.get("/<token>/selections/<selection_id>/download")
@download_all_limit
def download_selection(token: str, selection_id: str) -> Response:
    """The selection's ZIP (`<title> (12 photos).zip`), or one of its parts; 410 once the album changed."""
    link = visitor_share(token)
    require_downloads(link)
    variant = download_variant(link, request.args.get("size"))
    plan = archives.requested_plan(link.album, selection_id, request.args.get("part"), variant)
    return deliver(link, "selection", lambda on_close: delivery.send_archive(
        plan, environ=request.environ, download_name=archives.download_name(plan), on_close=on_close),
        part=str(plan.part) if plan.part else None, size=variant.size)


def selection_json(token: str, plan: ArchivePlan) -> dict[str, Any]:
    return {
        "selection_id": plan.selection_id,
        "photo_count": plan.photo_count,
        "total_bytes": plan.photo_bytes,
        "size": plan.size,
        "photo_size": plan.variant.size,  # "original" or "large" (web size): what the links below download
        "download_url": archives.download_url(token, plan),
        "needs_preparation": jobs.needs_preparation(plan.photo_count, plan.photo_bytes),
        "prepare_page_url": url_for("share.prepare_page", token=token, selection_id=plan.selection_id,
                                    **plan.variant.query),
        "prepare_url": url_for("share_api.prepare_download", token=token, selection_id=plan.selection_id,
                               **plan.variant.query),
        "archives": archives.archives_json(token, plan),
    }
