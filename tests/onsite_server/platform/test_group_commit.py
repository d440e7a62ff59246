"""SQLite group commit: requests that queue for the write lock together share one COMMIT.

Each request still runs in a SAVEPOINT of its own, is answered only after the COMMIT that
holds its writes returned (``synchronous=FULL``: after the sync), and never as stored when
that COMMIT failed or never came (``db.sqlite_writes.GroupCommit``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, abort
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from onsite_server.db import get_db, get_session
from onsite_server.models import AuditLog

pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parents[3]


def _routes(app: Flask, hold: threading.Event) -> None:
    """A write route; "first" holds its turn after writing until ``hold`` is set."""
    app.config["WTF_CSRF_ENABLED"] = False  # bare test routes, not dashboard forms

    @app.post("/_test/group/<name>")
    def write(name: str) -> str:
        session = get_session()
        session.add(AuditLog(actor="test", action=f"test.{name}"))
        session.flush()  # the write takes the request's turn in the group
        if name.startswith("first"):
            assert hold.wait(30)
        if name.endswith("refused"):
            abort(409)
        if name == "broken":
            raise RuntimeError("a bug after the write")
        return "ok"


def _stored(app: Flask) -> list[str]:
    with get_db(app).transaction(write=False) as session:
        return sorted(session.scalars(select(AuditLog.action).where(
            AuditLog.action.like("test.%"))))


def _count_commits(app: Flask) -> list[float]:
    """Record the time of every COMMIT of the app's engine (read phases' included)."""
    commits: list[float] = []
    engine = get_db(app).engine
    assert engine is not None
    event.listen(engine, "commit", lambda _conn: commits.append(time.monotonic()))
    return commits


def _queue_behind_first(app: Flask, hold: threading.Event, names: list[str],
                        first: str = "first") -> dict[str, tuple[int, float]]:
    """Send "first", then ``names`` once it holds its turn; release it when all queue.

    Returns each request's status and the time its answer came back.
    """
    answers: dict[str, tuple[int, float]] = {}

    def send(name: str) -> None:
        status = app.test_client().post(f"/_test/group/{name}").status_code
        answers[name] = (status, time.monotonic())

    group = get_db(app).group
    assert group is not None
    threads = [threading.Thread(target=send, args=(first,))]
    threads[0].start()
    _wait_for(lambda: group._turn_taken)
    for name in names:
        threads.append(threading.Thread(target=send, args=(name,)))
        threads[-1].start()
    # Every other request now waits for a turn in the group that "first" opened.
    _wait_for(lambda: group._queued == len(names))
    hold.set()
    for thread in threads:
        thread.join(30)
    return answers


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_requests_that_queue_together_share_one_commit(app: Flask) -> None:
    hold = threading.Event()
    _routes(app, hold)
    commits = _count_commits(app)
    answers = _queue_behind_first(app, hold, ["second", "third", "fourth"])
    assert {name: status for name, (status, _at) in answers.items()} == {
        "first": 200, "second": 200, "third": 200, "fourth": 200}
    # One COMMIT (one sync of the WAL) for the four, and every answer came after it.
    assert len(commits) == 1
    assert all(at > commits[0] for _status, at in answers.values())
    assert _stored(app) == ["test.first", "test.fourth", "test.second", "test.third"]


def test_a_request_alone_commits_at_once(app: Flask) -> None:
    _routes(app, threading.Event())
    commits = _count_commits(app)
    for name in ("second", "third"):
        assert app.test_client().post(f"/_test/group/{name}").status_code == 200
        # Nobody queued behind it: it did not wait for company.
    assert len(commits) == 2
    assert _stored(app) == ["test.second", "test.third"]


def test_a_failed_request_rolls_back_only_its_own_work(app: Flask) -> None:
    hold = threading.Event()
    _routes(app, hold)
    commits = _count_commits(app)
    answers = _queue_behind_first(app, hold, ["refused", "broken", "fourth"])
    assert {name: status for name, (status, _at) in answers.items()} == {
        "first": 200, "refused": 409, "broken": 500, "fourth": 200}
    assert len(commits) == 1
    # The refused and the broken request's rows went with their SAVEPOINTs, nobody else's.
    assert _stored(app) == ["test.first", "test.fourth"]


def test_a_refused_first_request_leaves_the_queued_ones_to_a_new_group(app: Flask) -> None:
    hold = threading.Event()
    _routes(app, hold)
    commits = _count_commits(app)
    answers = _queue_behind_first(app, hold, ["second", "third"], first="first-refused")
    assert {name: status for name, (status, _at) in answers.items()} == {
        "first-refused": 409, "second": 200, "third": 200}
    # The first request's transaction held only its own work and was rolled back; the two
    # that queued behind it shared the next group's COMMIT.
    assert len(commits) == 1
    assert _stored(app) == ["test.second", "test.third"]


def test_a_failed_commit_fails_every_request_of_the_group(app: Flask) -> None:
    hold = threading.Event()
    _routes(app, hold)
    engine = get_db(app).engine
    assert engine is not None
    failed = []

    def fail_once(_conn: Any) -> None:
        if not failed:
            failed.append(True)
            raise OperationalError("COMMIT", None, sqlite3.OperationalError("disk I/O error"))

    event.listen(engine, "commit", fail_once)
    answers = _queue_behind_first(app, hold, ["second", "third"])
    # Not one of them is told its work is stored; each may resend (same idempotency key).
    assert {name: status for name, (status, _at) in answers.items()} == {
        "first": 503, "second": 503, "third": 503}
    assert _stored(app) == []
    # The write queue is free again: the next request commits on its own.
    assert app.test_client().post("/_test/group/again").status_code == 200
    assert _stored(app) == ["test.again"]


def test_a_crash_before_the_commit_answers_nobody(app_config: dict[str, Any],
                                                 tmp_path: Path) -> None:
    """A server process dies at the group's COMMIT: no request was answered, none is stored."""
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from sqlalchemy import event
        from onsite_server import create_app
        from onsite_server.db import get_db
        import test_group_commit as t

        app = create_app(json.loads({json.dumps(app_config)!r}))
        hold = threading.Event()
        t._routes(app, hold)

        def crash(_conn):
            print("commit", flush=True)
            os._exit(17)

        event.listen(get_db(app).engine, "commit", crash)
        answers = t._queue_behind_first(app, hold, ["second", "third"])
        print("answered", answers, flush=True)
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 17, done.stderr
    assert done.stdout.split() == ["commit"]  # died at the COMMIT, before any answer
    path = app_config["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT count(*) FROM audit_log WHERE action LIKE 'test.%'")
        assert rows.fetchone() == (0,)
    # And the database is whole: a new server stores and answers as usual.
    from onsite_server import create_app

    app = create_app(app_config)
    try:
        _routes(app, threading.Event())
        assert app.test_client().post("/_test/group/after").status_code == 200
        with get_db(app).transaction(write=False) as session:
            assert session.scalar(select(func.count()).select_from(AuditLog).where(
                AuditLog.action == "test.after")) == 1
    finally:
        get_db(app).dispose()


def test_many_concurrent_requests_are_all_answered_and_stored(app: Flask) -> None:
    _routes(app, threading.Event())
    answers: list[int] = []

    def send(worker: int) -> None:
        client = app.test_client()
        for i in range(12):
            answers.append(client.post(f"/_test/group/w{worker}-{i}").status_code)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [200] * 72
    assert len(_stored(app)) == 72
    group = get_db(app).group
    assert group is not None and group.members == 72  # every kept request was committed
    assert not group._turn_taken and group._queued == 0  # and the queue is left empty


def test_a_grouped_requests_savepoint_statements_are_sent_as_text(app: Flask) -> None:
    """SQLAlchemy compiles a new statement for each SAVEPOINT and RELEASE: a grouped request
    sends them as plain SQL text instead (the same statements, nothing compiled)."""
    hold = threading.Event()
    _routes(app, hold)
    savepoints: list[tuple[str, bool]] = []
    engine = get_db(app).engine
    assert engine is not None

    def note(_conn: Any, _cursor: Any, sql: str, _params: Any, context: Any, _many: Any
             ) -> None:
        if "SAVEPOINT" in sql:
            savepoints.append((sql.split(" sa_savepoint")[0],
                               getattr(context, "compiled", None) is not None))

    event.listen(engine, "before_cursor_execute", note)
    try:
        answers = _queue_behind_first(app, hold, ["second", "refused"])
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert {name: status for name, (status, _at) in answers.items()} == {
        "first": 200, "second": 200, "refused": 409}
    assert sorted(savepoints) == sorted([
        ("SAVEPOINT", False), ("RELEASE SAVEPOINT", False),
        ("SAVEPOINT", False), ("ROLLBACK TO SAVEPOINT", False)])
    assert _stored(app) == ["test.first", "test.second"]
