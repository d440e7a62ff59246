"""The server's own logs: plain text or JSON lines (``LOG_FORMAT``), each with its request id.

Every request gets an id: the caller's ``X-Request-Id`` when it is a short token of safe
characters (a proxy's), else a new one. It is sent back in ``X-Request-Id`` and carried by
every log line written while the request is served, so an administrator can follow one kiosk
call from the proxy through the server's warnings. With ``LOG_FORMAT=json`` the access log is
JSON lines too (already redacted: see ``accesslog.py``).

What is logged never includes health data or secrets: the code logs kinds, counts and ids, and
``tests/onsite_server/platform/test_logs.py`` runs a whole visit through a live server and
searches its log for every answer, name, birth date, contact and token it sent.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from .accesslog import RedactingGunicornLogger

LOG_FORMATS = ("text", "json")
HEADER = "X-Request-Id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# The record attributes every LogRecord has; anything else was passed in ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def current_request_id() -> str:
    """The id of the request being served, or "-" outside a request."""
    if has_request_context():
        return str(g.get("request_id", "-"))
    return "-"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record, so both formats can show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the current request's id; never drop a record."""
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-")}
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "request_id":
                line[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str, level: str = "INFO") -> None:
    """Send the app's log records to stderr in the chosen format (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_onsite", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._onsite = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())


def init_app(app: Flask) -> None:
    """Give every request an id, sent back in X-Request-Id."""

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get(HEADER, "")
        g.request_id = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def _send_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers[HEADER] = g.request_id
        return response


class JsonAccessLogger(RedactingGunicornLogger):
    """gunicorn's logs as JSON lines: the access log (redacted, with the request id) and its
    own start-up and worker messages."""

    def setup(self, cfg: Any) -> None:
        """Set up gunicorn's handlers, then give its error log the JSON format."""
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Write one JSON line for a served request."""
        if not self.cfg.accesslog:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "INFO", "logger": "access",
                "message": f"{atoms.get('m')} {atoms.get('U')} {atoms.get('s')}",
                "remote": atoms.get("h"),
                "method": atoms.get("m"), "path": atoms.get("U"), "query": atoms.get("q"),
                "status": atoms.get("s"), "bytes": atoms.get("B"),
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "request_id": atoms.get("{x-request-id}o", "-")}
        self.access_log.info(json.dumps(line, ensure_ascii=False))
