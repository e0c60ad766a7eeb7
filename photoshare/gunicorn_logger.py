"""gunicorn's logs the way the app writes its own (photoshare/logs.py): `logger_class` in deploy/gunicorn.conf.py.

Three things gunicorn's stock logger gets wrong for Photoshare:
- it writes the request line as received, `?password=` included, and would write any header a format names;
  here every access and error line goes through `logs.redact`, and the X-Share-Password atoms are blanked;
- `%(b)s`/`%(B)s` is `resp.sent`, which its sendfile path never adds to: every photo and archive the app sends
  itself was logged as `200 0`. The app's file body counts what left (downloads.ResponseFile.sent);
- a traceback in its error log spans many lines. Lines are one each, and JSON with LOG_FORMAT=json.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from .logs import FILE_BODY, REDACTED, REQUEST_ID_HEADER, formatter, json_line, one_line, redact


class Logger(glogging.Logger):
    """gunicorn's Logger with redacted lines, real byte counts, one line per record, and LOG_FORMAT=json."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.json = (os.environ.get("LOG_FORMAT") or "text").strip().lower() == "json"
        error_format = formatter("json" if self.json else "text", self.error_fmt, self.datefmt)
        for handler in self.error_log.handlers:
            handler.setFormatter(error_format)
        for handler in self.access_log.handlers:
            handler.setFormatter(_AccessFormatter(self.access_fmt))

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in atoms:
            if "share-password" in name or "share_password" in name:
                atoms[name] = REDACTED
        body = environ.get(FILE_BODY)
        if body is not None and not getattr(resp, "sent", 0):  # sent by sendfile: gunicorn did not count it
            atoms["B"] = body.sent
            atoms["b"] = str(body.sent)
        return atoms

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.json:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        self.access_log.info(json_line({
            "time": atoms["t"].strip("[]"),
            "client": environ.get("HTTP_X_REAL_IP") or atoms["h"],
            "peer": atoms["h"],
            "request": atoms["r"],
            "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
            "bytes": atoms["B"] or 0,
            "ms": atoms["M"],
            "referer": atoms["f"],
            "user_agent": atoms["a"],
            "request_id": atoms.get(f"{{{REQUEST_ID_HEADER.lower()}}}o", "-"),
        }))


class _AccessFormatter(logging.Formatter):
    """The access line as gunicorn formats it, redacted and on one line."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(redact(super().format(record)))
