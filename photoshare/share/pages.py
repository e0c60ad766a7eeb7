"""Visitor pages: the gallery of a share link and its password gate."""

from __future__ import annotations

from . import pages_bp  # noqa: F401
