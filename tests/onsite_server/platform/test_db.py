"""The SQLite write queue: writers wait their turn on a lock file and always leave it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from onsite_server.db import Database, WriteQueueConnection, WriteQueueTimeout, get_db

from ..helpers import auth


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """A file-based SQLite database with one table."""
    db = Database()
    db.configure(f"sqlite:///{tmp_path / 'q.sqlite'}", busy_timeout_ms=5000)
    with db.transaction() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    yield db
    db.dispose()


def test_sqlite_file_connections_queue_for_writes(database: Database, tmp_path: Path) -> None:
    with database.transaction() as session:
        raw = session.connection().connection.dbapi_connection
        assert isinstance(raw, WriteQueueConnection)
        assert raw.lock_path == str(tmp_path / "q.sqlite") + ".writelock"


def test_second_writer_waits_until_the_first_commits(database: Database) -> None:
    order: list[str] = []
    first_has_lock = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with database.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            order.append("first wrote")
            first_has_lock.set()
            release_first.wait(5)
            order.append("first commits")

    def second() -> None:
        first_has_lock.wait(5)
        with database.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
            order.append("second wrote")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_has_lock.wait(5)
    # The second writer is blocked in the queue; give it a moment to (wrongly) get through.
    threads[1].join(0.3)
    assert threads[1].is_alive()
    release_first.set()
    for t in threads:
        t.join(10)
    assert order == ["first wrote", "first commits", "second wrote"]
    with database.transaction(write=False) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 2


@pytest.mark.parametrize("ending", ["rollback", "error"])
def test_queue_is_left_on_rollback_and_error(database: Database, ending: str) -> None:
    if ending == "rollback":
        session = database.session()
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.rollback()
        session.close()
    else:
        with pytest.raises(RuntimeError), database.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("boom")
    done = threading.Event()

    def writer() -> None:
        with database.transaction() as other:
            other.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert done.wait(5), "the queue was not released"
    thread.join()


def test_every_connection_syncs_each_commit(database: Database) -> None:
    # synchronous=FULL (2) on every pooled connection, read and write alike (one writer: a
    # thread cannot queue twice): with NORMAL a
    # power cut can lose commits the kiosk was told were stored.
    sessions = [database.session(write=write) for write in (True, False, False, False)]
    try:
        seen = set()
        for session in sessions:
            raw = session.connection().connection.dbapi_connection
            seen.add(id(raw))
            assert session.execute(text("PRAGMA synchronous")).scalar() == 2
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert len(seen) == len(sessions)
    finally:
        for session in sessions:
            session.close()


def test_the_app_database_syncs_each_commit(app: Any) -> None:
    if not get_db(app).is_sqlite:
        pytest.skip("a SQLite pragma")
    with get_db(app).transaction() as session:
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2


def _hold_file_lock(path: str) -> subprocess.Popen[str]:
    """Start another process that takes the write queue's file lock and keeps it until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys\n"
         f"f = open({path!r}, 'a+b')\n"
         "fcntl.flock(f.fileno(), fcntl.LOCK_EX)\n"
         "print('held', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.communicate()


def _write_in_thread(database: Database) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def write() -> None:
        started = time.monotonic()
        try:
            with database.transaction() as session:
                session.execute(text("INSERT INTO t VALUES (9)"))
            outcome.append("committed")
        except OperationalError as exc:
            outcome.append(exc)
        outcome.append(time.monotonic() - started)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread, outcome


def test_writer_gives_up_when_another_process_holds_the_queue(tmp_path: Path) -> None:
    db = Database()
    db.configure(f"sqlite:///{tmp_path / 'b.sqlite'}", busy_timeout_ms=600)
    with db.transaction() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    holder = _hold_file_lock(str(tmp_path / "b.sqlite") + ".writelock")
    try:
        thread, outcome = _write_in_thread(db)
        # Bounded, not hung: well within twice the bound (generous for a busy machine).
        thread.join(1.2 + 5)
        assert not thread.is_alive(), "the writer waited without limit"
        assert isinstance(outcome[0], WriteQueueTimeout)
        assert isinstance(outcome[1], float) and outcome[1] >= 0.5
    finally:
        _release(holder)
    # The queue works again once the holder is gone, in the same process and connections.
    thread, outcome = _write_in_thread(db)
    thread.join(5)
    assert outcome[0] == "committed"
    with db.transaction(write=False) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 1
    db.dispose()


def test_writer_gives_up_when_another_thread_holds_the_queue(tmp_path: Path) -> None:
    db = Database()
    db.configure(f"sqlite:///{tmp_path / 'c.sqlite'}", busy_timeout_ms=400)
    with db.transaction() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    holding = db.session()
    holding.execute(text("INSERT INTO t VALUES (1)"))  # holds the queue until it ends
    try:
        thread, outcome = _write_in_thread(db)
        thread.join(0.8 + 5)
        assert not thread.is_alive(), "the writer waited without limit"
        assert isinstance(outcome[0], WriteQueueTimeout)
    finally:
        holding.commit()
        holding.close()
    thread, outcome = _write_in_thread(db)
    thread.join(5)
    assert outcome[0] == "committed"
    db.dispose()


@pytest.fixture
def short_bound_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """The test app with a 500 ms write bound."""
    app_config["SQLITE_BUSY_TIMEOUT_MS"] = 500
    return app_config


def test_held_queue_answers_503_with_retry_after(short_bound_config: dict[str, Any],
                                                 app: Any, client: Any,
                                                 kiosk: dict[str, Any]) -> None:
    if not get_db(app).is_sqlite:
        pytest.skip("the write queue is SQLite's")
    lock_path = get_db(app).url.removeprefix("sqlite:///") + ".writelock"
    holder = _hold_file_lock(lock_path)
    try:
        started = time.monotonic()
        resp = client.post("/api/v1/heartbeat", headers=auth(kiosk["token"]),
                           json={"app_version": "1", "outbox_depth": 0, "free_disk_bytes": 1})
        waited = time.monotonic() - started
    finally:
        _release(holder)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert resp.mimetype == "application/problem+json"
    assert waited < 2 * 0.5 + 3
    resp = client.post("/api/v1/heartbeat", headers=auth(kiosk["token"]),
                       json={"app_version": "1", "outbox_depth": 0, "free_disk_bytes": 1})
    assert resp.status_code == 200
