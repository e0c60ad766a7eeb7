"""The `<int:…>` of every route: a database id, so only numbers the id columns can hold.

Werkzeug's own IntegerConverter takes any run of digits (`\\d+`, Unicode digits such as "٣" included) and
hands the number to the view, which asks the database: SQLite raises OverflowError for an id past 2^63 - 1 and
PostgreSQL "integer out of range" past 2^31 - 1 (the id columns are INTEGER, cast as such), each a 500 with a
traceback. Registered as "int" in create_app before any blueprint, so every route written `<int:album_id>`,
now and later, answers such an id with a 404 before its view runs.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

MAX_ID = (1 << 31) - 1  # `Integer` primary keys: 32-bit on PostgreSQL, the smallest of the databases we run on


class IdConverter(IntegerConverter):
    """Non-negative ASCII decimal, at most MAX_ID; anything else does not match the route (404)."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("signed", None)  # an id is never negative (nor is `signed` the 4th positional argument)
        super().__init__(map, *args[:3], **kwargs)
        self.max = MAX_ID if self.max is None else min(self.max, MAX_ID)
