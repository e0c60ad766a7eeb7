"""The visitor's language: Flask-Babel with gettext catalogues in photoshare/translations/.

Templates mark text with `_()` / `ngettext()`, Python code with `flask_babel.gettext` (or `lazy_gettext` at
import time). The language is chosen per request by `select_locale`, strongest first: the language the owner
fixed on the share link being shown (a client in Lyon gets French whatever their browser says), the visitor's
choice in the footer menu (a cookie), their browser's Accept-Language, English.

Sizes, numbers and dates go through the filters here, so "1,2 GB" and "8. Dezember 2026" come from Babel's
locale data and never from a hand-made format in a template or an e-mail.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from babel.support import NullTranslations, Translations
from flask import Flask, g, has_request_context, request
from flask_babel import (
    Babel,
    Domain,
    format_date,
    format_decimal,
    format_time,
    format_timedelta,
    get_locale,
    get_translations,
    ngettext,
    refresh,
)
from flask_babel import gettext as _

LANGUAGES = ("en", "de", "fr", "es", "it", "nl")  # English first: the source language and the fallback
# Each language in its own words, for the footer menu and the owner's share form: never translated.
LANGUAGE_NAMES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "nl": "Nederlands",
}
COOKIE_NAME = "language"
COOKIE_MAX_AGE = 365 * 24 * 3600
babel = Babel()


def N_(message: str) -> str:
    """Marks a message for the catalogues without translating it yet (translated where it is shown)."""
    return message


_SIZE_UNITS = (N_("KB"), N_("MB"), N_("GB"), N_("TB"))  # French writes Ko, Mo, Go, To


def supported(code: str | None) -> str | None:
    """`code` when it is one of our languages, else None (a cookie or a form field may hold anything)."""
    return code if code in LANGUAGES else None


def select_locale() -> str:
    """The share's fixed language > the footer menu's cookie > Accept-Language > English."""
    fixed = g.get("share_language")
    if fixed:
        return fixed
    if not has_request_context():  # a background job: the caller forces the language it needs
        return LANGUAGES[0]
    return (
        supported(request.cookies.get(COOKIE_NAME))
        or request.accept_languages.best_match(LANGUAGES)
        or LANGUAGES[0]
    )


def use_share_language(code: str | None) -> None:
    """Show the rest of this request in the language the owner fixed on the share link (None: the visitor's).

    Called as soon as a share link is looked up, before any rule about it can fail, so its error pages speak
    the share's language too."""
    if supported(code) and g.get("share_language") != code:
        g.share_language = code
        refresh()  # a message translated earlier in this request must not keep the old language


def share_language_fixed() -> bool:
    """Whether this request shows a share whose language the owner fixed (the footer menu then has no say)."""
    return bool(g.get("share_language"))


def current_language() -> str:
    return str(get_locale() or LANGUAGES[0]).split("_")[0]


def filesize(size: int) -> str:
    """Bytes as people read them, in powers of 1000 like phones and browsers, with the locale's decimal mark:
    950 bytes, 4.2 MB / 4,2 MB, 12 GB."""
    return _filesize(str(get_locale() or LANGUAGES[0]), int(size))


@lru_cache(maxsize=8192)
def _filesize(locale: str, size: int) -> str:
    """`filesize` in `locale` (the request's): cached, since a gallery page shows two sizes per photo and
    Babel's number formatting was the page's most expensive filter; the same album is shown again and again."""
    if size < 1000:
        return ngettext("%(num)d byte", "%(num)d bytes", size)
    value = float(size)
    for unit in _SIZE_UNITS:
        value /= 1000
        if value < 999.95 or unit == _SIZE_UNITS[-1]:
            return f"{format_decimal(value, format='#,##0.0' if value < 100 else '#,##0')} {_(unit)}"
    raise AssertionError("unreachable")


def number(value: int) -> str:
    """12,345 in English, 12.345 in German, 12 345 in French."""
    return format_decimal(value)


def counted(singular: str, plural: str, count: int, **variables: object) -> str:
    """ngettext with `%(num)s` written the locale's way ("1.234 Fotos"), as the templates write it (Flask-Babel's
    own ngettext fills `num` with the bare number)."""
    return get_translations().ungettext(singular, plural, count) % {"num": number(count), **variables}


def datetime_utc(value: datetime) -> str:
    """A naive UTC moment as a long date and a time for the locale: "8 December 2026, 14:30 UTC",
    "8. Dezember 2026, 14:30 UTC"."""
    return _("%(date)s, %(time)s UTC", date=format_date(value, "long"), time=format_time(value, "short"))


def date_utc(value: datetime) -> str:
    """A naive UTC moment's day, in the locale's medium form: "8 Dec 2026", "08.12.2026"."""
    return format_date(value, "medium")


def time_left(expires_at: datetime, now: datetime) -> str:
    """A rough, friendly "in 3 days" / "in 3 Tagen" for an expiry in the future."""
    seconds = max(0.0, (expires_at - now).total_seconds())
    if seconds < 60:
        return _("in less than a minute")
    return format_timedelta(seconds, threshold=1, add_direction=True)


def download_name_for_selection(title: str, count: int) -> str:
    """The file name of a ZIP of some photos of an album: "Wedding (12 photos)"; the title stays as it is."""
    return ngettext("%(title)s (%(num)d photo)", "%(title)s (%(num)d photos)", count, title=title)


def download_name_for_part(title: str, part: int, parts: int) -> str:
    """The file name of one part of an album split into several ZIPs: "Wedding (part 2 of 3)"."""
    return _("%(title)s (part %(part)d of %(parts)d)", title=title, part=part, parts=parts)


class RequestDomain(Domain):
    """Flask-Babel's message domain, with the request's catalogue looked up once per language and request.
    Flask-Babel looks it up for every message, Jinja's and Python's (three context lookups and the locale's
    name each time): a gallery page's 34 messages cost it 2 ms. Keyed by the locale object, so `refresh()` and
    `force_locale` (a new object) still switch."""

    def get_translations(self) -> Translations | NullTranslations:
        locale = get_locale()
        if locale is None:  # outside a request: Flask-Babel's null catalogue
            return super().get_translations()
        kept = g.get("_translations_of")
        if kept is None or kept[0] is not locale:
            kept = g._translations_of = (locale, super().get_translations())
        return kept[1]


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")  # relative to the package
    babel.init_app(app, locale_selector=select_locale)
    babel.domain_instance = RequestDomain()  # Flask-Babel's default domain ("messages"), as the default
    filters = {"filesize": filesize, "number": number, "datetime_utc": datetime_utc, "date_utc": date_utc}
    # The old names, for templates written before the locale-aware filters: the same functions.
    filters |= {"human_size": filesize, "thousands": number}
    for name, function in filters.items():
        app.add_template_filter(function, name)

    @app.context_processor
    def language() -> dict[str, object]:
        return {
            "html_lang": current_language(),
            "languages": LANGUAGE_NAMES,
            "language_menu": not share_language_fixed(),
        }
