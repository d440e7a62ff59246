"""An app of the benchmark's own server, in this process, with every SQL statement noted.

The benchmarks' ``--in-process`` runs send requests through Flask's test client to count the
statements and the CPU of each request without HTTP or other processes in the way.
"""

from __future__ import annotations

import os
from typing import Any


def noted_app(env: dict[str, str]) -> tuple[Any, Any, list[str]]:
    """The app for env's ONSITE_ settings, its test client, and the list its SQL lands in.

    Each statement is noted by its first word, and each transaction's BEGIN and COMMIT by the
    engine's own events (SQLite's BEGIN IMMEDIATE would otherwise count twice).
    """
    from sqlalchemy import event

    from onsite_server import create_app
    from onsite_server.db import get_db

    os.environ.update({k: v for k, v in env.items() if k.startswith("ONSITE_")})
    app = create_app()
    engine = get_db(app).engine
    assert engine is not None
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        word = sql.split(None, 1)[0].upper()
        if word != "BEGIN":  # SQLite's BEGIN IMMEDIATE; the begin event counts every one
            statements.append(word)

    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "begin", lambda _c: statements.append("BEGIN"))
    event.listen(engine, "commit", lambda _c: statements.append("COMMIT"))
    return app, app.test_client(), statements
