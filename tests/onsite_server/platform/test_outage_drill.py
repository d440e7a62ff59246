"""The outage drill: two continuous sync workers (`onsite-server sync`) forward to a central
emulator that is slow, then away (refused), erroring (500), down (503), slow beyond the
client's timeout (it commits, the reply is lost), then back. Each way central fails lasts
until both workers have had a row fail that way (read from their logs), not a fixed time.

Checked: both workers met each way central fails; after central is back, every crisis reaches
central before any other row; while it was away, central took nothing but crisis rows; central
ends with exactly one resource per identifier and nothing missing; while central was slow but
answering, no row was sent by two workers (the lease outlasts a slow request). Measured, and
printed (docs/BENCHMARKS.md): when the last crisis arrived after central came back, and the
rows per second of the backlog after recovery beside the rate of the same workers before it.

Order is judged by when central received each request, not by when it committed it. Central
comes back while a request sent in its slow phase is still inside it (the worker gave up on
it; central commits it seconds later): that request was sent while only crisis rows were
tried, and it lands among the rows sent after recovery. Judged by commit time it looked like
a crisis sent late (a whole-suite run saw 46 routine rows "before" such a request).
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.serving import BaseWSGIServer, make_server

import central_emulator
from onsite_server import devserver
from onsite_server.db import get_db
from onsite_server.devserver import free_port
from onsite_server.models import OutboxMessage, Referral

from ...live import POLL
from ..helpers import LONG_TIMEOUT, auth, identified_member, new_key, submission_item

pytestmark = [pytest.mark.slow, pytest.mark.drill, LONG_TIMEOUT]

PHQ9_MODERATE = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "8": 2, "9": 0}
PHQ9_CRISIS = {str(i): 0 for i in range(1, 9)} | {"9": 1}
READ_TIMEOUT = 4.0  # the workers' CENTRAL_READ_TIMEOUT_SECONDS


class Recorder:
    """WSGI middleware: which referrals each transaction central committed carried, when
    central received it and when it answered."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.Lock()
        # (received, answered, [(referral public id, ServiceRequest priority)]) per committed
        # POST, in monotonic time.
        self.arrivals: list[tuple[float, float, list[tuple[str, str]]]] = []
        self.in_flight = 0  # transactions received and not answered yet
        self.last_received = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != "/fhir":
            return self.app(environ, start_response)
        received = time.monotonic()
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        statuses: list[str] = []

        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        with self.lock:
            self.in_flight += 1
            self.last_received = received
        try:
            result = self.app(environ, recording)
        finally:
            with self.lock:
                self.in_flight -= 1
        if statuses and statuses[0].startswith("200"):
            requests = [(str(e["resource"]["identifier"][0]["value"]),
                         str(e["resource"].get("priority")))
                        for e in json.loads(body).get("entry", [])
                        if e.get("resource", {}).get("resourceType") == "ServiceRequest"]
            with self.lock:
                self.arrivals.append((received, time.monotonic(), requests))
        return result


class Central:
    """The emulator served in this process on a fixed port, stopped (refused) and restarted."""

    def __init__(self) -> None:
        self.app = central_emulator.create_app({"DEMO_DIRECTORY": False})
        self.recorder = Recorder(self.app)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: BaseWSGIServer | None = None
        self.thread: threading.Thread | None = None
        self.connections: list[socket.socket] = []  # accepted, and maybe kept alive

    def start(self) -> None:
        """Listen again (the store is kept, as a restarted central keeps its data)."""
        self.server = make_server("127.0.0.1", self.port, self.recorder, threaded=True)
        accept = self.server.get_request

        def accepted() -> tuple[socket.socket, Any]:
            conn, address = accept()
            self.connections.append(conn)
            return conn, address

        self.server.get_request = accepted  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": POLL}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Close the port and every connection: refused, and no answer on a kept-alive one.

        The server's threads go on serving the connections a worker keeps alive after the
        port is closed; left open, one carried a crisis to a central that was away.
        """
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already
        self.connections.clear()

    def mode(self, mode: str, delay: float = 0.0) -> None:
        """Tell it how to fail (normal, down = 503, error = 500, slow)."""
        resp = self.app.test_client().post("/_control",
                                           json={"mode": mode, "delay_seconds": delay})
        assert resp.status_code == 200, resp.get_data(as_text=True)

    def resources(self, kind: str) -> list[dict[str, Any]]:
        """Everything of one type that central holds (every page of the search)."""
        found: list[dict[str, Any]] = []
        url: str | None = f"/fhir/{kind}"
        while url:
            resp = self.app.test_client().get(url)
            assert resp.status_code == 200
            page = resp.get_json()
            found += [e["resource"] for e in page.get("entry", [])]
            nexts = [link["url"] for link in page.get("link", [])
                     if link.get("relation") == "next"]
            url = urlsplit(nexts[0])._replace(scheme="", netloc="").geturl() if nexts else None
        return found


@pytest.fixture
def central() -> Iterator[Central]:
    """A running emulator, stopped at the end."""
    emu = Central()
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def _queue(app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
           answers: dict[str, int]) -> str:
    """One member's PHQ-9 and consent, as a kiosk sends them; return the referral id."""
    _, ref = identified_member(app, site, kiosk)
    resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                       json={"items": [submission_item("phq9", answers, member_ref=ref)]})
    assert resp.status_code == 200, resp.get_json()
    referral = resp.get_json()["results"][0]["result"]["referral"]["referral_id"]
    resp = client.post("/api/v1/referrals/consent", headers=auth(kiosk["token"]), json={
        "idempotency_key": new_key(), "member_ref": ref, "consent": True,
        "contact_method": "phone", "contact_time": "morning", "phone": "+1 555 0100"})
    assert resp.status_code == 200, resp.get_json()
    return str(referral)


def _outbox(app: Flask) -> Counter[str]:
    with get_db(app).transaction(write=False) as session:
        return Counter(dict(session.execute(select(OutboxMessage.status, func.count())
                                            .group_by(OutboxMessage.status)).tuples().all()))


def _wait_all_sent(app: Flask, workers: list[devserver.Process], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        counts = _outbox(app)
        if counts and set(counts) == {"sent"}:
            return
        assert all(w.poll() is None for w in workers), "a sync worker died"
        time.sleep(0.2)
    raise AssertionError(f"not everything reached central: {_outbox(app)}")


def _failures(logs: list[Path], failure: str) -> list[int]:
    """How many times each worker has logged a row that central failed this way ("500",
    "503", or "no answer": refused, or no reply within the timeout)."""
    needle = f": CentralError ({failure})"
    return [log.read_text(errors="replace").count(needle) for log in logs]


def _met_by_both(logs: list[Path], failure: str, before: list[int],
                 workers: list[devserver.Process], limit: float = 60) -> None:
    """Wait until each worker has had a row fail this way since ``before`` was counted.

    Each of central's failure modes lasts until both workers have met it with a row (a
    crisis: nothing else is tried while central is away), instead of a fixed time that a
    loaded machine may not fit a worker's cycle into.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(now > then for now, then in zip(_failures(logs, failure), before, strict=True)):
            return
        assert all(w.poll() is None for w in workers), "a sync worker died"
        time.sleep(0.1)
    raise AssertionError(f"a worker did not meet central's {failure!r} within {limit} s: "
                         f"{_failures(logs, failure)} since {before}")


def _rate(times: list[float]) -> float:
    """Rows per second from the first to the last arrival."""
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] \
        else float("nan")


def _others_before_last_crisis(
        arrivals: list[tuple[float, float, list[tuple[str, str]]]]) -> int:
    """Count the transactions without a crisis that come before the last one with a crisis."""
    kinds = [any(p == "stat" for _, p in reqs) for _, _, reqs in arrivals]
    last = max((i for i, crisis in enumerate(kinds) if crisis), default=-1)
    return kinds[:last].count(False) if last >= 0 else 0


def _identifiers(resource: dict[str, Any]) -> list[str]:
    idents = resource.get("identifier", [])
    idents = [idents] if isinstance(idents, dict) else idents
    return [f"{i.get('system')}|{i.get('value')}" for i in idents]


def test_outage_drill_crisis_first_nothing_lost_nothing_doubled(
        app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
        database_url: str, app_config: dict[str, Any], central: Central, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    import os

    env = {**os.environ, "ONSITE_DATABASE_URL": database_url,
           "ONSITE_INSTANCE_PATH": str(app_config["INSTANCE_PATH"]),
           "ONSITE_SECRET_KEY": str(app_config["SECRET_KEY"]),
           "ONSITE_CENTRAL_URL": f"{central.url}/fhir",
           "ONSITE_CENTRAL_ALLOW_INSECURE_HTTP": "true",  # the local emulator
           "ONSITE_CENTRAL_CONNECT_TIMEOUT_SECONDS": "2",
           "ONSITE_CENTRAL_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
           "ONSITE_SYNC_BATCH": "10", "ONSITE_SITE_SLUG": site.slug}
    # Normal: a backlog queued before the workers start, drained at the workers' own pace.
    warm = [_queue(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(60)]
    paths = [tmp_path / f"worker{n}.log" for n in range(2)]
    logs = [path.open("w") for path in paths]
    # A cycle at least every second: each failure mode below lasts until both workers met it.
    workers = [devserver.spawn(["sync", "--interval", "1"], env, stdout=log, stderr=log)
               for log in logs]
    arrivals = central.recorder.arrivals
    try:
        _wait_all_sent(app, workers, 120)
        # Slow but answering (each request 1 s, well within the timeout): batches outlast
        # a fixed lease, so leases must be renewed, not taken over.
        central.mode("slow", 1.0)
        slow = [_queue(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(20)]
        _wait_all_sent(app, workers, 180)
        central.mode("normal")
        before = [t for _, t, reqs in arrivals if any(r in warm for r, _ in reqs)]

        # The outage: refused, 500, 503, then slow beyond the timeout (it commits; the reply
        # is lost). Kiosks keep queueing: crisis and routine referrals, interleaved.
        unanswered = _failures(paths, "no answer")
        central.stop()
        outage = time.monotonic()
        crisis: list[str] = []
        routine: list[str] = []
        for n in range(180):
            if n % 6 == 0:
                crisis.append(_queue(app, client, site, kiosk, PHQ9_CRISIS))
            else:
                routine.append(_queue(app, client, site, kiosk, PHQ9_MODERATE))
        _met_by_both(paths, "no answer", unanswered, workers)  # refused
        # Each mode is set before central listens again or leaves the one before it.
        for failure, mode in (("500", "error"), ("503", "down")):
            failed = _failures(paths, failure)
            central.mode(mode)
            if central.server is None:
                central.start()
            _met_by_both(paths, failure, failed, workers)
        unanswered = _failures(paths, "no answer")
        central.mode("slow", READ_TIMEOUT + 2)
        _met_by_both(paths, "no answer", unanswered, workers)  # no reply within the timeout
        assert _outbox(app)["sent"] == len(warm) + len(slow)  # nothing of it recorded
        # Come back just after central received a request (the worker gives up on it at its
        # timeout): central commits it seconds after recovery, among the rows sent then.
        waiting = time.monotonic()
        deadline = waiting + 30  # a worker's crisis backoff is capped at 30 s
        while central.recorder.last_received < waiting and time.monotonic() < deadline:
            time.sleep(0.05)
        in_flight = central.recorder.in_flight
        central.mode("normal")
        recovered = time.monotonic()
        _wait_all_sent(app, workers, 240)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        for log in logs:
            log.close()

    # In the order central received them: what the workers sent, and when.
    after = sorted((a for a in arrivals if a[1] >= recovered), key=lambda a: a[0])
    crisis_times = [t for r, t, reqs in after
                    if r >= recovered and any(p == "stat" for _, p in reqs)]
    kinds = ["crisis" if any(p == "stat" for _, p in reqs) else "other" for _, _, reqs in after]
    drained = [t for _, t, reqs in after if any(r in routine for r, _ in reqs)]
    last_crisis = max((i for i, k in enumerate(kinds) if k == "crisis"), default=-1)
    figures = {
        "backend": request.node.callspec.params.get("database_url", "sqlite"),
        "rows_after_outage": len(crisis) + len(routine),
        "in_flight_at_recovery": in_flight,
        "landed_after_recovery": sum(1 for r, t, _ in arrivals if r < recovered <= t),
        "others_before_last_crisis": kinds[:last_crisis].count("other"),
        # The same count in the order central committed them, as the drill once judged it.
        "others_before_last_crisis_by_commit": _others_before_last_crisis(
            sorted((a for a in arrivals if a[1] >= recovered), key=lambda a: a[1])),
        "last_crisis_after_recovery_s": round(max(crisis_times, default=recovered)
                                              - recovered, 2),
        "all_sent_after_recovery_s": round(max(drained, default=recovered) - recovered, 2),
        "drain_rows_per_s": round(_rate(drained), 1),
        "before_rows_per_s": round(_rate(before), 1),
    }
    print("outage drill:", json.dumps(figures))  # docs/BENCHMARKS.md

    # Crisis first: after recovery, every crisis row reached central before any other row,
    # and while central was away it took nothing else.
    crisis_seen = {r for _, _, reqs in after for r, p in reqs if p == "stat"}
    assert crisis_seen == set(crisis)
    assert "other" in kinds and "other" not in kinds[:last_crisis], kinds
    during = [reqs for r, _, reqs in arrivals if outage <= r < recovered]
    assert all(reqs and all(p == "stat" for _, p in reqs) for reqs in during), during
    # Nothing missing, exactly one resource per identifier.
    with get_db(app).transaction(write=False) as session:
        referrals = {r.public_id: r.version for r in session.scalars(select(Referral))}
    assert set(referrals) == set(warm) | set(slow) | set(crisis) | set(routine)
    for kind in ("Patient", "ServiceRequest", "Task", "QuestionnaireResponse"):
        held = central.resources(kind)
        idents = [i for r in held for i in _identifiers(r)]
        assert len(idents) == len(set(idents)), f"{kind} duplicated"
    requests_held = [_identifiers(r)[0].split("|", 1)[1]
                     for r in central.resources("ServiceRequest")]
    assert sorted(requests_held) == sorted(referrals)
    assert len(central.resources("Task")) == len(referrals)
    assert len(central.resources("Patient")) == len(referrals)  # one member each
    # While central was slow but answering, no row went twice (no lease was taken over): a
    # referral reached central at most once per version.
    sends = Counter(r for _, _, reqs in arrivals for r, _ in reqs if r in slow)
    assert all(sends[r] <= referrals[r] for r in slow), sends

