"""The sync worker without a server: batching, dead letters, backoff, progress, the thread."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from kiosk.api_client import ApiRefused
from kiosk.backend import Offline, SyncStatus
from kiosk.outbox import Outbox
from kiosk.sync import CatalogCache, SyncWorker


class FakeClient:
    """Answers like the server would; ``down`` makes every call raise Offline."""

    def __init__(self) -> None:
        self.down = False
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.reject: set[str] = set()
        self.later: set[str] = set()
        self.refuse_consent = False
        self.catalog_calls: list[str | None] = []

    def _check(self) -> None:
        if self.down:
            raise Offline("down")

    def submit(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self._check()
        self.batches.append([i["idempotency_key"] for i in items])
        out = []
        for item in items:
            key = item["idempotency_key"]
            if key in self.reject:
                out.append({"key": key, "status": "rejected",
                            "problem": {"detail": "items.0.answers: bad"}})
            elif key in self.later:
                out.append({"key": key, "status": "rejected", "problem": {"errors": [
                    {"field": "items.0", "message": "is beyond this server's limit; send it "
                                                    "again in a later request"}]}})
            else:
                out.append({"key": key, "status": "accepted"})
        return out

    def consent(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if self.refuse_consent:
            raise ApiRefused("member_ref: expired", "member_ref", 422)
        self.singles.append(payload["idempotency_key"])
        return {}

    def crisis_alert(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check()
        self.singles.append(payload["idempotency_key"])
        return {}

    def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check()
        return {"ok": True}

    def catalog(self, etag: str | None) -> tuple[str, dict[str, Any]] | None:
        self._check()
        self.catalog_calls.append(etag)
        if etag == '"v1"':
            return None
        return '"v1"', {"settings": {"timeouts": {"sync_seconds": 45}}}


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    """An empty outbox."""
    return Outbox(tmp_path / "data" / "outbox.sqlite", tmp_path / "keys" / "outbox.key")


def _worker(outbox: Outbox, client: FakeClient, tmp_path: Path, **kw: Any) -> SyncWorker:
    return SyncWorker(outbox, lambda: client,  # type: ignore[arg-type, return-value]
                      catalog=CatalogCache(tmp_path / "data" / "catalog.json"),
                      rng=random.Random(7), **kw)


def _queue(outbox: Outbox, n: int, prefix: str = "k", crisis: bool = False) -> list[str]:
    keys = [f"{prefix}{i:03d}" for i in range(n)]
    for k in keys:
        outbox.put(k, "submission", {"idempotency_key": k}, crisis=crisis)
    return keys


def test_batches_in_order_crisis_first_with_progress(outbox: Outbox, tmp_path: Path) -> None:
    client = FakeClient()
    seen: list[SyncStatus] = []
    worker = _worker(outbox, client, tmp_path, batch_size=3, notify=seen.append)
    normal = _queue(outbox, 5, "n")
    outbox.put("c1", "consent", {"idempotency_key": "c1"})
    crisis = _queue(outbox, 1, "z", crisis=True)
    assert worker.run_once() == 45.0  # the interval comes from the fetched catalog
    assert client.batches == [crisis + normal[:2], normal[2:5]]
    assert client.singles == ["c1"]
    progress = [(s.sent_since_backlog, s.backlog_at_start) for s in seen]
    assert progress[:3] == [(3, 7), (6, 7), (7, 7)]
    final = seen[-1]
    assert final.online and final.outbox_depth == 0 and final.backlog_at_start == 0
    assert CatalogCache(tmp_path / "data" / "catalog.json").etag == '"v1"'  # on disk
    worker.run_once()
    assert client.catalog_calls == [None, '"v1"']  # revalidated with its ETag


def test_a_request_holds_at_most_batch_bytes_of_items(outbox: Outbox, tmp_path: Path) -> None:
    """Long items go in more requests, so none passes the server's body limit; none is split."""
    client = FakeClient()
    worker = _worker(outbox, client, tmp_path, batch_size=10, batch_bytes=250)
    keys = [f"k{i:03d}" for i in range(6)]
    for k in keys:
        # About 100 bytes of JSON each: two fit in 250, a third would not.
        outbox.put(k, "submission", {"idempotency_key": k, "note": "x" * 70})
    outbox.put("big", "submission", {"idempotency_key": "big", "note": "x" * 400})
    worker.run_once()
    assert client.batches == [keys[:2], keys[2:4], keys[4:6], ["big"]]
    assert outbox.depth() == 0


def test_a_backlog_goes_in_requests_of_250_items(outbox: Outbox, tmp_path: Path) -> None:
    """Fewer, larger requests: each costs the server a fixed share on top of its items."""
    client = FakeClient()
    worker = _worker(outbox, client, tmp_path)
    keys = _queue(outbox, 600)
    worker.run_once()
    assert client.batches == [keys[:250], keys[250:500], keys[500:]]


class _WatchedOutbox:
    """Wraps an outbox: ``read_ahead`` is set when another thread than the worker's reads it."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self.read_ahead = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._outbox, name)

    def pending(self, limit: int = 100, **kw: Any) -> list[Any]:
        rows = self._outbox.pending(limit, **kw)
        if threading.current_thread() is not threading.main_thread():
            self.read_ahead.set()
        return rows


def test_the_next_rows_are_read_while_a_request_is_in_flight(outbox: Outbox,
                                                            tmp_path: Path) -> None:
    watched = _WatchedOutbox(outbox)
    client = FakeClient()
    submit = client.submit

    def slow_submit(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The server answers only once the kiosk has read what comes next: with one thing
        # at a time, this request would never be answered.
        assert watched.read_ahead.wait(10)
        watched.read_ahead.clear()
        return submit(items)

    client.submit = slow_submit  # type: ignore[method-assign]
    keys = _queue(outbox, 7)
    worker = _worker(watched, client, tmp_path, batch_size=3)  # type: ignore[arg-type]
    worker.run_once()
    # Still one request at a time, in order, every row sent once and deleted.
    assert client.batches == [keys[:3], keys[3:6], keys[6:]]
    assert outbox.depth() == 0


def test_a_crisis_queued_during_a_drain_goes_in_the_next_request(outbox: Outbox,
                                                               tmp_path: Path) -> None:
    watched = _WatchedOutbox(outbox)
    client = FakeClient()
    submit = client.submit

    def submit_then_crisis(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not client.batches:
            # The next batch was read ahead already; then a member's crisis is queued.
            assert watched.read_ahead.wait(10)
            _queue(outbox, 1, "z", crisis=True)
        return submit(items)

    client.submit = submit_then_crisis  # type: ignore[method-assign]
    keys = _queue(outbox, 6)
    worker = _worker(watched, client, tmp_path, batch_size=3)  # type: ignore[arg-type]
    worker.run_once()
    assert client.batches == [keys[:3], ["z000", *keys[3:5]], keys[5:]]
    assert outbox.depth() == 0


def test_refused_rows_are_set_aside_and_over_limit_rows_wait(outbox: Outbox,
                                                            tmp_path: Path) -> None:
    client = FakeClient()
    keys = _queue(outbox, 4)
    client.reject = {keys[1]}
    client.later = {keys[3]}
    outbox.put("c1", "consent", {"idempotency_key": "c1"})
    client.refuse_consent = True
    worker = _worker(outbox, client, tmp_path)
    worker.run_once()
    assert outbox.dead_count() == 1  # the invalid item, set aside
    # The row over the server's limit waits, and what came after it waits behind it.
    assert [r.key for r in outbox.pending()] == [keys[3], "c1"]
    assert any("refused" in e for e in worker.status().last_errors)
    client.later = set()
    worker.run_once()
    assert outbox.depth() == 0 and outbox.dead_count() == 2  # and the refused consent


def test_offline_backs_off_with_full_jitter_and_keeps_everything(outbox: Outbox,
                                                                  tmp_path: Path) -> None:
    client = FakeClient()
    client.down = True
    keys = _queue(outbox, 3)
    worker = _worker(outbox, client, tmp_path, backoff_base=2.0, backoff_cap=600.0)
    delays = [worker.run_once() for _ in range(12)]
    bounds = [min(600.0, 2.0 * 2 ** n) for n in range(1, 13)]
    assert all(0 <= d <= b for d, b in zip(delays, bounds, strict=True))
    assert max(delays) > 2.0 * 2 ** 3  # it does grow
    status = worker.status()
    assert not status.online and status.outbox_depth == 3
    client.down = False
    worker.run_once()
    assert worker.status().online and client.batches == [keys]


def test_the_thread_drains_on_wake_and_stops(outbox: Outbox, tmp_path: Path) -> None:
    client = FakeClient()
    done = threading.Event()

    def notify(status: SyncStatus) -> None:
        if status.online and status.outbox_depth == 0 and client.batches:
            done.set()

    worker = _worker(outbox, client, tmp_path, interval=3600.0, notify=notify)
    worker.start()
    _queue(outbox, 2)
    worker.wake()
    assert done.wait(10)
    worker.stop()
    assert worker._thread is None


def test_a_kiosk_back_online_sends_within_30_seconds(outbox: Outbox, tmp_path: Path) -> None:
    client = FakeClient()
    client.down = True
    _queue(outbox, 2)
    worker = _worker(outbox, client, tmp_path)  # the kiosk's own defaults
    delays = [worker.run_once() for _ in range(40)]
    assert max(delays) <= 30.0  # the longest wait after the network comes back
    assert max(delays) > 8.0  # it still backs off


def test_a_request_that_gets_through_drains_a_backing_off_worker_at_once(
        outbox: Outbox, tmp_path: Path) -> None:
    client = FakeClient()
    client.down = True
    done = threading.Event()

    def notify(status: SyncStatus) -> None:
        if status.online and status.outbox_depth == 0 and client.batches:
            done.set()

    # A long backoff, so only the wake from a request can explain a drain within the test.
    worker = _worker(outbox, client, tmp_path, interval=3600.0, backoff_base=3600.0,
                     backoff_cap=3600.0, notify=notify)
    _queue(outbox, 2)
    worker.reached()  # online as far as it knows: nothing to do
    assert not worker._wake.is_set()
    worker.start()
    for _ in range(1000):  # until the first cycle has failed: the worker is backing off
        if worker.status().last_errors:
            break
        threading.Event().wait(0.01)
    assert worker.status().last_errors
    client.down = False
    worker.reached()  # e.g. an identify from the screens just got an answer
    assert done.wait(10)
    worker.stop()


# ---------------------------------------------------------------- two requests in flight


class FlyingClient(FakeClient):
    """Records which batches were in flight together; the first two wait for each other.

    ``fail`` names the call (0, 1, ...) that raises Offline, as a server dying mid-drain.
    """

    def __init__(self, rows: dict[str, dict[str, Any]], fail: int | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.fail = fail
        self.calls = 0
        self.active: list[list[str]] = []
        self.together: list[tuple[list[str], list[str]]] = []
        self.accepted: list[str] = []
        self.sent: list[list[str]] = []  # each request's keys, in the order sent
        self.on_meet: Any = None  # run when the first two are in flight, before either answers
        self.meet = threading.Barrier(2, action=self._met, timeout=10)
        self.guard = threading.Lock()

    def _met(self) -> None:
        if self.on_meet is not None:
            self.on_meet()

    def submit(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        batch = [i["idempotency_key"] for i in items]
        with self.guard:
            call, self.calls = self.calls, self.calls + 1
            self.sent.append(batch)
            self.together.extend((batch, other) for other in self.active)
            self.active.append(batch)
        try:
            if call < 2:
                self.meet.wait()  # both in flight at once, or the barrier breaks the test
            else:
                threading.Event().wait(0.002)  # room for the next request to overlap
            if call == self.fail:
                raise Offline("the server went away")
            answers = super().submit(items)
            with self.guard:
                self.accepted.extend(a["key"] for a in answers if a["status"] == "accepted")
            return answers
        finally:
            with self.guard:
                self.active.remove(batch)


def _queue_visits(outbox: Outbox, visits: list[tuple[int, bool]]) -> dict[str, dict[str, Any]]:
    """Queue visits of (items, names a member); return their payloads by key, in order."""
    payloads: dict[str, dict[str, Any]] = {}
    for v, (n, member) in enumerate(visits):
        who = {"member_ref": f"ref-{v}"} if member else {"anonymous": True}
        for i in range(n):
            key = f"v{v:02d}i{i}"
            payloads[key] = {"idempotency_key": key, "session_id": f"s{v:02d}", **who}
            outbox.put(key, "submission", payloads[key])
    return payloads


def test_two_requests_fly_at_once_and_every_row_goes_once(outbox: Outbox,
                                                         tmp_path: Path) -> None:
    rows = _queue_visits(outbox, [(1, False)] * 9)
    client = FlyingClient(rows)
    worker = _worker(outbox, client, tmp_path, batch_size=3)
    worker.run_once()
    assert client.together  # the first two met in flight (else the barrier had broken)
    sent = [k for batch in client.batches for k in batch]
    assert sorted(sent) == sorted(rows) and len(sent) == len(set(sent))
    assert sorted(client.accepted) == sorted(rows) and outbox.depth() == 0
    status = worker.status()
    assert status.online and status.backlog_at_start == 0


def test_requests_in_flight_together_share_no_visit_and_name_members_one_at_a_time(
        outbox: Outbox, tmp_path: Path) -> None:
    visits = [(1, False), (2, True), (3, False), (1, False), (2, True), (1, True),
              (4, False), (1, False), (2, True), (1, False), (3, False), (1, True)] * 3
    rows = _queue_visits(outbox, visits)
    client = FlyingClient(rows)
    worker = _worker(outbox, client, tmp_path, batch_size=4)
    worker.run_once()
    assert outbox.depth() == 0 and sorted(client.accepted) == sorted(rows)
    assert client.together
    for batch, other in client.together:
        assert not {rows[k]["session_id"] for k in batch} & {rows[k]["session_id"]
                                                              for k in other}
        named = [k for k in (*batch, *other) if "member_ref" in rows[k]]
        assert not named or all(k in batch for k in named) or all(k in other for k in named)
    # The rows naming members, and each visit's rows, reached the server in the order
    # written: only one request naming members was ever in flight.
    sent = [k for batch in client.sent for k in batch]
    queued = list(rows)
    assert [k for k in sent if "member_ref" in rows[k]] == \
        [k for k in queued if "member_ref" in rows[k]]
    for session in {p["session_id"] for p in rows.values()}:
        assert [k for k in sent if rows[k]["session_id"] == session] == \
            [k for k in queued if rows[k]["session_id"] == session]


def test_a_crisis_queued_while_two_requests_fly_goes_in_the_next_one(
        outbox: Outbox, tmp_path: Path) -> None:
    rows = _queue_visits(outbox, [(1, False)] * 12)
    client = FlyingClient(rows)
    client.on_meet = lambda: outbox.put("z", "submission", {
        "idempotency_key": "z", "session_id": "sz", "member_ref": "r"}, crisis=True)
    worker = _worker(outbox, client, tmp_path, batch_size=3)
    worker.run_once()
    # Both first requests were in flight when the crisis was queued: it opens the next one.
    assert len(client.sent) == 5 and client.sent[2][0] == "z"
    assert outbox.depth() == 0


@pytest.mark.parametrize("fail", [0, 1])
def test_a_request_failing_beside_another_loses_and_doubles_nothing(
        outbox: Outbox, tmp_path: Path, fail: int) -> None:
    rows = _queue_visits(outbox, [(1, False)] * 6)
    client = FlyingClient(rows, fail=fail)
    worker = _worker(outbox, client, tmp_path, batch_size=3)
    worker.run_once()
    status = worker.status()
    assert not status.online and any("went away" in e for e in status.last_errors)
    # The other request was answered: its rows are gone, the failed one's wait.
    assert len(client.accepted) == 3 and outbox.depth() == 3
    assert not set(client.accepted) & {r.key for r in outbox.pending()}
    assert all(r.attempts == 1 for r in outbox.pending())
    client.fail = None
    worker.run_once()
    assert outbox.depth() == 0
    assert sorted(client.accepted) == sorted(rows)  # each stored once, none lost
