"""Owner pages: albums, uploads, share links (login required)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("owner", __name__)


@bp.get("/albums")
def albums() -> str:
    return "albums"
