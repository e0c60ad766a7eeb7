"""The visitor's language: Flask-Babel with gettext catalogues in photoshare/translations/.

Templates mark text with `_()` / `ngettext()`, Python code with `flask_babel.gettext` (or `lazy_gettext` at
import time). The language is chosen per request by `select_locale`.
"""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel, get_locale, gettext, ngettext

from .names import photo_name

LANGUAGES = ("en", "de", "fr", "es", "it", "nl")  # English first: the source language and the fallback
babel = Babel()


def select_locale() -> str:
    """The best of our languages for the visitor's Accept-Language; English when none fits."""
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")  # relative to the package
    babel.init_app(app, locale_selector=select_locale)

    @app.context_processor
    def language() -> dict[str, str]:
        return {"html_lang": str(get_locale() or LANGUAGES[0]).replace("_", "-")}


# The download names of a selection and of a part, in the visitor's language; one place, so that the naming helpers
# of the translations work can replace these two as they are. ZIP-name rules as archive.archive_name.
def download_name_for_selection(title: str, count: int) -> str:
    """`<album title> (12 photos).zip`."""
    return _zip_name(ngettext("%(title)s (%(num)d photo)", "%(title)s (%(num)d photos)", count, title=title))


def download_name_for_part(title: str, part: int, parts: int) -> str:
    """`<album title> (part 2 of 3).zip`."""
    return _zip_name(gettext("%(title)s (part %(part)d of %(parts)d)", title=title, part=part, parts=parts))


def _zip_name(stem: str) -> str:
    return photo_name(stem.replace("/", "-").replace("\\", "-"), fallback="album") + ".zip"
