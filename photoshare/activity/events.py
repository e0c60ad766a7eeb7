"""What one visitor action is, before it reaches the database: plain values, no Flask, no database.

The request path only builds an `Event` (a few attribute reads) and hands it to the recorder; everything that
costs more (parsing the User-Agent into browser and system families, the database write) happens later, in the
writer. The network address is truncated here, at once, so a whole address never leaves the request: not into
the queue, not into Redis, not into a log line.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

VISIT = "visit"
# A gallery opened again in the same visitor session: counted on the link (view_count), never stored as a row.
VIEW = "view"
DOWNLOAD_KINDS = ("photo", "album", "part", "selection", "prepared")
KINDS = (VISIT, *DOWNLOAD_KINDS)
IPV4_PREFIX, IPV6_PREFIX = 24, 48
MAX_USER_AGENT = 512  # longer ones are cut before parsing: the families are in the first few hundred characters


@dataclass(frozen=True)
class Visitor:
    """Who did it, as far as we may keep it: the session's random id, the e-mail they gave, a /24 or /48."""

    visitor_id: str | None
    email: str | None
    network: str | None
    user_agent: str


@dataclass(frozen=True)
class Event:
    """One row of activity_events, or a `view` tick; `user_agent` is parsed into families by the writer."""

    at: datetime
    share_id: int
    album_id: int
    kind: str
    photo_id: int | None = None
    part: str | None = None
    size: str | None = None
    bytes: int = 0
    finished: bool = False
    visitor_id: str | None = None
    email: str | None = None
    network: str | None = None
    user_agent: str = field(default="", repr=False)
    # The link's counters this event adds one to (store.COUNTERS: downloads started and finished, download-limit
    # slots not taken in the request): written with the event's batch, so no request waits for that write.
    counters: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (Redis keeps events as JSON between the request and the writer)."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(**{**data, "at": datetime.fromisoformat(data["at"]), "counters": tuple(data.get("counters", ()))})


def truncate_address(address: str | None) -> str | None:
    """The network an address is in, /24 for IPv4 and /48 for IPv6 (an IPv4-mapped IPv6 address as IPv4);
    None for anything that is not an address. The whole address is never returned."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@lru_cache(maxsize=4096)
def families(user_agent: str) -> tuple[str | None, str | None]:
    """(browser family, operating system family) from a User-Agent, with ua-parser's maintained rules; None
    where it recognises nothing. Cached: visitors of one album share a handful of User-Agents."""
    if not user_agent:
        return None, None
    from ua_parser import parse

    result = parse(user_agent[:MAX_USER_AGENT])
    browser = result.user_agent.family if result.user_agent is not None else None
    system = result.os.family if result.os is not None else None
    return _known(browser), _known(system)


def _known(family: str | None) -> str | None:
    return None if family in (None, "", "Other") else family[:64]
