"""The SQLite write queue: writers wait their turn on a lock file and always leave it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from onsite_server.db import Database, WriteQueueConnection, get_db


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
