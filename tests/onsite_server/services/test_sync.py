"""The sync worker: crisis first, idempotent bundles, retries with backoff, dead letters with
alerts, leases that let a second worker take over, and a real HTTP client's error classes."""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request
from sqlalchemy import select

from onsite_server.central import CentralClient, CentralError
from onsite_server.db import get_db
from onsite_server.fhir import JWKS_CONTENT_TYPE, Systems, validate
from onsite_server.models import Alert, OutboxMessage, Referral
from onsite_server.services.signing import KeyStore
from onsite_server.services.sync import SyncSettings, claim, run_cycle
from shared.backoff import full_jitter as backoff
from shared.tokens import KeyRing

from ...live import serve_in_thread
from ..helpers import auth, identified_member, new_key, sql_run, submission_item

PHQ9_ITEM9 = {str(i): 0 for i in range(1, 9)} | {"9": 1}
PHQ9_MODERATE = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "8": 2, "9": 0}


class FakeCentral:
    """Records bundles; fails as told."""

    def __init__(self) -> None:
        self.bundles: list[dict[str, Any]] = []
        self.fail: list[Exception] = []

    def transaction(self, bundle: Any) -> Any:
        if self.fail:
            raise self.fail.pop(0)
        validate(bundle)
        self.bundles.append(bundle)
        return {"resourceType": "Bundle", "type": "transaction-response"}

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        return []  # central holds nothing yet: the shared resources are created


def _settings(app: Flask, worker: str = "w1") -> SyncSettings:
    return SyncSettings(systems=Systems("https://fhir.example/id"), site="test-site",
                        keys=KeyStore(Path(app.config["SIGNING_KEY_DIR"])), worker_id=worker)


def consent(client: Any, kiosk: dict[str, Any], ref: str, agreed: bool | None = True) -> None:
    """Answer the consent question at the kiosk (agreed: by phone, in the morning)."""
    body: dict[str, Any] = {"idempotency_key": new_key(), "member_ref": ref, "consent": agreed}
    if agreed:
        body |= {"contact_method": "phone", "contact_time": "morning", "phone": "+1 555 0100"}
    resp = client.post("/api/v1/referrals/consent", headers=auth(kiosk["token"]), json=body)
    assert resp.status_code == 200, resp.get_json()


def _submit(app: Flask, client: Any, site: Any, kiosk: dict[str, Any],
            answers: dict[str, int], agreed: bool | None = True) -> str:
    """File a PHQ-9 for a new member, who then answers the consent question (None: skips it)."""
    _, ref = identified_member(app, site, kiosk)
    resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                       json={"items": [submission_item("phq9", answers, member_ref=ref)]})
    referral: dict[str, Any] = resp.get_json()["results"][0]["result"]["referral"]
    if agreed is not None:
        consent(client, kiosk, ref, agreed)
    return str(referral["referral_id"])


def _rows(app: Flask) -> list[OutboxMessage]:
    with get_db(app).transaction(write=False) as session:
        rows = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        for row in rows:
            session.expunge(row)
        return rows


def _types(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["resourceType"] for e in bundle["entry"]]


def test_a_referral_is_forwarded_as_one_valid_bundle(app: Flask, client: Any, site: Any,
                                                     kiosk: dict[str, Any]) -> None:
    referral_id = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    central = FakeCentral()
    report = run_cycle(get_db(app).transaction, central, _settings(app))
    assert report.sent == 1 and report.dead == 0
    (bundle,) = central.bundles
    assert _types(bundle).count("Patient") == 1
    assert _types(bundle).count("QuestionnaireResponse") == 1
    assert {"ServiceRequest", "Task", "Observation", "Binary"} <= set(_types(bundle))
    (row,) = _rows(app)
    assert row.status == "sent" and row.sent_at is not None and row.claimed_by is None
    with get_db(app).transaction(write=False) as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == referral_id)).one()
        assert referral.status == "sent"
    assert run_cycle(get_db(app).transaction, central, _settings(app)).sent == 0


def test_crisis_goes_first(app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    routine = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    crisis = _submit(app, client, site, kiosk, PHQ9_ITEM9)
    central = FakeCentral()
    run_cycle(get_db(app).transaction, central, _settings(app))
    order = [next(e["resource"]["identifier"][0]["value"] for e in b["entry"]
                  if e["resource"]["resourceType"] == "ServiceRequest") for b in central.bundles]
    assert order == [crisis, routine]


def test_the_keys_travel_with_the_bundle(app: Flask, client: Any, site: Any,
                                         kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    central = FakeCentral()
    run_cycle(get_db(app).transaction, central, _settings(app))
    (keys,) = [e for e in central.bundles[0]["entry"]
               if e["resource"]["resourceType"] == "Binary"
               and e["resource"]["contentType"] == JWKS_CONTENT_TYPE]
    assert keys["request"] == {"method": "PUT", "url": "Binary/onsite-keys-test-site"}
    jwks = json.loads(base64.b64decode(keys["resource"]["data"]))
    ring = KeyRing()
    for key in jwks["keys"]:
        ring.add_jwk(key)
    assert {purpose.label for _, purpose in ring.keys.values()} == {"advocate_link", "ticket"}


def test_a_failure_is_retried_with_backoff(app: Flask, client: Any, site: Any,
                                           kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    central = FakeCentral()
    central.fail.append(CentralError("down", status=503))
    start = datetime.now(UTC)
    report = run_cycle(get_db(app).transaction, central, _settings(app), now=lambda: start,
                       rng=random.Random(1))
    assert report.retried == 1 and report.sent == 0
    (row,) = _rows(app)
    assert row.status == "pending" and row.attempts == 1 and "down" in (row.last_error or "")
    assert start <= row.next_attempt_at <= start + timedelta(seconds=10)
    later = start + timedelta(seconds=11)
    assert run_cycle(get_db(app).transaction, central, _settings(app),
                     now=lambda: later).sent == 1


@pytest.mark.parametrize("status", [400, 409, 412, 422])
def test_permanent_failures_go_to_the_dead_letter_list(app: Flask, client: Any, site: Any,
                                                       kiosk: dict[str, Any],
                                                       status: int) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    central = FakeCentral()
    central.fail.append(CentralError("refused", status=status, retryable=False))
    report = run_cycle(get_db(app).transaction, central, _settings(app))
    assert report.dead == 1
    (row,) = _rows(app)
    assert row.status == "dead"
    with get_db(app).transaction(write=False) as session:
        assert [a.kind for a in session.scalars(select(Alert))] == ["dead_letter"]


def test_a_dead_crisis_row_alerts_at_once(app: Flask, client: Any, site: Any,
                                          kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_ITEM9)
    central = FakeCentral()
    central.fail.append(CentralError("refused", status=422, retryable=False))
    report = run_cycle(get_db(app).transaction, central, _settings(app))
    assert report.alerts == ["crisis_dead_letter"]
    with get_db(app).transaction(write=False) as session:
        (alert,) = session.scalars(select(Alert))
        assert alert.kind == "crisis_dead_letter" and "CRISIS" in alert.message
        # The site where the answers were taken: only its admins (and operators) see it.
        assert alert.site_id == site.id


def test_a_row_stuck_for_an_hour_raises_one_alert(app: Flask, client: Any, site: Any,
                                                  kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    central = FakeCentral()
    central.fail.extend(CentralError("down", status=503) for _ in range(3))
    start = datetime.now(UTC)
    run_cycle(get_db(app).transaction, central, _settings(app), now=lambda: start)
    hour_later = start + timedelta(hours=1, minutes=5)
    for _ in range(2):
        report = run_cycle(get_db(app).transaction, central, _settings(app),
                           now=lambda: hour_later)
    with get_db(app).transaction(write=False) as session:
        assert [(a.kind, a.site_id) for a in session.scalars(select(Alert))] == [
            ("outbox_stuck", site.id)]
    assert report.alerts == []  # the second cycle did not raise it again


def test_two_workers_never_hold_one_row_and_a_dead_worker_is_taken_over(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    first, second = _settings(app, "w1"), _settings(app, "w2")
    now = datetime.now(UTC)
    with get_db(app).transaction() as session:
        assert len(claim(session, first, now)) == 1
    with get_db(app).transaction() as session:
        assert claim(session, second, now) == []  # w1 holds it
    # w1 died: after its lease, w2 takes the row and sends it.
    later = now + first.lease + timedelta(seconds=1)
    central = FakeCentral()
    assert run_cycle(get_db(app).transaction, central, second, now=lambda: later).sent == 1
    (row,) = _rows(app)
    assert row.status == "sent"


def test_backoff_is_full_jitter_under_a_cap() -> None:
    rng = random.Random(7)
    for attempts in range(0, 40):
        wait = backoff(attempts, 5.0, 600.0, rng)
        assert 0 <= wait <= min(600.0, 5.0 * 2 ** attempts)
    assert max(backoff(30, 5.0, 600.0, rng) for _ in range(200)) > 300  # reaches the cap range


# --------------------------------------------------------------------------- the HTTP client


@pytest.fixture
def fhir_stub() -> Iterator[tuple[str, dict[str, Any]]]:
    """A tiny HTTP server answering as told, on loopback."""
    state: dict[str, Any] = {"status": 200, "seen": []}
    stub = Flask("stub")

    @stub.post("/fhir")
    def transaction() -> Response:
        state["seen"].append((request.headers.get("Authorization"), request.get_json()))
        body = json.dumps({"resourceType": "Bundle", "type": "transaction-response"})
        return Response(body, status=state["status"], mimetype="application/fhir+json")

    with serve_in_thread(stub) as port:
        yield f"http://127.0.0.1:{port}/fhir", state


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (409, False), (412, False),
                                                   (422, False), (500, True), (503, True),
                                                   (429, True), (401, True)])
def test_client_classifies_failures(fhir_stub: tuple[str, dict[str, Any]], status: int,
                                    retryable: bool) -> None:
    url, state = fhir_stub
    state["status"] = status
    with pytest.raises(CentralError) as caught:
        CentralClient(url, bearer="t").transaction({"resourceType": "Bundle"})
    assert caught.value.status == status and caught.value.retryable is retryable


def test_client_sends_the_bearer_token(fhir_stub: tuple[str, dict[str, Any]]) -> None:
    url, state = fhir_stub
    answer = CentralClient(url, bearer="secret-token").transaction({"resourceType": "Bundle"})
    assert answer["type"] == "transaction-response"
    assert state["seen"][0][0] == "Bearer secret-token"


def test_no_server_is_retryable() -> None:
    with pytest.raises(CentralError) as caught:
        CentralClient("http://127.0.0.1:9/fhir", connect_timeout=1).transaction({})
    assert caught.value.retryable and caught.value.status is None


# --------------------------------------------------------------------------- status from central


class TaskSearch:
    """Answers Task searches with the statuses it is given."""

    def __init__(self, system: str, statuses: dict[str, str]) -> None:
        self.system = system
        self.statuses = statuses
        self.calls = 0

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        assert resource_type == "Task"
        self.calls += 1
        asked = [v.split("|", 1)[1] for v in params["identifier"].split(",")]
        return [{"resourceType": "Task", "status": self.statuses[a],
                 "identifier": [{"system": self.system, "value": a}]}
                for a in asked if a in self.statuses]


@pytest.mark.parametrize(("task_status", "expected"), [
    ("requested", "sent"), ("accepted", "acknowledged"), ("in-progress", "contacted"),
    ("completed", "closed")])
def test_status_flows_back_from_central(app: Flask, client: Any, site: Any,
                                        kiosk: dict[str, Any], task_status: str,
                                        expected: str) -> None:
    from onsite_server.services.sync import pull_statuses

    referral_id = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    run_cycle(get_db(app).transaction, FakeCentral(), _settings(app))
    settings = _settings(app)
    central = TaskSearch(settings.systems("referral-task"), {referral_id: task_status})
    pull_statuses(get_db(app).transaction, central, settings)
    with get_db(app).transaction(write=False) as session:
        status = session.scalars(select(Referral.status).where(
            Referral.public_id == referral_id)).one()
    assert status == expected


def test_status_never_moves_back(app: Flask, client: Any, site: Any,
                                 kiosk: dict[str, Any]) -> None:
    from onsite_server.services.sync import merge_status, pull_statuses

    referral_id = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    run_cycle(get_db(app).transaction, FakeCentral(), _settings(app))
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == referral_id)).one()
        referral.status = "contacted"  # the onsite advocate already called
    settings = _settings(app)
    pull_statuses(get_db(app).transaction,
                  TaskSearch(settings.systems("referral-task"), {referral_id: "accepted"}),
                  settings)
    with get_db(app).transaction(write=False) as session:
        assert session.scalars(select(Referral.status).where(
            Referral.public_id == referral_id)).one() == "contacted"
    assert merge_status("closed", "sent") == "closed"
    assert merge_status("new", "acknowledged") == "acknowledged"


class BusyCentral(FakeCentral):
    """Central holds the referral and an advocate changes it before every write of ours."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.reads = 0

    def transaction(self, bundle: Any) -> Any:
        if any("ifMatch" in e["request"] for e in bundle["entry"]):
            self.writes += 1
            raise CentralError("POST answered 412", status=412, retryable=False)
        return super().transaction(bundle)

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        self.reads += 1
        system, _, value = params["identifier"].partition("|")
        held: dict[str, Any] = {"resourceType": resource_type, "id": f"{resource_type}-1",
                                "meta": {"versionId": str(self.reads)},
                                "identifier": [{"system": system, "value": value}]}
        if resource_type != "Patient":
            who = "for" if resource_type == "Task" else "subject"
            held |= {"status": "in-progress" if resource_type == "Task" else "active",
                     who: {"reference": "Patient/p-1"}}
        if resource_type in ("ServiceRequest", "Task"):
            held["intent"] = "order"
        return [held]


def test_a_merge_that_keeps_losing_retries_a_few_times_then_waits(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    run_cycle(get_db(app).transaction, FakeCentral(), _settings(app))  # central has it now
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral)).one()
        referral.version += 1
        session.add(OutboxMessage(kind="referral", key=f"referral:{referral.public_id}:v9",
                                  priority=5, payload={}, referral_id=referral.id))
    busy = BusyCentral()
    report = run_cycle(get_db(app).transaction, busy, _settings(app))
    assert busy.writes == _settings(app).merge_tries == 3  # bounded
    assert report.retried == 1 and report.dead == 0  # a race is not a refusal: try later
    row = [r for r in _rows(app) if r.key.endswith(":v9")][0]
    assert row.status == "pending" and "kept changing" in (row.last_error or "")


# --------------------------------------------------------------------------- under an outage


class Highest(random.Random):
    """Every jittered wait is its upper bound, so a test sees the backoff's cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _referral_id(bundle: dict[str, Any]) -> str:
    return str(next(e["resource"]["identifier"][0]["value"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "ServiceRequest"))


def test_a_failed_crisis_row_retries_on_a_short_backoff_capped_low(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_ITEM9)
    with get_db(app).transaction() as session:
        (row,) = session.scalars(select(OutboxMessage))
        row.attempts = 9  # a long outage already
    start = datetime.now(UTC) + timedelta(minutes=1)  # after every row is queued
    central = FakeCentral()
    central.fail.append(CentralError("down", status=503))
    settings = _settings(app)
    run_cycle(get_db(app).transaction, central, settings, now=lambda: start, rng=Highest())
    (crisis,) = _rows(app)
    assert crisis.attempts == 10 and crisis.waiting_on_central
    # 2 s doubling, capped at 30 s (a routine row's cap is 10 minutes).
    assert (settings.crisis_backoff_base, settings.crisis_backoff_cap) == (2.0, 30.0)
    assert crisis.next_attempt_at == start + timedelta(seconds=30)


def test_after_an_outage_every_crisis_goes_before_rows_never_tried(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    crisis = _submit(app, client, site, kiosk, PHQ9_ITEM9)
    start = datetime.now(UTC) + timedelta(minutes=1)  # after every row is queued
    down = FakeCentral()
    down.fail.append(CentralError("GET: ConnectionError"))  # no answer at all
    run_cycle(get_db(app).transaction, down, _settings(app), now=lambda: start,
              rng=Highest())
    # While central is down, kiosks queue more (never tried, so due at once).
    routine = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(2)]
    central = FakeCentral()  # back
    soon = start + timedelta(seconds=1)  # before the crisis row's retry timer (4 s)
    report = run_cycle(get_db(app).transaction, central, _settings(app), now=lambda: soon)
    assert central.bundles == [] and report.sent == 0  # nothing overtakes the crisis
    assert report.next_due == start + timedelta(seconds=4)  # the loop wakes for the crisis
    later = start + timedelta(seconds=4)
    run_cycle(get_db(app).transaction, central, _settings(app), now=lambda: later)
    assert [_referral_id(b) for b in central.bundles] == [crisis, *routine]


def test_a_failure_that_is_centrals_ends_the_cycle_and_leaves_the_rest_untried(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    for _ in range(3):
        _submit(app, client, site, kiosk, PHQ9_MODERATE)
    central = FakeCentral()
    central.fail.extend(CentralError("answered 503", status=503) for _ in range(3))
    report = run_cycle(get_db(app).transaction, central, _settings(app))
    assert report.central_unavailable and report.retried == 1
    assert len(central.fail) == 2  # one request, not three
    rows = _rows(app)
    assert sorted(r.attempts for r in rows) == [0, 0, 1]
    assert {r.status for r in rows} == {"pending"} and all(r.claimed_by is None for r in rows)
    # The loop waits for the failed row's backoff, not for the untried rows (due at once).
    (tried,) = [r for r in rows if r.attempts == 1]
    assert report.next_due == tried.next_attempt_at


def _fail_once(app: Flask, start: datetime, error: CentralError) -> None:
    central = FakeCentral()
    central.fail.append(error)
    run_cycle(get_db(app).transaction, central, _settings(app), now=lambda: start,
              rng=Highest())


def test_when_central_answers_the_rows_waiting_on_it_are_due_again(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    start = datetime.now(UTC) + timedelta(minutes=1)  # after every row is queued
    _fail_once(app, start, CentralError("answered 502", status=502))
    (row,) = _rows(app)
    assert row.next_attempt_at == start + timedelta(seconds=10)  # its own timer: 10 s
    fresh = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    central = FakeCentral()
    soon = start + timedelta(seconds=1)
    report = run_cycle(get_db(app).transaction, central, _settings(app), now=lambda: soon,
                       rng=Highest())
    # The fresh row went; central answered, so the waiting row is due within the jitter.
    assert [_referral_id(b) for b in central.bundles] == [fresh] and report.revived == 1
    (row,) = [r for r in _rows(app) if r.status == "pending"]
    assert row.next_attempt_at == soon + timedelta(seconds=5)


def test_a_revived_backlog_drains_in_the_same_cycle(app: Flask, client: Any, site: Any,
                                                    kiosk: dict[str, Any]) -> None:
    from dataclasses import replace

    waiting = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    start = datetime.now(UTC) + timedelta(minutes=1)  # after every row is queued
    _fail_once(app, start, CentralError("POST: ReadTimeout"))
    fresh = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    central = FakeCentral()
    soon = start + timedelta(seconds=1)
    eager = replace(_settings(app), revive_jitter=0.0)
    run_cycle(get_db(app).transaction, central, eager, now=lambda: soon)
    assert [_referral_id(b) for b in central.bundles] == [fresh, waiting]


def test_central_answering_the_directory_pull_makes_the_waiting_rows_due(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    from dataclasses import replace

    waiting = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    start = datetime.now(UTC) + timedelta(minutes=1)  # after every row is queued
    _fail_once(app, start, CentralError("answered 503", status=503))
    central = FakeCentral()
    soon = start + timedelta(seconds=1)  # before the row's own timer (10 s)
    eager = replace(_settings(app), revive_jitter=0.0)
    assert run_cycle(get_db(app).transaction, central, eager, now=lambda: soon).sent == 0
    report = run_cycle(get_db(app).transaction, central, eager, now=lambda: soon,
                       central_answered=True)
    assert report.revived == 1 and [_referral_id(b) for b in central.bundles] == [waiting]


def test_a_row_that_failed_for_its_own_sake_keeps_its_timer(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    start = datetime.now(UTC) + timedelta(minutes=1)  # after every row is queued
    _fail_once(app, start, ValueError("a bug of ours, not central's"))
    (row,) = _rows(app)
    assert not row.waiting_on_central
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    soon = start + timedelta(seconds=1)
    report = run_cycle(get_db(app).transaction, FakeCentral(), _settings(app),
                       now=lambda: soon)
    assert report.sent == 1 and report.revived == 0


def test_each_row_is_recorded_as_it_completes(app: Flask, client: Any, site: Any,
                                              kiosk: dict[str, Any]) -> None:
    first = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    seen: list[dict[str, str]] = []

    class Watching(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            seen.append({r.key.split(":")[1]: r.status for r in _rows(app)})
            return super().transaction(bundle)

    run_cycle(get_db(app).transaction, Watching(), _settings(app))
    assert seen[1][first] == "sent"  # before the second row was sent, not after the batch


def test_a_slow_central_never_lets_another_worker_take_rows_still_being_sent(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    for _ in range(3):
        _submit(app, client, site, kiosk, PHQ9_MODERATE)
    from dataclasses import replace

    slow_seconds = 100.0  # each request takes this long, within the client's timeout
    w1 = replace(_settings(app, "w1"), request_timeout=slow_seconds)
    w2 = replace(_settings(app, "w2"), request_timeout=slow_seconds)
    clock = [datetime.now(UTC)]
    taken: list[int] = []

    class Slow(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            clock[0] += timedelta(seconds=slow_seconds)
            with get_db(app).transaction() as session:  # the other worker looks for work
                taken.extend(claim(session, w2, clock[0]))
            return super().transaction(bundle)

    slow = Slow()
    report = run_cycle(get_db(app).transaction, slow, w1, now=lambda: clock[0])
    assert taken == [] and report.sent == 3 and len(slow.bundles) == 3
    assert {r.status for r in _rows(app)} == {"sent"}
    assert w1.lease >= timedelta(seconds=2 * slow_seconds)


def test_a_row_taken_over_is_not_sent(app: Flask, client: Any, site: Any,
                                      kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    from dataclasses import replace

    w1 = replace(_settings(app, "w1"), request_timeout=10.0)
    clock = [datetime.now(UTC)]

    class Stalled(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            # This worker stalled (a pause, a swap storm) past its whole lease, and the
            # other worker took the rest of its batch over.
            clock[0] += w1.lease + timedelta(seconds=1)
            with get_db(app).transaction() as session:
                claim(session, _settings(app, "w2"), clock[0])
            return super().transaction(bundle)

    stalled = Stalled()
    run_cycle(get_db(app).transaction, stalled, w1, now=lambda: clock[0])
    assert len(stalled.bundles) == 1  # the second row is w2's now: w1 does not send it
    # w2 holds both (the first had run out too, while its reply was on the way).
    assert [(r.status, r.claimed_by) for r in _rows(app)] == [("sending", "w2")] * 2


def test_a_row_taken_over_between_two_requests_is_not_sent_on(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    from dataclasses import replace

    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    run_cycle(get_db(app).transaction, FakeCentral(), _settings(app))  # central holds it
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral)).one()
        referral.version += 1
        session.add(OutboxMessage(kind="referral", key=f"referral:{referral.public_id}:v9",
                                  priority=5, payload={}, referral_id=referral.id))
    w1 = replace(_settings(app, "w1"), request_timeout=10.0)
    clock = [datetime.now(UTC)]

    class StallsOnTheFirstRead(FakeCentral):
        reads = 0

        def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
            self.reads += 1
            if self.reads == 1:  # the update reads central's copies first: w1 stalls here
                clock[0] += w1.lease + timedelta(seconds=1)
                with get_db(app).transaction() as session:
                    assert claim(session, _settings(app, "w2"), clock[0])
            return []

    central = StallsOnTheFirstRead()
    report = run_cycle(get_db(app).transaction, central, w1, now=lambda: clock[0])
    # Before its next request w1 found the row was w2's: no more reads, nothing written.
    assert central.reads == 1 and central.bundles == [] and report.sent == 0
    row = next(r for r in _rows(app) if r.key.endswith(":v9"))
    assert (row.status, row.claimed_by, row.attempts) == ("sending", "w2", 0)


def test_the_sync_loop_wakes_for_the_next_due_row() -> None:
    from onsite_server.cli import _sync_pause

    assert _sync_pause(30.0, None) == 30.0
    assert _sync_pause(30.0, datetime.now(UTC) + timedelta(seconds=2)) <= 2.0
    assert _sync_pause(30.0, datetime.now(UTC) - timedelta(seconds=5)) == 0.2
    assert _sync_pause(30.0, datetime.now(UTC) + timedelta(hours=1)) == 30.0


class _ReadsOnAnotherThread:
    """Wraps the database's transactions: notes each read-only one opened off the caller's
    thread (the worker preparing its next row ahead), and lets a test wait for one."""

    def __init__(self, app: Flask) -> None:
        self.inner = get_db(app).transaction
        self.caller = threading.get_ident()
        self.opened = threading.Event()
        self.closed = threading.Event()  # one such transaction ended: its reads are done

    def __call__(self, *, write: bool = True) -> Any:
        if write or threading.get_ident() == self.caller:
            return self.inner(write=write)
        self.opened.set()
        return self._noted(self.inner(write=write))

    @contextmanager
    def _noted(self, inner: Any) -> Iterator[Any]:
        with inner as session:
            yield session
        self.closed.set()


def test_the_next_row_is_built_while_this_one_is_sent_one_request_at_a_time(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    first = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    second = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    transaction = _ReadsOnAnotherThread(app)
    in_flight: list[int] = []
    seen: list[dict[str, str]] = []

    class Watching(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            in_flight.append(1)
            assert len(in_flight) == 1  # never two requests at once
            if not seen:  # the second row is prepared while the first is sent
                assert transaction.opened.wait(timeout=30)
            seen.append({r.key.split(":")[1]: r.status for r in _rows(app)})
            try:
                return super().transaction(bundle)
            finally:
                in_flight.pop()

    central = Watching()
    report = run_cycle(transaction, central, _settings(app))
    assert report.sent == 2 and [_referral_id(b) for b in central.bundles] == [first, second]
    assert seen[1][first] == "sent"  # still recorded before the next row goes


def test_a_later_row_of_the_referral_being_sent_is_built_after_it_is_recorded(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    with get_db(app).transaction() as session:  # a second version queued behind the first
        referral = session.scalars(select(Referral)).one()
        session.add(OutboxMessage(kind="referral", key=f"referral:{referral.public_id}:v9",
                                  priority=5, payload={}, referral_id=referral.id))
    transaction = _ReadsOnAnotherThread(app)
    calls: list[str] = []

    class Watching(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            if not calls:
                # Were the second row built now, it would not know the first reached
                # central, and would create instead of reading central's copy first.
                transaction.opened.wait(timeout=2)
            calls.append("write")
            return super().transaction(bundle)

        def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
            calls.append("read")
            return super().search(resource_type, params)

    report = run_cycle(transaction, Watching(), _settings(app))
    assert report.sent == 2
    # The second row saw the first recorded as sent: it read central's copies first.
    assert calls[0] == "write" and calls[1] == "read" and calls[-1] == "write"
    assert not transaction.opened.is_set()


def _queued(app: Flask, client: Any, site: Any, kiosk: dict[str, Any],
            answers: dict[str, int]) -> tuple[str, str]:
    """File a PHQ-9 for a new member who consents; return (referral id, member_ref)."""
    _, ref = identified_member(app, site, kiosk)
    resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                       json={"items": [submission_item("phq9", answers, member_ref=ref)]})
    assert resp.status_code == 200, resp.get_json()
    consent(client, kiosk, ref, True)
    return str(resp.get_json()["results"][0]["result"]["referral"]["referral_id"]), ref


def test_a_crisis_queued_while_a_row_is_at_central_goes_next_whatever_was_prepared(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    routine = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(3)]
    transaction = _ReadsOnAnotherThread(app)
    crisis: list[str] = []

    class Watching(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            if not self.bundles:
                # The first routine row is at central and the second one is built already:
                # a kiosk queues a crisis now.
                assert transaction.closed.wait(timeout=30)
                crisis.append(_submit(app, client, site, kiosk, PHQ9_ITEM9))
            return super().transaction(bundle)

    central = Watching()
    report = run_cycle(transaction, central, _settings(app))
    assert report.sent == 4
    assert [_referral_id(b) for b in central.bundles] == [routine[0], *crisis, *routine[1:]]


def test_a_crisis_found_for_the_member_whose_row_was_prepared_goes_next_as_a_crisis(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    first = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    second, ref = _queued(app, client, site, kiosk, PHQ9_MODERATE)
    transaction = _ReadsOnAnotherThread(app)

    class Watching(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            if not self.bundles:  # the second member's routine row is built already
                assert transaction.closed.wait(timeout=30)
                resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]), json={
                    "items": [submission_item("phq9", PHQ9_ITEM9, member_ref=ref)]})
                assert resp.status_code == 200, resp.get_json()
            return super().transaction(bundle)

    central = Watching()
    run_cycle(transaction, central, _settings(app))
    sent = [(_referral_id(b), _priority(b)) for b in central.bundles]
    # The crisis row goes next; the routine row built before it is not what reaches central.
    assert sent[:2] == [(first, "urgent"), (second, "stat")]
    assert all(priority == "stat" for referral, priority in sent if referral == second)


def _priority(bundle: dict[str, Any]) -> str:
    return str(next(e["resource"]["priority"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "ServiceRequest"))


def test_a_row_prepared_ahead_is_built_again_when_consent_is_withdrawn_before_it_goes(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    first = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    _, ref = _queued(app, client, site, kiosk, PHQ9_MODERATE)
    transaction = _ReadsOnAnotherThread(app)

    class Watching(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            if not self.bundles:
                # The second member's row is built (with their answers) while the first is
                # at central; then they withdraw their consent.
                assert transaction.closed.wait(timeout=30)
                consent(client, kiosk, ref, False)
            return super().transaction(bundle)

    central = Watching()
    report = run_cycle(transaction, central, _settings(app))
    # Nothing of the second member left the site: their row was built again, as it stood.
    assert [_referral_id(b) for b in central.bundles] == [first]
    assert report.sent == 1 and report.withheld == 2


def test_a_batch_of_referral_rows_is_read_in_the_same_statements_as_one_row(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:

    from onsite_server.models import Member, Site, Slot
    from onsite_server.services import bookings
    from onsite_server.services.sync import build_bundle, key_snapshot
    from onsite_server.services.sync.forward import Prepared, prepare_many

    from ..helpers import gen_event

    members = []
    for _ in range(5):
        public_id, ref = identified_member(app, site, kiosk)
        resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                           json={"items": [submission_item("phq9", PHQ9_MODERATE,
                                                           member_ref=ref)]})
        assert resp.status_code == 200
        consent(client, kiosk, ref, True)
        members.append(public_id)
    with get_db(app).transaction() as session:  # their bookings travel with the referrals
        site_row = session.get(Site, site.id)
        assert site_row is not None
        for index, public_id in enumerate(members[:2] + members[:1]):
            member = session.scalars(select(Member).where(Member.public_id == public_id)).one()
            slot_id = gen_event(session, site_row, title=f"Clinic {index}").slots[0].id
            bookings.book(session, member=member, slot=session.get(Slot, slot_id), actor="t")
    ids = [r.id for r in _rows(app) if r.kind == "referral"]
    assert len(ids) == 5
    settings, now = _settings(app), datetime.now(UTC)
    db = get_db(app)
    with db.transaction(write=False) as session:
        keys = key_snapshot(session, settings, now)
    with sql_run(app) as statements:
        prepare_many(db.transaction, settings, ids[:1], lambda: now, keys)
        for_one, statements[:] = len(statements), []
        prepared = prepare_many(db.transaction, settings, ids, lambda: now, keys)
        for_five = len(statements)
    # Five rows cost the statements of one: the batch is read set-based, not row by row.
    assert for_five == for_one
    # And each bundle is the one built row by row, bookings included.
    with db.transaction(write=False) as session:
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))):
            ready = prepared[row.id]
            assert isinstance(ready, Prepared) and ready.bundle is not None
            assert ready.bundle == build_bundle(session, row, settings, now, keys=keys)
    booked = [_types(p.bundle).count("Appointment") for p in prepared.values()
              if isinstance(p, Prepared) and p.bundle is not None]
    assert sorted(booked) == [0, 0, 0, 1, 2]


def test_rows_prepared_in_a_child_process_are_sent_and_built_again_when_stale(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import Future

    from onsite_server.services.sync import cycle
    from onsite_server.sync_preparer import ProcessPreparer

    first = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    second, ref = _queued(app, client, site, kiosk, PHQ9_MODERATE)
    third = _submit(app, client, site, kiosk, PHQ9_MODERATE)
    row_of = {r.key.split(":")[1]: r.id for r in _rows(app)}
    built_here: list[int] = []
    here = cycle.prepare

    def noting(transaction: Any, settings: Any, row_id: int, *args: Any) -> Any:
        built_here.append(row_id)
        return here(transaction, settings, row_id, *args)

    monkeypatch.setattr(cycle, "prepare", noting)
    tasks: list[Future[Any]] = []

    class Noted(ProcessPreparer):
        def submit(self, *args: Any) -> Any:
            tasks.append(super().submit(*args))
            return tasks[-1]

    class Watching(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            if not self.bundles:
                # The child built the second and third rows while the first is at central;
                # then the second member withdraws their consent.
                assert tasks and all(task.result(timeout=60) for task in tasks)
                consent(client, kiosk, ref, False)
            return super().transaction(bundle)

    preparer = Noted(get_db(app).url, _settings(app))
    preparer.warm()
    try:
        central = Watching()
        report = run_cycle(get_db(app).transaction, central, _settings(app), preparer=preparer)
    finally:
        preparer.close()
    assert [_referral_id(b) for b in central.bundles] == [first, third]
    assert report.sent == 2 and report.withheld == 2
    # The third row went as the child built it; the second was built again, as it stood
    # (and the withdrawal queued meanwhile is the first row of a batch of its own).
    assert built_here[:2] == [row_of[first], row_of[second]]
    assert row_of[third] not in built_here


class _CountsWrites:
    """Wraps the database's transactions and counts the write ones (each ends in a commit)."""

    def __init__(self, app: Flask) -> None:
        self.inner = get_db(app).transaction
        self.writes = 0

    def __call__(self, *, write: bool = True) -> Any:
        self.writes += write
        return self.inner(write=write)


def test_rows_central_took_within_the_window_share_one_commit(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    from dataclasses import replace

    # A clock that stands still, after every row was queued: every row within the window.
    moment = datetime.now(UTC) + timedelta(minutes=5)
    settings = replace(_settings(app), record_within=60.0)

    def writes_for(rows: int) -> int:
        for _ in range(rows):
            _submit(app, client, site, kiosk, PHQ9_MODERATE)
        transaction = _CountsWrites(app)
        report = run_cycle(transaction, FakeCentral(), settings, now=lambda: moment)
        assert report.sent == rows
        return transaction.writes

    # Housekeeping, the claim, the first row (it revives the rows waiting on central), the
    # rest of the batch together: six rows cost the commits of two.
    assert writes_for(2) == writes_for(6)
    assert {r.status for r in _rows(app)} == {"sent"}


def test_a_row_whose_request_outlasts_the_window_is_recorded_before_the_next_goes(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    from dataclasses import replace

    referrals = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(4)]
    clock = [datetime.now(UTC)]
    seen: list[dict[str, str]] = []

    class Slow(FakeCentral):
        def transaction(self, bundle: Any) -> Any:
            seen.append({r.key.split(":")[1]: r.status for r in _rows(app)})
            clock[0] += timedelta(seconds=1)  # each request takes longer than the window
            return super().transaction(bundle)

    settings = replace(_settings(app), record_within=0.5)
    report = run_cycle(get_db(app).transaction, Slow(), settings, now=lambda: clock[0])
    assert report.sent == 4
    for index in range(1, 4):  # when each row went, every row before it was recorded sent
        assert [seen[index][r] for r in referrals[:index]] == ["sent"] * index


def test_rows_whose_preparing_failed_are_built_as_they_go(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    from concurrent.futures import Future

    referrals = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(4)]

    class Broken:
        """A preparing process that died: its tasks fail, then it takes no more."""

        def __init__(self) -> None:
            self.calls = 0

        def submit(self, *args: Any) -> Future[Any]:
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("the preparing process is gone")
            failed: Future[Any] = Future()
            failed.set_exception(RuntimeError("the preparing process died"))
            return failed

    preparer = Broken()
    central = FakeCentral()
    report = run_cycle(get_db(app).transaction, central, _settings(app), preparer=preparer)
    assert report.sent == 4 and preparer.calls == 2
    assert [_referral_id(b) for b in central.bundles] == referrals


def test_while_the_next_row_is_not_ready_the_worker_prepares_what_the_preparer_has_not_started(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker does not wait idle for a busy preparing process: it takes the chunks the
    preparer has not started, last first, and prepares them itself. Each row is prepared
    once, a chunk the preparer started is left to it, and the rows go in order."""
    import time
    from concurrent.futures import Future

    from onsite_server.services.sync import cycle, forward

    referrals = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(12)]
    ids = [r.id for r in _rows(app)]
    by_worker: list[int] = []  # rows the worker prepared ahead of their turn
    as_they_go: list[int] = []  # rows built just before they went
    monkeypatch.setattr(cycle, "prepare_many", lambda *a, **k: (
        by_worker.extend(a[2]), forward.prepare_many(*a, **k))[1])
    monkeypatch.setattr(cycle, "prepare", lambda *a, **k: (
        as_they_go.append(a[2]), forward.prepare(*a, **k))[1])

    class Busy:
        """A preparing process that has started only its first chunk, and starts no other."""

        def __init__(self) -> None:
            self.given: list[tuple[list[int], Future[Any]]] = []

        def submit(self, transaction: Any, settings: SyncSettings, row_ids: Any, now: Any,
                   keys: Any) -> Future[Any]:
            task: Future[Any] = Future()
            if not self.given:
                task.set_running_or_notify_cancel()
            self.given.append((list(row_ids), task))
            return task

    preparer = Busy()
    central = FakeCentral()
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(run_cycle(
        get_db(app).transaction, central, _settings(app), preparer=preparer)), daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (len(preparer.given) > 1 and all(
                task.cancelled() for _, task in preparer.given[1:])):
            time.sleep(0.05)
        first_rows, first = preparer.given[0]
        # The preparer ends its first chunk only once the worker has taken all the rest.
        first.set_result(forward.prepare_many(get_db(app).transaction, _settings(app),
                                              first_rows, lambda: datetime.now(UTC)))
        worker.join(timeout=60)
    finally:
        for _, task in preparer.given:  # the code before this change waits for them
            if not task.done():
                task.set_exception(RuntimeError("never started"))
        worker.join(timeout=60)
    assert done and done[0].sent == 12
    assert [_referral_id(b) for b in central.bundles] == referrals
    assert first_rows == ids[1:3] and as_they_go == ids[:1]
    assert sorted(by_worker) == ids[3:]  # each once; the started chunk's rows not again
    assert [rows for rows, _ in preparer.given] == [ids[1:3], ids[3:7], ids[7:11], ids[11:]]


@pytest.mark.slow  # two preparing processes start, each importing the FHIR models
def test_a_preparing_process_that_died_is_replaced(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    import os
    import signal

    from onsite_server.sync_preparer import ProcessPreparer

    first = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(3)]
    preparer = ProcessPreparer(get_db(app).url, _settings(app), processes=1)
    preparer.warm()
    try:
        (child,) = preparer.children()
        os.kill(child, signal.SIGKILL)  # killed, say by the kernel's OOM killer
        central = FakeCentral()
        report = run_cycle(get_db(app).transaction, central, _settings(app),
                           preparer=preparer)
        assert report.sent == 3 and [_referral_id(b) for b in central.bundles] == first
        later = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(3)]
        report = run_cycle(get_db(app).transaction, central, _settings(app),
                           preparer=preparer)
        assert report.sent == 3 and [_referral_id(b) for b in central.bundles[3:]] == later
        assert preparer.children() not in ([], [child])  # a new child works
    finally:
        preparer.close()


@pytest.mark.slow  # two preparing processes start, each importing the FHIR models
def test_two_preparing_processes_share_a_batchs_chunks_and_the_rows_go_in_order(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    from onsite_server.sync_preparer import ProcessPreparer

    referrals = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(8)]
    given: list[tuple[int, int]] = []  # (child's pool, rows) of each chunk

    class Noted(ProcessPreparer):
        def _pick(self, rows: int) -> int:
            given.append((super()._pick(rows), rows))
            return given[-1][0]

    preparer = Noted(get_db(app).url, _settings(app), processes=2)
    preparer.warm()
    try:
        assert len(set(preparer.children())) == 2
        central = FakeCentral()
        report = run_cycle(get_db(app).transaction, central, _settings(app),
                           preparer=preparer)
    finally:
        preparer.close()
    assert report.sent == 8 and [_referral_id(b) for b in central.bundles] == referrals
    # The first row is built by the worker; the next seven in chunks of 2 and 4 (to the two
    # children, the first chunk's child being busy), then 1 to whichever has fewer left.
    assert [rows for _pool, rows in given] == [2, 4, 1]
    assert {pool for pool, _rows in given[:2]} == {0, 1}


def test_the_sites_key_entries_are_validated_once_for_a_chunk_of_rows(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from onsite_server.services.sync import forward, key_snapshot

    for _ in range(3):
        _submit(app, client, site, kiosk, PHQ9_MODERATE)
    ids = [r.id for r in _rows(app)]
    settings, now = _settings(app), datetime.now(UTC)
    with get_db(app).transaction(write=False) as session:
        keys = key_snapshot(session, settings, now)
    validated: list[list[str]] = []

    def noting(bundle: dict[str, Any]) -> None:
        validated.append(_types(bundle))
        validate(bundle)

    monkeypatch.setattr(forward, "validate", noting)
    prepared = forward.prepare_many(get_db(app).transaction, settings, ids, lambda: now, keys)
    # The two key entries (the same in every bundle) were validated once, not three times...
    assert sum(kinds.count("Binary") for kinds in validated) == 2
    assert len(validated) == 4  # the keys, then each row's own entries
    # ...and not again for the next chunk of the same snapshot; again for a new snapshot.
    forward.prepare_many(get_db(app).transaction, settings, ids[:1], lambda: now, keys)
    assert sum(kinds.count("Binary") for kinds in validated) == 2 and len(validated) == 5
    revoked = (keys[0], [*keys[1], "a-ticket-revoked-since"])
    again = forward.prepare_many(get_db(app).transaction, settings, ids[:1], lambda: now,
                                 revoked)
    assert sum(kinds.count("Binary") for kinds in validated) == 4 and len(validated) == 7
    fresh, before = again[ids[0]], prepared[ids[0]]
    assert isinstance(fresh, forward.Prepared) and fresh.bundle is not None
    assert isinstance(before, forward.Prepared) and before.bundle is not None
    # The revoked ids' entry is the new snapshot's; the public keys' entry is as it was.
    assert fresh.bundle["entry"][-1] != before.bundle["entry"][-1]
    assert fresh.bundle["entry"][-2] == before.bundle["entry"][-2]
    # ...and every bundle still carries them, at its end.
    for ready in prepared.values():
        assert isinstance(ready, forward.Prepared) and ready.bundle is not None
        assert _types(ready.bundle)[-2:] == ["Binary", "Binary"]
        validate(ready.bundle)


def test_a_single_cycles_preparing_process_starts_only_for_more_rows_than_its_start_costs(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``sync --once``'s child (about 1.2 s of CPU to start) is not started before rows are
    handed to it, nor for the first ``ONCE_CHILD_AFTER`` of them, which a thread prepares:
    with nothing due none starts; with a few rows due none starts and they all go, in order;
    past the threshold the child starts, with the rows handed after it."""
    from onsite_server import cli_sync

    assert cli_sync.ONCE_CHILD_AFTER >= 3
    preparer = cli_sync._preparer(get_db(app), _settings(app), warm=False)
    assert preparer is not None
    try:
        report = run_cycle(get_db(app).transaction, FakeCentral(), _settings(app),
                           preparer=preparer)
        assert report.sent == 0
        assert preparer.children() == []
        sent = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(3)]
        central = FakeCentral()
        report = run_cycle(get_db(app).transaction, central, _settings(app),
                           preparer=preparer)
        assert [_referral_id(b) for b in central.bundles] == sent
        assert preparer.children() == []
    finally:
        preparer.close()

    # Past the threshold (here 2 rows: a batch's second and third), the child starts and
    # prepares the rows handed after them.
    monkeypatch.setattr(cli_sync, "ONCE_CHILD_AFTER", 2)
    preparer = cli_sync._preparer(get_db(app), _settings(app), warm=False)
    assert preparer is not None
    in_child: list[list[int]] = []
    handed = preparer.submit

    def noting(transaction: Any, settings: Any, row_ids: Any, now: Any, keys: Any) -> Any:
        task = handed(transaction, settings, row_ids, now, keys)
        if preparer.children():
            in_child.append(list(row_ids))
        return task

    monkeypatch.setattr(preparer, "submit", noting)
    try:
        sent = [_submit(app, client, site, kiosk, PHQ9_MODERATE) for _ in range(7)]
        central = FakeCentral()
        report = run_cycle(get_db(app).transaction, central, _settings(app),
                           preparer=preparer)
        assert [_referral_id(b) for b in central.bundles] == sent
        assert len(preparer.children()) == 1
        assert in_child  # the rows handed after the first two went to the child
    finally:
        preparer.close()
