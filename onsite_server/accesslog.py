"""Access logs without secrets or names: one-time link tokens and query values are redacted.

An invite or reset link carries its token in the path (``/account/link/<token>``) and the
check-in search carries a member's name in the query (``?q=<name>``); an access log written
with them hands both to anyone who can read the log. Every access log line this server writes
(gunicorn's, and Werkzeug's when served by ``flask run`` or a test server) goes through
``redact_target``: secret path segments and every query value become ``[redacted]``, the
parameter names stay. The Referer is redacted the same way, since a page's own address comes
back in it (``Referrer-Policy: same-origin``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

REDACTED = "[redacted]"
# Paths whose last segment is a secret: the one-time invite and reset links.
_SECRET_PATH = re.compile(r"(/account/link/)[^/?#\s]+")


def redact_path(path: str) -> str:
    """Replace a secret path segment (a link token) with [redacted]."""
    return _SECRET_PATH.sub(lambda m: m.group(1) + REDACTED, path)


def redact_query(query: str) -> str:
    """Keep each parameter's name and redact its value (``q=Ana`` -> ``q=[redacted]``)."""
    if not query:
        return query
    parts = []
    for pair in query.split("&"):
        name, sep, _value = pair.partition("=")
        parts.append(f"{name}={REDACTED}" if sep else name)
    return "&".join(parts)


def redact_target(target: str) -> str:
    """Redact a request target or URL: secret path segments and every query value."""
    path, sep, query = target.partition("?")
    return redact_path(path) + (sep + redact_query(query) if sep else "")


class RedactingGunicornLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's logger, writing the request line, path, query and Referer redacted."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
              ) -> dict[str, Any]:
        """The access-log atoms of the format (%(r)s, %(U)s, %(q)s, %(f)s...), redacted."""
        clean = dict(environ)
        clean["RAW_URI"] = redact_target(str(environ.get("RAW_URI", "")))
        clean["PATH_INFO"] = redact_path(str(environ.get("PATH_INFO", "")))
        clean["QUERY_STRING"] = redact_query(str(environ.get("QUERY_STRING", "")))
        if "HTTP_REFERER" in environ:
            clean["HTTP_REFERER"] = redact_target(str(environ["HTTP_REFERER"]))
        atoms: dict[str, Any] = super().atoms(resp, req, clean, request_time)
        if "{referer}i" in atoms:  # the header itself, as %({referer}i)s
            atoms["{referer}i"] = redact_target(str(atoms["{referer}i"]))
        return atoms


class _WerkzeugRedactor(logging.Filter):
    """Redact the request line Werkzeug's development server logs (its first argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            method, _, rest = args[0].partition(" ")
            target, _, protocol = rest.partition(" ")
            record.args = (f"{method} {redact_target(target)} {protocol}".rstrip(), *args[1:])
        return True


def install_werkzeug_filter() -> None:
    """Make Werkzeug's request log redact its request lines (idempotent)."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, _WerkzeugRedactor) for f in logger.filters):
        logger.addFilter(_WerkzeugRedactor())
