"""Concurrent replays of one key on a real server: one effect, one answer for everybody."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from onsite_server.models import CrisisAlert, IdempotentRequest, Referral

from ..helpers import concurrent_posts, live_kiosk_and_member, new_key

pytestmark = pytest.mark.slow


def _count(database_url: str, model: Any) -> int:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def test_concurrent_consent_replays_record_once(live_server: Any, database_url: str) -> None:
    token, ref = live_kiosk_and_member(live_server, database_url)
    body = {"idempotency_key": new_key(), "member_ref": ref, "consent": True,
            "contact_method": "email", "contact_time": "morning", "email": "a@example.com"}
    outcomes = concurrent_posts(live_server.url + "/api/v1/referrals/consent", body, token)
    assert {status for status, _ in outcomes} == {200}, outcomes
    assert len({repr(answer) for _, answer in outcomes}) == 1
    assert _count(database_url, Referral) == 1
    assert _count(database_url, IdempotentRequest) == 1


def test_concurrent_crisis_alert_replays_raise_one_alert(live_server: Any,
                                                         database_url: str) -> None:
    token, _ = live_kiosk_and_member(live_server, database_url)
    body = {"idempotency_key": new_key(), "trigger": "phq9_item9",
            "raised_at": datetime.now(UTC).isoformat()}
    outcomes = concurrent_posts(live_server.url + "/api/v1/crisis-alerts", body, token)
    assert {status for status, _ in outcomes} == {201}, outcomes
    assert len({repr(answer) for _, answer in outcomes}) == 1
    assert _count(database_url, CrisisAlert) == 1


def _crossing(url: str, token: str, pair: tuple[str, str], body_for: Any, *,
              together: bool = False) -> list[tuple[int, list[str]]]:
    """Send six batches naming two members in one order and six in the other, at once (all
    released by one barrier when ``together``); return each answer's status and item statuses."""
    import threading

    import requests

    from ..helpers import auth

    outcomes: list[tuple[int, list[str]]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12) if together else None

    def send(one: str, other: str) -> None:
        body = body_for(one, other)
        if barrier is not None:
            barrier.wait()
        resp = requests.post(url, json=body, headers=auth(token), timeout=60)
        with lock:
            outcomes.append((resp.status_code,
                             [r["status"] for r in resp.json().get("results", [])]))

    a, b = pair
    threads = [threading.Thread(target=send, args=order)
               for _ in range(6) for order in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_batches_naming_members_in_opposite_orders_all_succeed(live_server: Any,
                                                               database_url: str) -> None:
    """Member locks are taken in id order, so crossing batches wait instead of deadlocking."""
    from ..helpers import live_kiosk_and_members, submission_item

    token, refs = live_kiosk_and_members(live_server, database_url, 2)
    answers = {str(i): 1 for i in range(1, 10)} | {"9": 0}
    outcomes = _crossing(
        live_server.url + "/api/v1/submissions", token, (refs[0], refs[1]),
        lambda one, other: {"items": [submission_item("phq9", answers, member_ref=one),
                                      submission_item("phq9", answers, member_ref=other)]})
    assert outcomes == [(200, ["accepted", "accepted"])] * 12


def test_crossing_batches_led_by_a_replay_keep_their_lock_order(live_server: Any,
                                                                database_url: str) -> None:
    """A replayed first item must not roll back the ordered member locks (PostgreSQL).

    Its duplicate-key failure used to roll back the whole transaction, and with it the locks
    taken in id order; the rest of the batch then locked in item order and deadlocked against
    batches crossing it (issue 6 §10).
    """
    import requests

    from ..helpers import auth, live_kiosk_and_members, submission_item

    token, (ref_a, ref_b) = live_kiosk_and_members(live_server, database_url, 2)
    answers = {str(i): 1 for i in range(1, 10)} | {"9": 0}
    url = live_server.url + "/api/v1/submissions"
    head = submission_item("phq9", answers, member_ref=ref_a)
    first = requests.post(url, json={"items": [head]}, headers=auth(token), timeout=60)
    assert first.json()["results"][0]["status"] == "accepted"
    outcomes = _crossing(
        url, token, (ref_a, ref_b),
        lambda one, other: {"items": [head, submission_item("phq9", answers, member_ref=one),
                                      submission_item("phq9", answers, member_ref=other)]},
        together=True)
    assert outcomes == [(200, ["replayed", "accepted", "accepted"])] * 12
