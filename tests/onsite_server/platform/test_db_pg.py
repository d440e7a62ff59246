"""PostgreSQL under contention and faults: every wait is bounded and ends in a 503, never a 500.

These run on the throwaway PostgreSQL only (SQLite's own bounds are tested in test_db.py).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import Connection, create_engine, event, func, select, text
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from onsite_server import config as config_module
from onsite_server.api import hash_token
from onsite_server.app_settings import of as settings_of
from onsite_server.app_settings import override
from onsite_server.cli import main
from onsite_server.db import Database, PgLimits, get_db
from onsite_server.models import Booking, Kiosk, Slot
from onsite_server.services.members import make_member_ref
from onsite_server.settings import pool_size

from ..helpers import auth, gen_event, gen_member, gen_site, new_key

# Generous: "answered, not hung". Without the bounds these requests wait as long as the lock
# is held (far longer), or 30 s for the pool.
BOUND_SECONDS = 30.0


@pytest.fixture
def pg_url(database_url: str) -> str:
    """The fresh database URL, on PostgreSQL only."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    return database_url


def _terminate(url: str, pid: int) -> None:
    """Kill one backend from outside, and wait until it is gone."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                              {"pid": pid}) and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        admin.dispose()


class LiveSite:
    """A kiosk with members and one slot, written straight into the live server's database."""

    def __init__(self, url: str, secret: str, members: int) -> None:
        db = Database()
        db.configure(url)
        self.token = "pg-test-token-" + new_key()
        with db.transaction() as session:
            site = gen_site(session)
            kiosk = Kiosk(site_id=site.id, token_hash=hash_token(self.token),
                          paired_at=datetime.now(UTC))
            session.add(kiosk)
            session.flush()
            self.refs = [make_member_ref(secret, gen_member(session, site), kiosk)
                         for _ in range(members)]
            slot = gen_event(session, site, capacity=members).slots[0]
            self.slot_pk, self.slot_id = slot.id, slot.public_id
        db.dispose()


def test_row_lock_held_outside_gives_bounded_503s_while_healthz_answers(
        live_server: Any, pg_url: str) -> None:
    site = LiveSite(pg_url, live_server.env["ONSITE_SECRET_KEY"], members=16)
    outside = create_engine(pg_url)
    url = live_server.url
    try:
        with outside.connect() as holder:
            # A long transaction elsewhere (an admin's SQL session, a stuck job) holds the slot.
            holder.execute(text("SELECT id FROM slot WHERE id = :id FOR UPDATE"),
                           {"id": site.slot_pk})

            def book(ref: str) -> tuple[int, float, dict[str, str], str]:
                began = time.monotonic()
                resp = requests.post(f"{url}/api/v1/bookings", headers=auth(site.token),
                                     json={"idempotency_key": new_key(), "member_ref": ref,
                                           "slot_id": site.slot_id}, timeout=BOUND_SECONDS * 2)
                return (resp.status_code, time.monotonic() - began, dict(resp.headers),
                        resp.text)

            def health() -> tuple[int, float]:
                began = time.monotonic()
                resp = requests.get(f"{url}/healthz", timeout=BOUND_SECONDS * 2)
                return resp.status_code, time.monotonic() - began

            # Twice as many bookings as the server has threads (2 workers x 4): every thread
            # waits, and the rest queue behind them.
            with ThreadPoolExecutor(20) as pool:
                bookings = [pool.submit(book, ref) for ref in site.refs]
                time.sleep(1.0)
                checks = [pool.submit(health) for _ in range(3)]
                healths = [c.result(timeout=BOUND_SECONDS * 2) for c in checks]
                answers = [b.result(timeout=BOUND_SECONDS * 3) for b in bookings]
            holder.rollback()
    finally:
        outside.dispose()
    assert [status for status, _ in healths] == [200, 200, 200]
    assert max(seconds for _, seconds in healths) < BOUND_SECONDS
    assert {status for status, *_ in answers} == {503}, [a[3] for a in answers][:3]
    for _, seconds, headers, body in answers:
        assert seconds < BOUND_SECONDS
        assert headers["Retry-After"] and headers["Content-Type"] == "application/problem+json"
        assert "retry" in body
    # The lock is gone: the same member books at once.
    again = requests.post(f"{url}/api/v1/bookings", headers=auth(site.token),
                          json={"idempotency_key": new_key(), "member_ref": site.refs[0],
                                "slot_id": site.slot_id}, timeout=60)
    assert again.status_code == 201, again.text


@pytest.fixture
def pg_app(pg_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    """An app on PostgreSQL with a small pool and short timeouts."""
    from onsite_server import create_app
    from onsite_server.migrate import upgrade

    application = create_app({**app_config, "DB_POOL_SIZE": 2, "DB_POOL_TIMEOUT_MS": 500,
                              "PG_LOCK_TIMEOUT_MS": 500})
    upgrade(get_db(application))
    yield application
    get_db(application).dispose()


def _kiosk_and_slot(app: Flask) -> tuple[str, str, str]:
    """A kiosk token, a member reference and a slot id in the app's database."""
    token = "pg-test-token-" + new_key()
    with get_db(app).transaction() as session:
        site = gen_site(session)
        kiosk = Kiosk(site_id=site.id, token_hash=hash_token(token), paired_at=datetime.now(UTC))
        session.add(kiosk)
        session.flush()
        ref = make_member_ref(app.config["SECRET_KEY"], gen_member(session, site), kiosk)
        slot = gen_event(session, site).slots[0].public_id
    return token, ref, slot


def test_an_empty_pool_answers_503_soon_not_500(pg_app: Flask) -> None:
    token, ref, slot = _kiosk_and_slot(pg_app)
    engine = get_db(pg_app).engine
    assert engine is not None
    held = []
    try:
        # Take every connection the pool will give (whatever its overflow), as stuck requests
        # would.
        while len(held) < 50:
            try:
                held.append(engine.connect())
            except PoolTimeout:
                break
        assert len(held) < 50
        began = time.monotonic()
        resp = pg_app.test_client().post(
            "/api/v1/bookings", headers=auth(token),
            json={"idempotency_key": new_key(), "member_ref": ref, "slot_id": slot})
        elapsed = time.monotonic() - began
    finally:
        for conn in held:
            conn.close()
    assert resp.status_code == 503, resp.get_data(as_text=True)
    assert resp.headers["Retry-After"]
    assert resp.mimetype == "application/problem+json"
    assert elapsed < 10
    # Connections back: the same request goes through.
    again = pg_app.test_client().post(
        "/api/v1/bookings", headers=auth(token),
        json={"idempotency_key": new_key(), "member_ref": ref, "slot_id": slot})
    assert again.status_code == 201, again.get_json()


def _slot_pk(app: Flask, slot: str) -> int:
    with get_db(app).transaction(write=False) as session:
        return session.scalars(select(Slot.id).where(Slot.public_id == slot)).one()


@pytest.mark.parametrize("when", ["at_commit", "mid_request", "rollback_after_lock_timeout",
                                  "rollback_after_refusal"])
def test_a_backend_killed_around_a_commit_never_answers_500(pg_app: Flask, pg_url: str,
                                                             when: str) -> None:
    token, ref, slot = _kiosk_and_slot(pg_app)
    engine = get_db(pg_app).engine
    assert engine is not None
    killed: list[int] = []

    def kill(conn: Connection, *_: Any) -> None:
        if not killed:
            pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            killed.append(pid)
            _terminate(pg_url, pid)

    def mid_request(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        # The booking's seat UPDATE: half the request's work is done on this connection.
        if statement.lstrip().upper().startswith("UPDATE SLOT"):
            kill(conn)

    # Where the connection dies: under the COMMIT; under a statement; or after the request
    # already failed (a lock timeout) or was refused (409), just before its ROLLBACK, so
    # the rollback in the error path fails too.
    hooks = {"at_commit": ("commit", kill), "mid_request": ("before_cursor_execute", mid_request),
             "rollback_after_lock_timeout": ("rollback", kill),
             "rollback_after_refusal": ("rollback", kill)}
    name, hook = hooks[when]
    outside = create_engine(pg_url)
    holder = outside.connect()
    if when == "rollback_after_lock_timeout":
        holder.execute(text("SELECT id FROM slot WHERE id = :id FOR UPDATE"),
                       {"id": _slot_pk(pg_app, slot)})
    if when == "rollback_after_refusal":
        holder.execute(text("UPDATE slot SET cancelled = true WHERE id = :id"),
                       {"id": _slot_pk(pg_app, slot)})
        holder.commit()
    body = {"idempotency_key": new_key(), "member_ref": ref, "slot_id": slot}
    event.listen(engine, name, hook)
    try:
        resp = pg_app.test_client().post("/api/v1/bookings", headers=auth(token), json=body)
    finally:
        event.remove(engine, name, hook)
        holder.rollback()
        if when == "rollback_after_refusal":
            holder.execute(text("UPDATE slot SET cancelled = false"))
            holder.commit()
        holder.close()
        outside.dispose()
    assert killed, "the fault was not injected"
    if when == "rollback_after_refusal":
        # Refused before any write: the refusal stands, whatever happened to the connection.
        assert resp.status_code == 409, resp.get_data(as_text=True)
    else:
        assert resp.status_code == 503, resp.get_data(as_text=True)
        assert resp.headers["Retry-After"]
    assert resp.mimetype == "application/problem+json"
    with get_db(pg_app).transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Booking)) == 0
        assert session.scalars(select(Slot.booked_count).where(Slot.public_id == slot)).one() == 0
    # The dead connection was dropped: the kiosk's retry with the same key books.
    again = pg_app.test_client().post("/api/v1/bookings", headers=auth(token), json=body)
    assert again.status_code == 201, again.get_json()


# --- pool sizing ----------------------------------------------------------------------------


@pytest.mark.parametrize(("threads", "configured", "expected"), [
    (0, 0, 5), (0, 3, 3), (4, 0, 4), (64, 0, 64), (8, 10, 10), (8, 8, 8),
])
def test_pool_is_sized_from_the_threads(threads: int, configured: int, expected: int) -> None:
    assert pool_size(threads, configured) == expected


def test_a_pool_smaller_than_the_threads_is_refused() -> None:
    with pytest.raises(config_module.ConfigError, match="DB_POOL_SIZE"):
        pool_size(64, 20)


def test_the_engine_has_the_limits(pg_url: str) -> None:
    db = Database()
    db.configure(pg_url, pg=PgLimits(pool_size=7, pool_timeout_ms=1500, lock_timeout_ms=1234,
                                      statement_timeout_ms=4321, connect_timeout_seconds=2))
    try:
        assert db.engine is not None
        pool: Any = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (7, 0, 1.5)
        with Session(db.engine) as session:
            assert session.scalar(text("SHOW lock_timeout")) == "1234ms"
            assert session.scalar(text("SHOW statement_timeout")) == "4321ms"
            raw: Any = session.connection().connection.dbapi_connection
            assert raw.info.get_parameters()["connect_timeout"] == "2"
    finally:
        db.dispose()


def test_a_statement_past_its_timeout_answers_503(pg_app: Flask) -> None:
    @pg_app.get("/test-slow")
    def slow() -> str:
        from onsite_server.db import get_session

        get_session().execute(text("SELECT pg_sleep(30)"))
        return "done"

    override(pg_app, PG_STATEMENT_TIMEOUT_MS=500)
    get_db(pg_app).dispose()
    get_db(pg_app).configure(pg_app.config["DATABASE_URL"],
                             pg=PgLimits.from_settings(settings_of(pg_app)))
    began = time.monotonic()
    resp = pg_app.test_client().get("/test-slow")
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert time.monotonic() - began < 10


def test_serve_refuses_threads_the_pool_cannot_serve(runner: Any, app: Flask) -> None:
    override(app, DB_POOL_SIZE=20)
    result = runner.invoke(main, ["serve", "--threads", "64", "--no-tls"], obj={"app": app})
    assert result.exit_code == 2
    assert "--threads" in result.output and "DB_POOL_SIZE" in result.output




def test_serve_refuses_more_connections_than_postgresql_accepts(runner: Any, app: Flask,
                                                                 pg_url: str) -> None:
    # 64 workers x 64 threads: far beyond the test cluster's max_connections (300).
    result = runner.invoke(main, ["serve", "--workers", "64", "--threads", "64", "--no-tls"],
                           obj={"app": app})
    assert result.exit_code == 2, result.output
    assert "max_connections" in result.output and "4096" in result.output


def test_a_server_that_never_answers_the_connect_gives_503_soon(tmp_path: Any) -> None:
    from onsite_server import create_app

    # A socket that accepts TCP connections but never speaks PostgreSQL: a frozen server.
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(16)
        port = frozen.getsockname()[1]
        app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                          "SECRET_KEY": "test", "PG_CONNECT_TIMEOUT_SECONDS": 2,
                          "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"})
        answers: list[tuple[int, float]] = []

        def ask() -> None:
            for path in ("/api/v1/catalog", "/healthz"):
                began = time.monotonic()
                resp = app.test_client().get(path, headers=auth("some-token"))
                answers.append((resp.status_code, time.monotonic() - began))

        # A thread, so that without the bound the test fails instead of hanging the suite.
        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        asker.join(BOUND_SECONDS)
        hung = asker.is_alive()
    asker.join(10)
    get_db(app).dispose()
    assert not hung, "a request waited for the connection without a bound"
    assert [status for status, _ in answers] == [503, 503]
    assert all(seconds < BOUND_SECONDS for _, seconds in answers)
