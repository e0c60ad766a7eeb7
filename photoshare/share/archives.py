"""What the share views need to name an archive plan (plans.py) in a request: which one (a selection id, a
`part`), its download name, its URL, and its parts as the API lists them. Thin: the rules are in `plans`."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, request, url_for
from flask_babel import lazy_gettext as _l

from .. import plans
from ..access import download_variant
from ..albums import ORIGINAL_VARIANT
from ..archive import archive_name
from ..errors import AppError
from ..i18n import download_name_for_part, download_name_for_selection
from ..images import InvalidImage
from ..models import Album, ShareLink
from ..plans import ArchivePlan
from ..sizes import ORIGINAL, Variant, is_ready
from ..storage import StorageError

PART = re.compile(r"^[0-9]{1,6}$")


class BadPart(AppError):
    status, error = 400, "bad_part"
    message = _l("A part is a whole number, as in ?part=2.")


def part_number(raw: object) -> int | None:
    """A requested part: None when not asked for; BadPart (400) for anything but a plain number (an integer of
    a JSON body too). A number the plan has no part for is the 404 of `plans.part_of`."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not PART.match(raw):
        raise BadPart()
    return int(raw)


def requested_plan(
    album: Album, selection_id: object = None, part: object = None, variant: Variant = ORIGINAL_VARIANT
) -> ArchivePlan:
    """The album's plan a request names: the whole album or a selection (`selection_id`), then one of its parts
    (`part`), in `variant` (access.download_variant); the 400/404/410 of `plans` and `part_number`."""
    if selection_id is not None and not isinstance(selection_id, str):
        raise plans.SelectionNotFound()
    plan = plans.selection_plan(album, selection_id, variant) if selection_id else plans.album_plan(album, variant)
    number = part_number(part)
    return plan if number is None else plans.part_of(plan, number)


def download_name(plan: ArchivePlan) -> str:
    """`<title>.zip`, `<title> (12 photos).zip`, `<title> (part 2 of 3).zip` in the visitor's language."""
    title = plan.album.title
    if plan.selection_id:
        whole = plans.selection_plan(plan.album, plan.selection_id) if plan.part else plan
        title = download_name_for_selection(title, whole.photo_count)
    if plan.part and plan.parts:
        title = download_name_for_part(title, plan.part, plan.parts)
    return archive_name(title)


def download_url(token: str, plan: ArchivePlan) -> str:
    """The absolute URL of the plan's download (on BASE_URL, like every link the API gives)."""
    extra: dict[str, Any] = {"part": plan.part} if plan.part else {}
    extra.update(plan.variant.query)  # ?size=large for web size; the location follows the share
    if plan.selection_id:
        path = url_for("share_api.download_selection", token=token, selection_id=plan.selection_id, **extra)
    else:
        path = url_for("share_api.download_all", token=token, **extra)
    return current_app.config["BASE_URL"] + path


def archives_json(token: str, plan: ArchivePlan) -> list[dict[str, Any]]:
    """The plan's parts as the API lists them: empty when the whole archive is under ARCHIVE_PART_MB."""
    return [
        {"part": part.part, "parts": part.parts, "photo_count": part.photo_count, "size": part.size,
         "download_url": download_url(token, part)}
        for part in plans.parts_of(plan)
    ]


def listed_plan(link: ShareLink) -> ArchivePlan | None:
    """The album's plan in the link's default size, whose parts the gallery and the album JSON list (None when a
    photo's web-size file cannot be made now). Photos not yet checked for a location are not read for a list:
    their location-free copies are the originals patched in place at the same length, so the originals' plan
    has the same parts."""
    variant = download_variant(link, None)
    if variant.size == ORIGINAL and not all(is_ready(photo, variant) for photo in link.album.photos):
        variant = ORIGINAL_VARIANT
    try:
        return plans.album_plan(link.album, variant)
    except (FileNotFoundError, InvalidImage, StorageError):
        return None


def plan_args() -> dict[str, Any]:
    """`selection_id` and `part` from a JSON body, else from the query string (the preparing page's URL)."""
    body = request.get_json(silent=True)
    source = body if isinstance(body, dict) else {}
    return {name: source.get(name, request.args.get(name)) for name in ("selection_id", "part")}


def requested_variant(link: ShareLink) -> Variant:
    """The variant a request asks for: `size` from a JSON body, else the query (none: the link's default); the
    400/403 of `access.download_variant`."""
    body = request.get_json(silent=True)
    size = body.get("size") if isinstance(body, dict) and "size" in body else request.args.get("size")
    return download_variant(link, size if size is None or isinstance(size, str) else str(size))
