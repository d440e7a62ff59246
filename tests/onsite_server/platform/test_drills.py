"""Fault drills against a real server: kill -9 under load, a full and a read-only database, the
write lock held by another process. Each counts what was sent, acknowledged and found.

The states are made without file modes (CI runs as root, which ignores them): a `?mode=ro`
URL for a read-only database, SQLite's `max_page_count` for a full one, another process's
lock for a held write lock.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.orm import Session

from onsite_server import devserver
from onsite_server.db import get_db
from onsite_server.models import Submission

from ..conftest import LiveServer
from ..helpers import auth, identified_member, live_kiosk_and_members

pytestmark = [pytest.mark.slow, pytest.mark.drill]

ACKED = ("accepted", "replayed")


def _env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    import os

    return {**os.environ, "ONSITE_DATABASE_URL": database_url,
            "ONSITE_INSTANCE_PATH": str(tmp_path / "instance"),
            "ONSITE_SECRET_KEY": "drill-secret", "ONSITE_IDENTIFY_MIN_SECONDS": "0",
            "ONSITE_HEALTH_CHECK_SECONDS": "0", **extra}


def _item(ref: str | None) -> dict[str, Any]:
    answers = {str(i): i % 3 for i in range(1, 9)} | {"9": 0}
    item: dict[str, Any] = {
        "idempotency_key": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
        "instrument_id": "phq9", "instrument_version": "1.0.0", "answers": answers,
        "taken_at": datetime.now(UTC).isoformat()}
    if ref is None:
        item["anonymous"] = True
    else:
        item["member_ref"] = ref
    return item


def _stored_keys(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(Submission.idempotency_key)))
    finally:
        engine.dispose()


class Load:
    """Kiosk threads sending small batches until stopped; records what was acknowledged."""

    def __init__(self, url: str, token: str, refs: list[str], threads: int = 6) -> None:
        self.url = url
        self.token = token
        self.refs = refs
        self.sent: dict[str, dict[str, Any]] = {}
        self.acked: set[str] = set()
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                         for n in range(threads)]

    def _run(self, n: int) -> None:
        http = requests.Session()
        http.headers.update(auth(self.token))
        i = 0
        while not self.stop.is_set():
            i += 1
            batch = [_item(self.refs[(n + i + k) % len(self.refs)] if k % 2 == 0 else None)
                     for k in range(1 + i % 3)]
            with self._lock:
                self.sent.update({item["idempotency_key"]: item for item in batch})
            try:
                resp = http.post(self.url + "/api/v1/submissions", json={"items": batch},
                                 timeout=30)
            except requests.RequestException:
                time.sleep(0.05)  # the server is gone: these items were not acknowledged
                continue
            with self._lock:
                self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
                if resp.status_code == 200:
                    for item, result in zip(batch, resp.json()["results"], strict=True):
                        if result["status"] in ACKED:
                            self.acked.add(item["idempotency_key"])

    def start(self) -> None:
        """Start the kiosk threads."""
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        """Stop the kiosk threads and wait for them."""
        self.stop.set()
        for thread in self._threads:
            thread.join(60)


def _replay(url: str, token: str, items: list[dict[str, Any]]) -> dict[str, int]:
    """Send every item again, in batches; return how many got each status."""
    counts: dict[str, int] = {}
    for start in range(0, len(items), 50):
        batch = items[start:start + 50]
        resp = requests.post(url + "/api/v1/submissions", json={"items": batch},
                             headers=auth(token), timeout=60)
        assert resp.status_code == 200, resp.text
        for result in resp.json()["results"]:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
    return counts


def test_kill_9_under_load_loses_nothing_acknowledged_and_duplicates_nothing(
        database_url: str, tmp_path: Path) -> None:
    env = _env(database_url, tmp_path)
    proc, url = devserver.start_server(env, tmp_path / "server.log")
    try:
        live = LiveServer(url, env, tmp_path / "instance", tmp_path / "server.log")
        token, refs = live_kiosk_and_members(live, database_url, 6)
        load = Load(url, token, refs)
        load.start()
        deadline = time.monotonic() + 60
        while len(load.acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        devserver.kill_server(proc)  # master and workers, mid-load
        time.sleep(0.3)  # let requests in flight fail against the dead socket
        load.finish()
    finally:
        devserver.kill_server(proc)
    assert len(load.acked) >= 150, load.statuses
    found = set(_stored_keys(database_url))
    lost = load.acked - found
    assert not lost, f"{len(lost)} acknowledged items lost"

    proc, url = devserver.start_server(env, tmp_path / "server.log")
    try:
        replayed = _replay(url, token, list(load.sent.values()))
    finally:
        devserver.stop_server(proc)
    keys = _stored_keys(database_url)
    assert len(keys) == len(set(keys)), "an item was stored twice"
    assert set(keys) == set(load.sent), "a replayed item was not stored"
    assert set(replayed) <= set(ACKED), replayed
    assert replayed.get("replayed", 0) >= len(found)
    assert 500 not in load.statuses
    print(f"\nDRILL kill-9 [{database_url.split(':')[0]}]: sent={len(load.sent)} "
          f"acknowledged={len(load.acked)} found_after_restart={len(found)} "
          f"after_replay={len(keys)} replay={replayed}")


@pytest.fixture
def sqlite_url(database_url: str) -> str:
    """The SQLite URL under test (these drills make SQLite states)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("a SQLite state (read-only file, max_page_count, the write queue)")
    return database_url


def test_read_only_database_answers_503_and_health_says_so(sqlite_url: str,
                                                           tmp_path: Path) -> None:
    env = _env(sqlite_url, tmp_path)
    proc, url = devserver.start_server(env, tmp_path / "server.log")
    try:
        live = LiveServer(url, env, tmp_path / "instance", tmp_path / "server.log")
        token, refs = live_kiosk_and_members(live, sqlite_url, 2)
        before = [_item(refs[0]), _item(None), _item(refs[1])]
        resp = requests.post(url + "/api/v1/submissions", json={"items": before},
                             headers=auth(token), timeout=30)
        assert [r["status"] for r in resp.json()["results"]] == ["accepted"] * 3
    finally:
        devserver.stop_server(proc)

    path = sqlite_url.removeprefix("sqlite:///")
    read_only = _env(f"sqlite:///file:{path}?mode=ro&uri=true", tmp_path)
    proc, url = devserver.start_server(read_only, tmp_path / "server.log", migrate=False,
                                       healthy=False)
    try:
        health = requests.get(url + "/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["database"] == "read-only"
        during = [_item(refs[0]), _item(None)]
        for _ in range(3):
            resp = requests.post(url + "/api/v1/submissions", json={"items": during},
                                 headers=auth(token), timeout=30)
            assert resp.status_code == 503, resp.text
            assert resp.headers["Retry-After"]
            assert resp.headers["Content-Type"] == "application/problem+json"
        heartbeat = requests.post(url + "/api/v1/heartbeat", headers=auth(token), timeout=30,
                                  json={"app_version": "1", "outbox_depth": 2,
                                        "free_disk_bytes": 1})
        assert heartbeat.status_code == 503
        # Reads still work: the catalog (whose record of what it offered is a separate,
        # optional write) is served, and the server itself keeps answering.
        catalog = requests.get(url + "/api/v1/catalog", headers=auth(token), timeout=30)
        assert catalog.status_code == 200, catalog.text
        assert requests.get(url + "/api/v1/openapi.json", timeout=30).status_code == 200
    finally:
        devserver.stop_server(proc)
    assert "does not take writes (read-only)" in (tmp_path / "server.log").read_text()

    proc, url = devserver.start_server(env, tmp_path / "server.log")
    try:
        stored = set(_stored_keys(sqlite_url))
        assert {i["idempotency_key"] for i in before} <= stored
        assert not {i["idempotency_key"] for i in during} & stored
        resp = requests.post(url + "/api/v1/submissions", json={"items": during},
                             headers=auth(token), timeout=30)
        assert [r["status"] for r in resp.json()["results"]] == ["accepted"] * 2
    finally:
        devserver.stop_server(proc)
    print(f"\nDRILL read-only: acknowledged_before={len(before)} found={len(stored)} "
          f"refused_with_503={len(during)} accepted_after={len(during)}")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Health checks afresh on every call."""
    app_config["HEALTH_CHECK_SECONDS"] = 0
    return app_config


def _limit_pages(app: Flask, pages: int) -> None:
    engine = get_db(app).engine
    assert engine is not None

    def limit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", limit)
    engine.dispose()


def test_full_database_answers_503_and_loses_nothing(
        sqlite_url: str, app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    _member, ref = identified_member(app, site, kiosk)
    with get_db(app).transaction() as session:
        pages = int(session.execute(text("PRAGMA page_count")).scalar_one())
    _limit_pages(app, pages + 12)  # a few submissions' worth of room, then full
    acked: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    statuses: set[int] = set()
    for n in range(400):
        item = _item(ref if n % 2 else None)
        item["answers"] = item["answers"] | {"1": n % 4}
        resp = client.post("/api/v1/submissions", json={"items": [item]},
                           headers=auth(kiosk["token"]))
        statuses.add(resp.status_code)
        if resp.status_code == 200 and resp.get_json()["results"][0]["status"] == "accepted":
            acked.append(item)
        else:
            assert resp.status_code == 503, resp.get_data(as_text=True)
            assert resp.headers["Retry-After"]
            refused.append(item)
            if len(refused) >= 3:
                break
    assert acked and len(refused) == 3, statuses
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["database"] == "full"
    stored = set(_stored_keys(sqlite_url))
    assert {i["idempotency_key"] for i in acked} <= stored
    assert not {i["idempotency_key"] for i in refused} & stored

    _limit_pages(app, 1 << 30)  # room again (the disk was cleared)
    assert client.get("/healthz").status_code == 200
    resp = client.post("/api/v1/submissions", json={"items": refused + acked},
                       headers=auth(kiosk["token"]))
    statuses_after = [r["status"] for r in resp.get_json()["results"]]
    assert statuses_after == ["accepted"] * len(refused) + ["replayed"] * len(acked)
    keys = _stored_keys(sqlite_url)
    assert len(keys) == len(set(keys)) == len(acked) + len(refused)
    print(f"\nDRILL full: acknowledged={len(acked)} found={len(stored)} "
          f"refused_with_503={len(refused)} stored_after_room={len(keys)}")


@pytest.fixture
def locked_server(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str, str]]:
    """A live server whose writers wait at most 1 s; yields (url, token, ref, db path)."""
    env = _env(sqlite_url, tmp_path, ONSITE_SQLITE_BUSY_TIMEOUT_MS="1000")
    proc, url = devserver.start_server(env, tmp_path / "server.log")
    try:
        live = LiveServer(url, env, tmp_path / "instance", tmp_path / "server.log")
        token, refs = live_kiosk_and_members(live, sqlite_url, 1)
        yield url, token, refs[0], sqlite_url.removeprefix("sqlite:///")
    finally:
        devserver.stop_server(proc)


HOLDERS = {
    # Another process in the server's write queue (a long import, a stuck command).
    "queue": ("import fcntl\n"
              "f = open({path!r} + '.writelock', 'a+b')\n"
              "fcntl.flock(f.fileno(), fcntl.LOCK_EX)\n"),
    # SQLite's own write lock taken past the queue (the sqlite3 shell, another program).
    "sqlite": ("import sqlite3\n"
               "c = sqlite3.connect({path!r}, isolation_level=None)\n"
               "c.execute('BEGIN IMMEDIATE')\n"),
}


@pytest.mark.parametrize("holder_kind", sorted(HOLDERS))
def test_held_write_lock_gives_bounded_503s(locked_server: tuple[str, str, str, str],
                                            holder_kind: str) -> None:
    url, token, ref, path = locked_server
    script = HOLDERS[holder_kind].format(path=path) + \
        "import sys\nprint('held', flush=True)\nsys.stdin.read()\n"
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    waits: list[float] = []
    refused: list[dict[str, Any]] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for _ in range(3):
            item = _item(ref)
            started = time.monotonic()
            resp = requests.post(url + "/api/v1/submissions", json={"items": [item]},
                                 headers=auth(token), timeout=60)
            waits.append(time.monotonic() - started)
            assert resp.status_code == 503, resp.text
            assert resp.headers["Retry-After"]
            refused.append(item)
        started = time.monotonic()
        heartbeat = requests.post(url + "/api/v1/heartbeat", headers=auth(token), timeout=60,
                                  json={"app_version": "1", "outbox_depth": 3,
                                        "free_disk_bytes": 1})
        waits.append(time.monotonic() - started)
        assert heartbeat.status_code == 503 and heartbeat.headers["Retry-After"]
        health = requests.get(url + "/healthz", timeout=60)
        assert health.status_code == 503 and health.json()["database"] == "busy"
    finally:
        holder.kill()
        holder.communicate()
    # Bounded, not hung: the bound is 1 s; allow twice that and a loaded machine's slack.
    assert max(waits) < 2 * 1.0 + 1.5, waits
    resp = requests.post(url + "/api/v1/submissions", json={"items": refused},
                         headers=auth(token), timeout=60)
    assert [r["status"] for r in resp.json()["results"]] == ["accepted"] * len(refused)
    assert requests.get(url + "/healthz", timeout=60).status_code == 200
    print(f"\nDRILL held lock [{holder_kind}]: refused_with_503={len(waits)} "
          f"longest_wait={max(waits):.2f}s accepted_after={len(refused)}")


def test_sqlite_holder_script_takes_the_lock(tmp_path: Path) -> None:
    # The drill above is only meaningful if its holder really blocks writers.
    path = str(tmp_path / "x.sqlite")
    sqlite3.connect(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")
    holder.close()
    other.close()
