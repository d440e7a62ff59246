"""End to end: kiosk requests over HTTP to a live onsite server, forwarded by two sync worker
processes (`onsite-server sync --once`) to a live `central-emulator` that is first not running,
then down (503), failing (500), dropping its replies after committing, slow, and back to normal.

Central ends with exactly one of each resource, each forwarded fact is there, and nothing is
left in the outbox: nothing lost, nothing duplicated. A consent withdrawn at the kiosk after
the referral reached central revokes its ServiceRequest there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from onsite_server import devserver
from onsite_server.devserver import free_port
from onsite_server.models import Booking, Kiosk, OutboxMessage, Referral, Submission

from ..conftest import LiveServer
from ..helpers import (
    LONG_TIMEOUT,
    auth,
    gen_event,
    live_kiosk_and_members,
    new_key,
    submission_item,
)

pytestmark = [pytest.mark.slow, LONG_TIMEOUT]

PHQ9_MODERATE = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "8": 2, "9": 0}
PHQ9_ITEM9 = {str(i): 1 for i in range(1, 9)} | {"9": 2}
GAD7_MODERATE = {str(i): 2 for i in range(1, 8)}
KINDS = ("Patient", "QuestionnaireResponse", "Observation", "ServiceRequest", "Task",
         "Appointment", "Communication")


class Emulator:
    """The `central-emulator` console script in its own process, stopped and started at will."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "central.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until its CapabilityStatement answers."""
        exe = Path(sys.executable).with_name("central-emulator")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([str(exe), "--host", "127.0.0.1", "--port",
                                          str(self.port)], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/fhir/metadata", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"the emulator did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """Stop it (the port stays closed: connection refused)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def mode(self, mode: str, delay: float = 0) -> None:
        """Tell it how to fail."""
        resp = requests.post(f"{self.url}/_control", timeout=10,
                             json={"mode": mode, "delay_seconds": delay})
        assert resp.status_code == 200, resp.text

    def resources(self, kind: str) -> list[dict[str, Any]]:
        """Everything of one type that central holds."""
        resp = requests.get(f"{self.url}/fhir/{kind}", timeout=30)
        assert resp.status_code == 200, resp.text
        return [e["resource"] for e in resp.json().get("entry", [])]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """An emulator that the test starts when it wants central up."""
    emu = Emulator(tmp_path)
    try:
        yield emu
    finally:
        emu.stop()


@contextmanager
def _db(url: str) -> Iterator[Session]:
    engine = create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _two_workers(live: LiveServer, central: str) -> list[dict[str, Any]]:
    """Run two `onsite-server sync --once` processes at the same time; return their reports."""
    env = {**live.env, "ONSITE_CENTRAL_URL": f"{central}/fhir",
           "ONSITE_CENTRAL_ALLOW_INSECURE_HTTP": "true",  # the local emulator
           "ONSITE_SYNC_BACKOFF_BASE_SECONDS": "0", "ONSITE_SITE_SLUG": "live",
           "ONSITE_SYNC_CRISIS_BACKOFF_BASE_SECONDS": "0",
           "ONSITE_SYNC_BATCH": "2"}
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda _: devserver.run(env, "sync", "--once"), range(2)))
    for each in done:
        assert each.returncode == 0, each.stderr[-3000:]
    return [json.loads(each.stdout.strip().splitlines()[-1]) for each in done]


def _outbox(url: str) -> Counter[str]:
    with _db(url) as session:
        return Counter(dict(session.execute(select(OutboxMessage.status, func.count())
                                            .group_by(OutboxMessage.status)).tuples().all()))


def _identifiers(resource: dict[str, Any]) -> list[str]:
    idents = resource.get("identifier", [])
    idents = [idents] if isinstance(idents, dict) else idents
    return [f"{i.get('system')}|{i.get('value')}" for i in idents]


def test_kiosk_to_central_through_every_failure(live_server: LiveServer, database_url: str,
                                                emulator: Emulator) -> None:
    token, refs = live_kiosk_and_members(live_server, database_url, 3)
    headers = auth(token)
    with _db(database_url) as session:
        kiosk = session.scalars(select(Kiosk)).one()
        event = gen_event(session, kiosk.site, capacity=1,
                          start=datetime.now(UTC).replace(microsecond=0) + timedelta(days=2))
        slot_id = event.slots[0].public_id

    def post(path: str, body: dict[str, Any], expect: int = 200) -> Any:
        resp = requests.post(f"{live_server.url}/api/v1{path}", json=body, headers=headers,
                             timeout=30)
        assert resp.status_code == expect, resp.text
        return resp.json()

    a, b, c = refs
    post("/submissions", {"items": [
        submission_item("phq9", PHQ9_MODERATE, member_ref=a),
        submission_item("blood_pressure", {"systolic": 150, "diastolic": 95}, member_ref=a),
        submission_item("phq9", PHQ9_ITEM9, member_ref=b),
        submission_item("gad7", GAD7_MODERATE, member_ref=c),
    ]})
    # All three agree to be contacted (without consent nothing would go: docs/privacy.md).
    for ref in refs:
        post("/referrals/consent", {"idempotency_key": new_key(), "member_ref": ref,
                                    "consent": True, "contact_method": "phone",
                                    "contact_time": "morning", "phone": "+1 555 0100"})
    seat = post("/bookings", {"idempotency_key": new_key(), "member_ref": a,
                              "slot_id": slot_id}, 201)
    waiting = post("/bookings", {"idempotency_key": new_key(), "member_ref": c,
                                 "slot_id": slot_id}, 201)
    assert waiting["status"] == "waitlisted"
    post(f"/bookings/{seat['booking_id']}/cancel", {"idempotency_key": new_key(),
                                                     "member_ref": a})

    # Central is not running at all: every row waits, nothing is lost.
    reports = _two_workers(live_server, emulator.url)
    assert sum(r["sent"] for r in reports) == 0 and sum(r["retried"] for r in reports) > 0
    queued = sum(_outbox(database_url).values())
    assert _outbox(database_url)["pending"] == queued > 0

    emulator.start()
    directory = requests.get(f"{emulator.url}/_state", timeout=10).json()["counts"]
    for mode in ("down", "error"):
        emulator.mode(mode)
        reports = _two_workers(live_server, emulator.url)
        assert sum(r["sent"] for r in reports) == 0, (mode, reports)
        assert requests.get(f"{emulator.url}/_state", timeout=10).json()["counts"] == directory
    # Central commits every bundle and loses every reply: to the workers that is no answer,
    # so they try the crisis (first, while it waits on central nothing else goes) and stop.
    emulator.mode("drop_after_commit")
    reports = _two_workers(live_server, emulator.url)
    assert sum(r["sent"] for r in reports) == 0
    assert sum(r["retried"] for r in reports) >= 1
    assert all(r["central_unavailable"] for r in reports if r["retried"])
    committed = requests.get(f"{emulator.url}/_state", timeout=10).json()["counts"]
    assert committed.get("ServiceRequest", 0) == 1  # the crisis: central has it, we don't know
    # Slow, with both workers racing for the rows: each row goes once, the resends change nothing.
    emulator.mode("slow", 0.3)
    reports = _two_workers(live_server, emulator.url)
    assert sum(r["sent"] for r in reports) == queued and sum(r["dead"] for r in reports) == 0
    after = requests.get(f"{emulator.url}/_state", timeout=10).json()["counts"]
    assert after["ServiceRequest"] == 3

    # Back to normal: a consent withdrawn at the kiosk revokes the referral at central.
    emulator.mode("normal")
    post("/referrals/consent", {"idempotency_key": new_key(), "member_ref": a,
                                "consent": False})
    _two_workers(live_server, emulator.url)
    assert _outbox(database_url) == Counter({"sent": sum(_outbox(database_url).values())})

    held = {kind: emulator.resources(kind) for kind in KINDS}
    for kind, resources in held.items():
        idents = [i for r in resources for i in _identifiers(r)]
        # No identifier on two resources (a Patient carries two of its own: the member id and
        # the public id).
        assert len(idents) == len(set(idents)), f"{kind} duplicated"
        assert all(_identifiers(r) for r in resources)
    with _db(database_url) as session:
        referrals = {r.public_id: r for r in session.scalars(select(Referral))}
        submissions = list(session.scalars(select(Submission.idempotency_key)))
        bookings = {row.public_id: row.status for row in session.scalars(select(Booking))}
        messages = list(session.scalars(select(OutboxMessage.key).where(
            OutboxMessage.kind == "message")))
    assert len(held["Patient"]) == 3
    assert sorted(r["identifier"]["value"] for r in held["QuestionnaireResponse"]) == sorted(
        submissions)
    assert sorted(_identifiers(r)[0].split("|")[1] for r in held["ServiceRequest"]) == sorted(
        referrals)
    assert len(held["Task"]) == len(referrals)
    observed = {_identifiers(o)[0].split("|")[1].split(":")[0] for o in held["Observation"]}
    assert observed == set(submissions)
    appointments = {_identifiers(r)[0].split("|")[1]: r["status"] for r in held["Appointment"]}
    assert appointments == {seat["booking_id"]: "cancelled", waiting["booking_id"]: "booked"}
    assert bookings == {seat["booking_id"]: "cancelled", waiting["booking_id"]: "booked"}
    assert sorted(_identifiers(r)[0].split("|")[1] for r in held["Communication"]) == sorted(
        messages)
    assert {m.rsplit(":", 1)[1] for m in messages} == {"confirmation", "waitlisted",
                                                       "cancellation", "waitlist_promotion"}
    by_member = {r["subject"]["reference"]: r for r in held["ServiceRequest"]}
    statuses = Counter(r["status"] for r in by_member.values())
    assert statuses == Counter({"active": 2, "revoked": 1})
    crisis = [r for r in held["ServiceRequest"] if r["priority"] == "stat"]
    assert len(crisis) == 1 and crisis[0]["status"] == "active"
