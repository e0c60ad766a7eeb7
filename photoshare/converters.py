"""The `<int:…>` of every route: a database id, so only numbers a 64-bit integer column can hold.

Werkzeug's own IntegerConverter takes any run of digits (`\\d+`, Unicode digits such as "٣" included) and
hands the number to the view, which asks the database: SQLite raises OverflowError for an id past 2^63 - 1,
a 500 with a traceback. Registered as "int" in create_app before any blueprint, so every route written
`<int:album_id>`, now and later, answers such an id with a 404 before its view runs.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

MAX_ID = (1 << 63) - 1  # SQLite INTEGER and PostgreSQL bigint; serial (int4) ids are smaller still


class IdConverter(IntegerConverter):
    """Non-negative ASCII decimal of at most 19 digits, at most MAX_ID; anything else does not match (404)."""

    regex = r"[0-9]{1,19}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("signed", None)  # an id is never negative (nor is `signed` the 4th positional argument)
        super().__init__(map, *args[:3], **kwargs)
        self.max = MAX_ID if self.max is None else min(self.max, MAX_ID)
