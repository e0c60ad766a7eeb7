"""The share API: album JSON and the download endpoints."""

from __future__ import annotations

from . import api_bp  # noqa: F401
