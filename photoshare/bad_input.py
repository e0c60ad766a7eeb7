"""Text no field may hold, turned away before any view: a NUL character in a query or form value.

No album title, e-mail address, password or file name contains U+0000, and PostgreSQL refuses it in any text
column ("text fields cannot contain NUL"), which made a 500 of every field that reaches the database (log in,
new album, rename). One check here instead of one per field; the answer is a 400 like any malformed request.
Ids and tokens in the path are checked where they are read (converters.py, access.find_share).
"""

from __future__ import annotations

from flask import Flask, request
from flask_babel import lazy_gettext as _l

from .errors import AppError


class NulCharacter(AppError):
    status, error = 400, "bad_request"
    message = _l("The request holds a NUL character, which no field may contain.")


def refuse_nul_characters() -> None:
    """Raises NulCharacter when a query or form key or value holds U+0000 (the form is parsed as the CSRF
    check parses it anyway)."""
    for fields in (request.args, request.form):
        for key, values in fields.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                raise NulCharacter()


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_characters)
