"""A backlog batch (items of several kiosk sessions) written set-based: answers item by item.

Clinical expectations (as in test_submissions.py): PHQ-9 5-9 mild, 10-14 moderate (Kroenke
2001); item 9 >= 1 is a crisis (DESIGN.md 3.6); PHQ-2 total >= 3 is positive and offers the
PHQ-9 next (Kroenke 2003).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, false, func, select, text
from sqlalchemy.orm import Session

from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import AuditLog, CrisisAlert, OutboxMessage, Referral, Submission
from onsite_server.services.submissions import bulk
from shared.schemas.submissions import SubmissionBatchResponse

from ..helpers import (
    auth,
    concurrent_posts,
    identified_member,
    live_kiosk_and_members,
    new_key,
    sql_run,
    submission_item,
)

URL = "/api/v1/submissions"
PHQ9_MILD = {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 1, "7": 1, "8": 0, "9": 0}  # 7
PHQ9_MODERATE = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "8": 2, "9": 0}  # 12
PHQ9_ITEM9 = {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0, "6": 0, "7": 0, "8": 0, "9": 1}
PHQ2_POSITIVE = {"1": 2, "2": 2}  # 4 >= 3: the PHQ-9 is offered next


def _post(client: FlaskClient, token: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resp = client.post(URL, json={"items": items}, headers=auth(token))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    SubmissionBatchResponse.model_validate(body)
    results: list[dict[str, Any]] = body["results"]
    assert len(results) == len(items)
    return results


def _rows(app: Flask, model: Any, *where: Any) -> list[Any]:
    with get_db(app).transaction(write=False) as session:
        rows = list(session.scalars(select(model).where(*where).order_by(model.id)))
        session.expunge_all()
        return rows


def _mixed_batch(app: Flask, site: Any, kiosk: dict[str, Any], client: FlaskClient
                 ) -> tuple[list[dict[str, Any]], str]:
    """Store one item first, then return a backlog batch around it and the member's id."""
    member_id, ref = identified_member(app, site, kiosk)
    earlier = submission_item("phq9", PHQ9_MILD)
    assert _post(client, kiosk["token"], [earlier])[0]["status"] == "accepted"
    visit = new_key()
    good = submission_item("phq2", PHQ2_POSITIVE, session_id=visit)
    malformed = submission_item("phq9", {**PHQ9_MILD, "3": 7})  # 7 is not a PHQ-9 answer
    crisis = submission_item("phq9", PHQ9_ITEM9)
    return [
        good,                                                            # 0 accepted
        submission_item("phq9", PHQ9_MODERATE, member_ref=ref),          # 1 accepted
        malformed,                                                       # 2 rejected
        copy.deepcopy(earlier),                                          # 3 replayed
        submission_item("phq9", PHQ9_MILD, session_id=visit),            # 4 accepted
        copy.deepcopy(good),                                             # 5 replayed
        {**copy.deepcopy(good), "answers": {"1": 0, "2": 0}},            # 6 conflict
        crisis,                                                          # 7 accepted
        submission_item("phq9", PHQ9_MILD, member_ref=ref),              # 8 accepted
        submission_item("phq9", PHQ9_ITEM9, version="9.9.9"),            # 9 rejected, crisis
    ], member_id


def test_mixed_backlog_batch_answers_every_item_on_its_own(
        app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any]) -> None:
    items, member_id = _mixed_batch(app, site, kiosk, client)
    answers = _post(client, kiosk["token"], items)
    assert [a["status"] for a in answers] == [
        "accepted", "accepted", "rejected", "replayed", "accepted", "replayed", "conflict",
        "accepted", "accepted", "rejected"]
    assert [e["field"] for e in answers[2]["problem"]["errors"]] == ["items.2.answers.3"]
    assert answers[3]["result"]["score"]["total"] == 7  # the first answer, replayed
    assert answers[5]["result"] == answers[0]["result"]
    assert [e["field"] for e in answers[6]["problem"]["errors"]] == ["items.6.idempotency_key"]
    # Triaged with its own session, earlier items of the batch included: the PHQ-2 offered
    # the PHQ-9, which item 4 of the same visit then answered.
    assert answers[0]["result"]["next_screeners"] == ["phq9"]
    assert answers[4]["result"]["next_screeners"] == []
    # The crises: guidance, recorded, an alert for staff (anonymous), also for the refused one.
    assert [g["trigger"] for g in answers[7]["crisis"]] == ["phq9_item9"]
    assert answers[7]["crisis_recorded"] is True and answers[7]["result"]["crisis_alert"]
    assert [g["trigger"] for g in answers[9]["crisis"]] == ["phq9_item9"]
    assert answers[9]["crisis_recorded"] is True
    assert all(a["crisis"] == [] and a["crisis_recorded"] is False
               for i, a in enumerate(answers) if i not in (7, 9))

    stored = _rows(app, Submission)
    assert len(stored) == 1 + 5  # the earlier item and the five accepted here
    by_key = {s.idempotency_key: s for s in stored}
    crisis_row = by_key[items[7]["idempotency_key"]]
    alerts = _rows(app, CrisisAlert)
    assert [a.from_rejected_item for a in alerts] == [False, True]
    # Crises first: both items' alerts were written before anything else of the batch (the
    # refused item 9 before the accepted items 0-8 that are not crises).
    batch_rows = [by_key[items[i]["idempotency_key"]] for i in (0, 1, 4, 8)]
    assert all(crisis_row.id < row.id for row in batch_rows)
    (listed,) = _rows(app, AuditLog, AuditLog.action == "submission.batch_received")
    raised = _rows(app, AuditLog, AuditLog.action == "crisis.raised")
    assert len(raised) == 2 and all(r.id < listed.id for r in raised)
    assert [i["key"] for i in listed.detail["items"]] == [
        items[i]["idempotency_key"] for i in (0, 1, 4, 8)]
    assert listed.detail["items"][1]["subject"] == f"member:{member_id}"
    # The kiosk's site: its staff see these entries in their audit log.
    assert listed.site_id == site.id
    received = _rows(app, AuditLog, AuditLog.action == "submission.received")
    assert received and {row.site_id for row in received} == {site.id}
    assert "answers" not in repr(listed.detail) and "total" not in repr(listed.detail)
    # Every stored answer is the one given, so a replay repeats it.
    for i in (0, 1, 4, 7, 8):
        row = by_key[items[i]["idempotency_key"]]
        assert {**row.response, "crisis": answers[i]["crisis"],
                "crisis_recorded": answers[i]["crisis_recorded"]} == answers[i]

    # The member's two items folded into one referral in one change: one version, one row.
    (referral,) = _rows(app, Referral)
    assert referral.priority == "soon" and referral.version == 1
    assert answers[1]["result"]["referral"] == answers[8]["result"]["referral"]
    assert {by_key[items[i]["idempotency_key"]].referral_id for i in (1, 8)} == {referral.id}
    (row,) = _rows(app, OutboxMessage)
    assert row.key == f"referral:{referral.public_id}:v1" and row.status == "pending"
    assert len(_rows(app, AuditLog, AuditLog.action == "referral.updated")) == 1

    # The whole batch again (the kiosk never saw the answer): same answers, nothing new.
    again = _post(client, kiosk["token"], copy.deepcopy(items))
    assert [a["status"] for a in again] == [
        "replayed", "replayed", "rejected", "replayed", "replayed", "replayed", "conflict",
        "replayed", "replayed", "rejected"]
    for i in (0, 1, 4, 7, 8):
        assert again[i]["result"] == answers[i]["result"]
        assert again[i]["crisis"] == answers[i]["crisis"]
    assert len(_rows(app, Submission)) == 6 and len(_rows(app, CrisisAlert)) == 2
    assert len(_rows(app, Referral)) == 1 and len(_rows(app, OutboxMessage)) == 1


def test_backlog_answers_are_those_of_the_item_by_item_path(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any]) -> None:
    """The same visits sent as one backlog and one visit per request get the same results."""
    def visits() -> list[dict[str, Any]]:
        out = []
        for n in range(4):
            visit = new_key()
            out.append(submission_item("phq2", PHQ2_POSITIVE, session_id=visit))
            if n % 2:
                # Difficulty declined (PHQ-9 1.1.0 item 10, unscored): still scored.
                out.append(submission_item("phq9", PHQ9_MODERATE, session_id=visit,
                                           version="1.1.0", skipped=["10"]))
            else:
                # Item 9 skipped: unscored, the gentle 988 notice (DESIGN.md 3.6).
                out.append(submission_item("phq9", {k: v for k, v in PHQ9_MILD.items()
                                                    if k != "9"},
                                           session_id=visit, skipped=["9"]))
            out.append(submission_item("phq9", PHQ9_MILD, session_id=visit))
        return out

    backlog = _post(client, kiosk["token"], visits())
    assert len(_rows(app, AuditLog, AuditLog.action == "submission.batch_received")) == 1
    one_by_one: list[dict[str, Any]] = []
    items = visits()
    for visit in sorted({i["session_id"] for i in items}, key=[
            i["session_id"] for i in items].index):
        one_by_one += _post(client, kiosk["token"], [i for i in items
                                                     if i["session_id"] == visit])
    assert len(_rows(app, AuditLog, AuditLog.action == "submission.batch_received")) == 1
    assert [a["status"] for a in backlog] == ["accepted"] * len(items)
    assert [a["result"] for a in backlog] == [a["result"] for a in one_by_one]


def test_a_key_taken_meanwhile_sends_the_batch_item_by_item(
        app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The multi-row INSERT fails on a key stored after the batch looked: each item alone."""
    items, _ = _mixed_batch(app, site, kiosk, client)
    # As if the earlier item had been committed by a concurrent request after this batch
    # looked for stored keys: the lookup finds nothing, the INSERT meets the taken key.
    monkeypatch.setattr(bulk, "_STORED", select(Submission).where(false()))
    outcomes: list[Any] = []
    store_bulk = bulk.store_bulk

    def spy(*args: Any, **kwargs: Any) -> Any:
        outcomes.append(store_bulk(*args, **kwargs))
        return outcomes[-1]

    monkeypatch.setattr("onsite_server.services.submissions.batch.store_bulk", spy)
    answers = _post(client, kiosk["token"], items)
    assert outcomes == [None]  # the set-based write was tried and rolled back
    assert [a["status"] for a in answers] == [
        "accepted", "accepted", "rejected", "replayed", "accepted", "replayed", "conflict",
        "accepted", "accepted", "rejected"]
    assert answers[3]["result"]["score"]["total"] == 7
    assert answers[9]["crisis_recorded"] is True
    assert answers[0]["result"]["next_screeners"] == ["phq9"]
    assert len(_rows(app, Submission)) == 6 and len(_rows(app, CrisisAlert)) == 2
    # Nothing of the failed attempt stayed: no batch row, and the member's items folded one
    # by one (two versions) instead of once.
    assert _rows(app, AuditLog, AuditLog.action == "submission.batch_received") == []
    assert len(_rows(app, AuditLog, AuditLog.action == "submission.received")) == 1 + 5
    (referral,) = _rows(app, Referral)
    assert referral.version == 2
    (row,) = _rows(app, OutboxMessage)
    assert row.key == f"referral:{referral.public_id}:v2"


@pytest.mark.slow
@pytest.mark.parametrize("members", [True, False], ids=["members", "anonymous"])
def test_racing_backlog_batches_store_every_item_once(live_server: Any, database_url: str,
                                                       members: bool) -> None:
    """Eight copies of one backlog at once: every item stored once, every copy answered alike.

    Anonymous items take no member lock, so on PostgreSQL the copies really race to the
    multi-row INSERT: the losers wait on the winner's keys, fail, and go item by item.
    """
    token, refs = live_kiosk_and_members(live_server, database_url, 2)
    items = [submission_item("phq2", PHQ2_POSITIVE) for _ in range(4)]
    if members:
        items += [submission_item("phq9", PHQ9_MODERATE, member_ref=refs[n % 2])
                  for n in range(6)]
        items.insert(3, submission_item("phq9", PHQ9_ITEM9, member_ref=refs[0]))
    else:
        items.insert(2, submission_item("phq9", PHQ9_ITEM9))
    outcomes = concurrent_posts(live_server.url + URL, {"items": items}, token, 8)
    assert [status for status, _ in outcomes] == [200] * 8, outcomes
    for position in range(len(items)):
        statuses = sorted(body["results"][position]["status"] for _, body in outcomes)
        assert statuses == ["accepted"] + ["replayed"] * 7, (position, statuses)
        assert len({repr(body["results"][position]["result"]) for _, body in outcomes}) == 1
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            def count(model: Any) -> int:
                return int(session.scalar(select(func.count()).select_from(model)) or 0)

            assert count(Submission) == len(items)
            if not members:
                assert count(CrisisAlert) == 1 and count(Referral) == 0
                return
            assert count(Referral) == 2
            assert count(OutboxMessage) == 2
            crisis = session.scalars(select(Referral).where(Referral.priority == "crisis")).one()
            pending = session.scalars(select(OutboxMessage).where(
                OutboxMessage.referral_id == crisis.id)).one()
            assert pending.priority == 0
    finally:
        engine.dispose()


def test_offline_ids_in_a_backlog_are_capped_in_order_and_replays_not_matched(
        app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any]) -> None:
    """One lock and count for the batch's typed ids: the same outcomes as one per person."""
    from datetime import date

    from onsite_server.models import Site
    from onsite_server.services.identify import OFFLINE_ACTION, OFFLINE_CAPPED_ACTION

    from ..helpers import gen_member

    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        b = gen_member(session, row, "EB", birth_date=date(1980, 2, 2)).public_id

    def typed(person: str, born: str, **extra: Any) -> dict[str, Any]:
        item = submission_item("phq9", PHQ9_MODERATE, **extra)
        del item["anonymous"]
        item["offline_identity"] = {"id": person, "birth_date": born}
        return item

    override(app, OFFLINE_IDENTIFY_PER_DAY=2)
    earlier = typed("EA", "1980-01-01")  # nobody: a miss, and one attempt of the two spent
    assert _post(client, kiosk["token"], [earlier])[0]["status"] == "accepted"
    items = [copy.deepcopy(earlier), typed("eb", "1980-02-02"), typed("EC", "1980-03-03"),
             typed("EB", "1980-02-02")]
    answers = _post(client, kiosk["token"], items)
    assert [a["status"] for a in answers] == ["replayed", "accepted", "accepted", "accepted"]
    assert len(_rows(app, AuditLog, AuditLog.action == "submission.batch_received")) == 1
    attempts = _rows(app, AuditLog, AuditLog.action == OFFLINE_ACTION)
    assert [(a.detail["outcome"], a.subject) for a in attempts] == [
        ("no_match", None), ("match", f"member:{b}")]
    assert len(_rows(app, AuditLog, AuditLog.action == OFFLINE_CAPPED_ACTION)) == 1
    stored = {s.idempotency_key: s for s in _rows(app, Submission)}
    assert stored[items[1]["idempotency_key"]].member_id is not None
    assert stored[items[3]["idempotency_key"]].member_id == \
        stored[items[1]["idempotency_key"]].member_id
    assert stored[items[2]["idempotency_key"]].member_id is None  # past the cap: anonymous


_STORED_TEXT = text(
    "SELECT idempotency_key, request_hash, session_id, instrument_id, instrument_version, "
    "CAST(answers AS TEXT), CAST(skipped AS TEXT), CAST(devices AS TEXT), "
    "CAST(kiosk_result AS TEXT), CAST(result AS TEXT), score_mismatch, crisis, "
    "CAST(taken_at AS TEXT), clock_suspect, CAST(response AS TEXT), member_id, referral_id, "
    "kiosk_id, CAST(received_at AS TEXT) FROM submission WHERE idempotency_key = :key")


def _stored_text(app: Flask, key: str) -> tuple[Any, ...]:
    """A submission row as the database holds it: JSON columns as text, times as stored."""
    with get_db(app).transaction(write=False) as session:
        return tuple(session.execute(_STORED_TEXT, {"key": key}).one())


def test_a_backlog_stores_exactly_what_one_item_at_a_time_stores(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any]) -> None:
    """Issue 20 (P6), session 11: the set-based INSERT hands its rows to the driver itself.

    Every column as the database holds it (JSON as text, times as stored) must be what the
    item-by-item path stores for the same item: only the key, and what follows from it (the
    digest, the answer's key) and the receive time may differ.
    """
    taken = "2026-12-07T09:15:30.250000+00:00"

    def visit_items() -> list[dict[str, Any]]:
        visit = new_key()
        return [
            submission_item("phq2", PHQ2_POSITIVE, session_id=visit, taken_at=taken,
                            kiosk_result={"total": 4, "band": "positive",
                                          "flags": ["positive_screen"]}),
            submission_item("phq9", {k: v for k, v in PHQ9_MILD.items() if k != "9"},
                            session_id=visit, skipped=["9"], taken_at=taken),
            submission_item("phq9", PHQ9_MODERATE, session_id=visit, taken_at=taken,
                            kiosk_result={"total": 11, "band": "moderate", "flags": []}),
        ]

    backlog = visit_items() + visit_items()
    assert [a["status"] for a in _post(client, kiosk["token"], backlog)] == ["accepted"] * 6
    assert len(_rows(app, AuditLog, AuditLog.action == "submission.batch_received")) == 1
    alone = visit_items()
    for item in alone:
        assert _post(client, kiosk["token"], [item])[0]["status"] == "accepted"
    for together, single in zip(backlog[:3], alone, strict=True):
        a = _stored_text(app, together["idempotency_key"])
        b = _stored_text(app, single["idempotency_key"])
        # Not compared: key, digest, session (0-2), the answer's key (in 14), received_at (18).
        assert a[3:14] == b[3:14]
        assert a[15:18] == b[15:18]
        assert a[14].replace(together["idempotency_key"], "K") == \
            b[14].replace(single["idempotency_key"], "K")
        # received_at: each path's own time, stored as taken_at is (compared above).


def test_the_backlogs_rows_skip_sqlalchemys_per_row_parameter_work(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The multi-row INSERT's parameters are built once per row, not again by SQLAlchemy.

    SQLAlchemy's execute(insert, rows) builds every row's parameters through the compiled
    statement (``construct_params``) and its bind processors: half of the INSERT's cost in a
    250-item batch, more than SQLite's own work.
    """
    from sqlalchemy.sql.compiler import SQLCompiler

    built: list[int] = []
    construct = SQLCompiler.construct_params

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self.statement, "table", None) is not None and \
                self.statement.table.name == "submission" and self.statement.is_insert:
            built.append(1)
        return construct(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "construct_params", counted)
    items = [submission_item("phq9", PHQ9_MILD) for _ in range(12)]
    assert [a["status"] for a in _post(client, kiosk["token"], items)] == ["accepted"] * 12
    assert len(_rows(app, Submission)) == 12
    assert built == []


def test_a_backlogs_referral_audit_rows_go_in_with_the_batchs_own(
        app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any]) -> None:
    """Issue 20 (P6), session 11: each member's referral still gets its own audit row, at the
    kiosk's site, before the batch's; all of them in one statement instead of one each."""
    people = [identified_member(app, site, kiosk) for _ in range(3)]
    items = [submission_item("phq9", PHQ9_MODERATE, member_ref=ref) for _, ref in people]
    items.append(submission_item("phq9", PHQ9_MILD))
    with sql_run(app) as statements:
        answers = _post(client, kiosk["token"], items)
    assert [a["status"] for a in answers] == ["accepted"] * 4
    updated = _rows(app, AuditLog, AuditLog.action == "referral.updated")
    (listed,) = _rows(app, AuditLog, AuditLog.action == "submission.batch_received")
    referrals = {r.member_id: r for r in _rows(app, Referral)}
    assert len(updated) == 3 == len(referrals)
    assert sorted(r.subject for r in updated) == sorted(
        f"referral:{r.public_id}" for r in referrals.values())
    assert all(r.detail == {"version": 1, "cause": "submission"} for r in updated)
    assert {r.site_id for r in [*updated, listed]} == {site.id}
    assert all(r.id < listed.id for r in updated)
    assert len([s for s in statements if s.startswith("INSERT INTO audit_log")]) == 1
