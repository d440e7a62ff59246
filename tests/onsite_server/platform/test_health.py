"""/healthz tells the truth: 503 with the reason when the database refuses writes or the disk
is low, and the version only for an authenticated caller."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, make_url, text

from onsite_server import __version__
from onsite_server.app_settings import override
from onsite_server.db import get_db

from ..helpers import auth

HEARTBEAT = {"app_version": "1.0", "outbox_depth": 0, "free_disk_bytes": 10}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Every /healthz call checks afresh, and writes wait at most 0.5 s."""
    app_config["HEALTH_CHECK_SECONDS"] = 0
    app_config["SQLITE_BUSY_TIMEOUT_MS"] = 500
    return app_config


def _on_every_new_connection(app: Flask, statement: str) -> None:
    """Run a statement on each new connection of the app's engine, from now on."""
    engine = get_db(app).engine
    assert engine is not None

    def run(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(statement)
        cur.close()

    event.listen(engine, "connect", run)
    engine.dispose()  # pooled connections were made before: start again


@pytest.fixture
def read_only(app: Flask) -> Iterator[None]:
    """Make the app's database refuse writes (root ignores file modes: no chmod)."""
    db = get_db(app)
    if db.is_sqlite:
        _on_every_new_connection(app, "PRAGMA query_only = 1")
        yield
        return
    url = make_url(db.url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on')
    assert db.engine is not None
    db.engine.dispose()
    yield
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = off')
    admin.dispose()


@pytest.mark.sqlite_only
def test_healthy_answer_has_no_version_for_strangers(client: Any) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok", "disk": "ok"}


@pytest.mark.sqlite_only
def test_version_only_with_a_valid_device_token(client: Any, kiosk: dict[str, Any]) -> None:
    resp = client.get("/healthz", headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    assert resp.get_json()["version"] == __version__
    for headers in (auth("not-a-token"), {"Authorization": "Basic eDp5"}):
        resp = client.get("/healthz", headers=headers)
        assert resp.status_code == 200
        assert "version" not in resp.get_json()


def test_read_only_database_is_unhealthy(client: Any, kiosk: dict[str, Any], read_only: None,
                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="onsite_server.health"):
        resp = client.get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "degraded" and body["database"] == "read-only"
    assert body["reasons"] == ["database: read-only"]
    assert resp.headers["Retry-After"]
    assert "does not take writes (read-only)" in caplog.text
    # The writes it warns about answer 503 too, never 500.
    resp = client.post("/api/v1/heartbeat", json=HEARTBEAT, headers=auth(kiosk["token"]))
    assert resp.status_code == 503 and resp.headers["Retry-After"]


def test_full_database_is_unhealthy(app: Flask, client: Any,
                                    caplog: pytest.LogCaptureFixture) -> None:
    db = get_db(app)
    if not db.is_sqlite:
        pytest.skip("SQLite's max_page_count makes a full database without filling a disk")
    with db.transaction() as session:
        pages = session.execute(text("PRAGMA page_count")).scalar_one()
    _on_every_new_connection(app, f"PRAGMA max_page_count = {int(pages)}")
    with caplog.at_level(logging.WARNING, logger="onsite_server.health"):
        resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["database"] == "full"
    assert "cannot grow" in caplog.text


@pytest.mark.sqlite_only
def test_low_disk_is_unhealthy(app: Flask, client: Any,
                               caplog: pytest.LogCaptureFixture) -> None:
    if not get_db(app).is_sqlite:
        pytest.skip("the free space checked is that of the SQLite file's folder")
    override(app, HEALTH_MIN_FREE_MB=1 << 40)  # more than any disk has
    with caplog.at_level(logging.WARNING, logger="onsite_server.health"):
        resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["disk"] == "low"
    assert resp.get_json()["database"] == "ok"
    assert "below HEALTH_MIN_FREE_MB" in caplog.text


def test_held_write_lock_makes_health_busy_not_hung(app: Flask, client: Any) -> None:
    db = get_db(app)
    if not db.is_sqlite:
        pytest.skip("the write queue is SQLite's")
    lock_path = db.url.removeprefix("sqlite:///") + ".writelock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys\n"
         f"f = open({lock_path!r}, 'a+b')\n"
         "fcntl.flock(f.fileno(), fcntl.LOCK_EX)\n"
         "print('held', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        resp = client.get("/healthz")
    finally:
        holder.kill()
        holder.communicate()
    assert resp.status_code == 503
    assert resp.get_json()["database"] == "busy"
    assert client.get("/healthz").status_code == 200


@pytest.mark.sqlite_only
def test_results_are_reused_for_a_moment(app: Flask, client: Any) -> None:
    override(app, HEALTH_CHECK_SECONDS=60)
    assert client.get("/healthz").status_code == 200
    override(app, HEALTH_MIN_FREE_MB=1 << 40)
    assert client.get("/healthz").status_code == 200  # the report of a moment ago
    override(app, HEALTH_CHECK_SECONDS=0)
    expected = 503 if get_db(app).is_sqlite else 200
    assert client.get("/healthz").status_code == expected
