"""A database that refuses writes answers 503 naming the real cause, on SQLite and PostgreSQL.

A full disk or a read-only database does not clear by itself: the answer must say so instead of
"the database is busy", so that whoever reads it (a kiosk's log, a coordinator) can act.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, text

from onsite_server import create_app
from onsite_server.db import get_db
from onsite_server.errors import database_unavailable

from ..helpers import auth, submission_item

PHQ2 = {"1": 1, "2": 1}


def _submit(client: Any, token: str) -> Any:
    return client.post("/api/v1/submissions", headers=auth(token),
                       json={"items": [submission_item("phq2", PHQ2)]})


def _fill_the_disk(app: Flask) -> None:
    """Make the next new row fail as a full disk does, with the driver's own error."""
    db = get_db(app)
    assert db.engine is not None
    if db.is_sqlite:
        # SQLite's "database or disk is full" (SQLITE_FULL) once no page may be added.
        with db.transaction() as session:
            pages = int(session.execute(text("PRAGMA page_count")).scalar_one())

        def limit(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

        event.listen(db.engine, "connect", limit)
        db.engine.dispose()
        return
    # PostgreSQL's disk_full (SQLSTATE 53100), raised by the server on every new submission.
    with db.transaction() as session:
        session.execute(text(
            "CREATE FUNCTION pretend_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' "
            "USING ERRCODE = 'disk_full'; END $$"))
        session.execute(text("CREATE TRIGGER disk_full BEFORE INSERT ON submission "
                             "FOR EACH ROW EXECUTE FUNCTION pretend_disk_full()"))


def test_a_full_disk_answers_503_saying_so(app: Flask, client: Any,
                                           kiosk: dict[str, Any]) -> None:
    _fill_the_disk(app)
    for _ in range(200):  # SQLite fills its last free pages first
        resp = _submit(client, kiosk["token"])
        if resp.status_code != 200:
            break
    assert resp.status_code == 503, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["cause"] == "full"
    assert "full" in body["detail"] and "busy" not in body["detail"]
    assert int(resp.headers["Retry-After"]) > 2  # not "retry in a moment"


@pytest.fixture
def read_only_app(app: Flask, app_config: dict[str, Any],
                  kiosk: dict[str, Any]) -> Iterator[Flask]:
    """The same (migrated, paired) database, now refusing every write."""
    url = app_config["DATABASE_URL"]
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        ro = create_app({**app_config, "DATABASE_URL": f"sqlite:///file:{path}?mode=ro&uri=true"})
    else:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = conn.scalar(text("SELECT current_database()"))
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        admin.dispose()
        ro = create_app(app_config)
    yield ro
    get_db(ro).dispose()


def test_a_read_only_database_answers_503_saying_so(read_only_app: Flask,
                                                    kiosk: dict[str, Any]) -> None:
    resp = _submit(read_only_app.test_client(), kiosk["token"])
    assert resp.status_code == 503, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["cause"] == "read-only"
    assert "read-only" in body["detail"] and "busy" not in body["detail"]


def test_the_html_page_names_the_cause(app: Flask) -> None:
    from sqlalchemy.exc import OperationalError

    error = OperationalError("INSERT", {}, Exception("database or disk is full"))
    with app.test_request_context("/dashboard/admin/settings", method="POST",
                                  headers={"Accept": "text/html"}):
        page = html.unescape(database_unavailable(error).get_data(as_text=True))
    assert "The server's disk is full" in page
    assert "busy" not in page.lower()
