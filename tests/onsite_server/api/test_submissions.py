"""POST /api/v1/submissions: re-scoring, per-item answers, idempotency, referral folding, crisis.

Clinical expectations used below:
- PHQ-9 severity: 0-4 minimal, 5-9 mild, 10-14 moderate, 15-19 moderately severe, 20-27 severe
  (Kroenke K, Spitzer RL, Williams JB. J Gen Intern Med. 2001;16(9):606-613).
- PHQ-9 item 9 >= 1 shows the 988 Lifeline and 911 (DESIGN.md 3.6); a skipped item 9 shows the
  988 information gently, not the crisis screen (DESIGN.md 3.6).
- Hypertensive crisis: systolic > 180 and/or diastolic > 120 (American Heart Association,
  "Hypertensive Crisis: When You Should Call 911"; DESIGN.md 3.6).
- GAD-7 >= 10 is a positive screen (Spitzer RL et al. Arch Intern Med. 2006;166(10):1092-1097).
- Blood pressure stage 2 is >= 140 systolic or >= 90 diastolic (Whelton PK et al., 2017
  ACC/AHA guideline, Hypertension 2018;71:e13-e115).
- Referral priorities/programs per finding come from assets/triage/rules.json (PHQ-9 moderate
  -> soon, moderately severe/severe -> urgent: Kroenke & Spitzer, Psychiatr Ann 2002;32:509-515;
  BP stage 2 -> soon, disease management).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import (
    AuditLog,
    CrisisAlert,
    Kiosk,
    OutboxMessage,
    Referral,
    Site,
    Submission,
)
from onsite_server.services.members import make_member_ref
from shared.schemas.submissions import SubmissionBatchResponse

from ..helpers import (
    auth,
    concurrent_posts,
    gen_member,
    gen_site,
    identified_member,
    live_kiosk_and_member,
    new_key,
    submission_item,
)

URL = "/api/v1/submissions"


def phq9(*values: int) -> dict[str, int]:
    """PHQ-9 answers keyed by linkId "1".."9"."""
    assert len(values) == 9
    return {str(i + 1): v for i, v in enumerate(values)}


def gad7(*values: int) -> dict[str, int]:
    """GAD-7 answers keyed by linkId "1".."7"."""
    assert len(values) == 7
    return {str(i + 1): v for i, v in enumerate(values)}


# Totals chosen to sit inside one PHQ-9 band each (Kroenke 2001), all with item 9 = 0.
PHQ9_MILD = phq9(1, 1, 1, 1, 1, 1, 1, 0, 0)  # 7: mild
PHQ9_MODERATE = phq9(2, 2, 2, 1, 1, 1, 1, 2, 0)  # 12: moderate
PHQ9_SEVERE = phq9(3, 3, 3, 3, 3, 3, 3, 1, 0)  # 22: severe
PHQ9_ITEM9 = phq9(0, 0, 0, 0, 0, 0, 0, 0, 1)  # total 1 (minimal) but item 9 >= 1: crisis
GAD7_MODERATE = gad7(2, 2, 2, 2, 1, 1, 1)  # 11: >= 10, positive (Spitzer 2006)


def post(client: FlaskClient, token: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
    resp = client.post(URL, json={"items": list(items)}, headers=auth(token))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    SubmissionBatchResponse.model_validate(body)  # the documented shape
    results: list[dict[str, Any]] = body["results"]
    assert len(results) == len(items)
    return results


def count(app: Flask, model: type) -> int:
    with get_db(app).transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def open_referrals(app: Flask) -> list[Referral]:
    with get_db(app).transaction(write=False) as session:
        rows = session.scalars(select(Referral).where(Referral.status != "closed")).all()
        session.expunge_all()
        return list(rows)


def fields(answer: dict[str, Any]) -> list[str]:
    return [e["field"] for e in answer["problem"]["errors"]]


# --------------------------------------------------------------------------- accepting, scoring


def test_accepted_batch_is_scored_stored_and_folded(app, client, site, kiosk):
    member_id, ref = identified_member(app, site, kiosk)
    session_id = new_key()
    answers = post(client, kiosk["token"],
                   submission_item("phq9", PHQ9_MODERATE, member_ref=ref, session_id=session_id),
                   submission_item("gad7", GAD7_MODERATE, member_ref=ref, session_id=session_id))
    assert [a["status"] for a in answers] == ["accepted", "accepted"]
    phq = answers[0]["result"]
    assert phq["scored"] is True
    assert phq["score"]["total"] == 12 and phq["score"]["band"] == "moderate"
    assert phq["crisis"] == [] and phq["score_mismatch"] is False
    gad = answers[1]["result"]["score"]
    assert gad["total"] == 11 and "positive_screen" in gad["flags"]

    assert count(app, Submission) == 2
    (referral,) = open_referrals(app)
    assert referral.priority == "soon"
    assert {"behavioral_health", "eap"} <= set(referral.programs)
    assert answers[1]["result"]["referral"]["referral_id"] == referral.public_id
    with get_db(app).transaction(write=False) as session:
        subs = session.scalars(select(Submission)).all()
        assert {s.referral_id for s in subs} == {referral.id}
        assert all(s.member.public_id == member_id for s in subs)
        audits = session.scalars(select(AuditLog).where(
            AuditLog.action == "submission.received")).all()
        assert len(audits) == 2
        # No answers (nor scores) in the audit trail, only what happened.
        for row in audits:
            assert "answers" not in row.detail and "total" not in row.detail
            assert row.subject == f"member:{member_id}"


def test_server_score_wins_and_mismatch_is_logged(app, client, site, kiosk, caplog):
    _, ref = identified_member(app, site, kiosk)
    item = submission_item("phq9", PHQ9_MODERATE, member_ref=ref,
                           kiosk_result={"total": 3, "band": "minimal", "flags": []})
    with caplog.at_level(logging.WARNING, logger="onsite_server.submissions"):
        (answer,) = post(client, kiosk["token"], item)
    assert answer["result"]["score"]["total"] == 12
    assert answer["result"]["score"]["band"] == "moderate"
    assert answer["result"]["score_mismatch"] is True
    records = [r for r in caplog.records if r.name == "onsite_server.submissions"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert item["idempotency_key"] in records[0].getMessage()
    with get_db(app).transaction(write=False) as session:
        sub = session.scalars(select(Submission)).one()
        assert sub.score_mismatch is True
        assert sub.result is not None and sub.result["total"] == 12
        assert sub.kiosk_result == {"total": 3, "band": "minimal", "flags": []}


def test_matching_kiosk_result_is_not_a_mismatch(app, client, site, kiosk, caplog):
    _, ref = identified_member(app, site, kiosk)
    item = submission_item("phq9", PHQ9_MODERATE, member_ref=ref,
                           kiosk_result={"total": 12, "band": "moderate",
                                         "flags": ["positive_screen"]})
    with caplog.at_level(logging.WARNING, logger="onsite_server.submissions"):
        (answer,) = post(client, kiosk["token"], item)
    assert answer["result"]["score_mismatch"] is False
    assert not [r for r in caplog.records if r.name == "onsite_server.submissions"]


def test_unknown_version_gets_a_422_for_that_item_only(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    answers = post(client, kiosk["token"],
                   submission_item("phq9", PHQ9_MILD, member_ref=ref, version="9.9.9"),
                   submission_item("phq9", PHQ9_MILD, member_ref=ref),
                   submission_item("nonesuch", {"1": 1}, member_ref=ref))
    assert answers[0]["status"] == "rejected"
    assert answers[0]["problem"]["status"] == 422
    assert fields(answers[0]) == ["items.0.instrument_version"]
    assert answers[1]["status"] == "accepted"
    assert fields(answers[2]) == ["items.2.instrument_id"]
    assert count(app, Submission) == 1


def test_one_bad_item_does_not_sink_the_batch(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    good = submission_item("phq9", PHQ9_MILD, member_ref=ref)
    out_of_range = submission_item("phq9", {**PHQ9_MILD, "3": 7}, member_ref=ref)
    naive_time = submission_item("phq9", PHQ9_MILD, member_ref=ref,
                                 taken_at="2026-11-27T09:00:00")
    unknown_field = submission_item("phq9", PHQ9_MILD, member_ref=ref, colour="blue")
    missing_answer = submission_item("phq9", {k: v for k, v in PHQ9_MILD.items() if k != "5"},
                                     member_ref=ref)
    bad_value_type = submission_item("phq9", {**PHQ9_MILD, "2": [1]}, member_ref=ref)
    both = submission_item("phq9", PHQ9_MILD, member_ref=ref, anonymous=True)
    neither = submission_item("phq9", PHQ9_MILD)
    neither.pop("anonymous")
    bad_ref = submission_item("phq9", PHQ9_MILD, member_ref="not-a-ref")
    answers = post(client, kiosk["token"], good, out_of_range, naive_time, unknown_field,
                   missing_answer, bad_value_type, both, neither, bad_ref)
    assert answers[0]["status"] == "accepted"
    assert all(a["status"] == "rejected" for a in answers[1:])
    assert fields(answers[1]) == ["items.1.answers.3"]
    assert fields(answers[2]) == ["items.2.taken_at"]
    assert fields(answers[3]) == ["items.3.colour"]
    assert fields(answers[4]) == ["items.4.answers.5"]
    assert fields(answers[5]) == ["items.5.answers.2"]
    assert fields(answers[6]) == ["items.6.member_ref"]
    assert fields(answers[7]) == ["items.7.member_ref"]
    assert fields(answers[8]) == ["items.8.member_ref"]
    assert answers[1]["key"] == out_of_range["idempotency_key"]
    assert count(app, Submission) == 1
    # A rejected key was not consumed: fixed, it is accepted.
    out_of_range["answers"]["3"] = 1
    (fixed,) = post(client, kiosk["token"], out_of_range)
    assert fixed["status"] == "accepted"


def test_malformed_envelope_is_a_422_naming_the_field(app, client, kiosk):
    headers = auth(kiosk["token"])
    resp = client.post(URL, json={"items": []}, headers=headers)
    assert resp.status_code == 422
    assert [e["field"] for e in resp.get_json()["errors"]] == ["items"]
    good = submission_item("phq9", PHQ9_MILD)
    resp = client.post(URL, json={"items": [good], "extra": 1}, headers=headers)
    assert resp.status_code == 422
    assert [e["field"] for e in resp.get_json()["errors"]] == ["extra"]
    assert resp.get_json()["crisis"] == [] and resp.get_json()["crisis_recorded"] is False
    assert count(app, Submission) == 0


def test_an_entry_that_is_not_an_object_gets_its_own_answer(app, client, kiosk):
    """Envelope defects go item by item: the good neighbour is still filed."""
    good = submission_item("phq9", PHQ9_MILD, anonymous=True)
    resp = client.post(URL, json={"items": [good, 7, "x", None]}, headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    answers = resp.get_json()["results"]
    assert [a["status"] for a in answers] == ["accepted", "rejected", "rejected", "rejected"]
    assert [fields(a) for a in answers[1:]] == [["items.1"], ["items.2"], ["items.3"]]
    assert count(app, Submission) == 1


def test_entries_beyond_the_batch_limit_are_answered_one_by_one(app, client, kiosk):
    override(app, MAX_BATCH=2)  # a site may configure a smaller batch
    items = [submission_item("phq9", PHQ9_MILD, anonymous=True) for _ in range(3)]
    resp = client.post(URL, json={"items": items}, headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    answers = resp.get_json()["results"]
    assert [a["status"] for a in answers] == ["accepted", "accepted", "rejected"]
    assert fields(answers[2]) == ["items.2"]
    assert "send it again" in answers[2]["problem"]["errors"][0]["message"]
    assert count(app, Submission) == 2


def test_requires_a_device_token(client):
    resp = client.post(URL, json={"items": [submission_item("phq9", PHQ9_MILD)]})
    assert resp.status_code == 401


# --------------------------------------------------------------------------- idempotency


def test_replay_returns_the_first_answer_and_stores_nothing(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    items = [submission_item("phq9", PHQ9_ITEM9, member_ref=ref),
             submission_item("phq9", PHQ9_ITEM9)]
    first = post(client, kiosk["token"], *items)
    tables = (Submission, Referral, OutboxMessage, AuditLog, CrisisAlert)
    before = {m: count(app, m) for m in tables}
    assert before[CrisisAlert] == 1
    again = post(client, kiosk["token"], *items)
    assert [a["status"] for a in again] == ["replayed", "replayed"]
    for one, two in zip(first, again, strict=True):
        assert two["key"] == one["key"]
        assert two["result"] == one["result"]
    assert {m: count(app, m) for m in tables} == before
    (referral,) = open_referrals(app)
    assert referral.version == 1


def test_same_key_with_a_different_body_is_a_conflict(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    item = submission_item("phq9", PHQ9_MILD, member_ref=ref)
    post(client, kiosk["token"], item)
    changed = {**item, "answers": PHQ9_SEVERE}
    (answer,) = post(client, kiosk["token"], changed)
    assert answer["status"] == "conflict"
    assert answer["problem"]["status"] == 409
    assert fields(answer) == ["items.0.idempotency_key"]
    assert count(app, Submission) == 1
    (referral,) = open_referrals(app)
    assert referral.priority == "routine"  # the severe body was not folded in


def test_duplicate_key_inside_one_batch(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    item = submission_item("phq9", PHQ9_MILD, member_ref=ref)
    answers = post(client, kiosk["token"], item, item, {**item, "answers": PHQ9_SEVERE})
    assert [a["status"] for a in answers] == ["accepted", "replayed", "conflict"]
    assert count(app, Submission) == 1


def test_concurrent_replays_of_the_same_key_store_once(live_server, database_url):
    token, ref = live_kiosk_and_member(live_server, database_url)
    body = {"items": [submission_item("phq9", PHQ9_SEVERE, member_ref=ref),
                      submission_item("phq9", PHQ9_ITEM9)]}
    threads_n = 16
    outcomes = concurrent_posts(live_server.url + "/api/v1/submissions", body, token, threads_n)
    engine = create_engine(database_url)
    assert [status for status, _ in outcomes] == [200] * threads_n, outcomes
    for position in (0, 1):
        statuses = sorted(b["results"][position]["status"] for _, b in outcomes)
        assert statuses == ["accepted"] + ["replayed"] * (threads_n - 1)
        results = {repr(b["results"][position]["result"]) for _, b in outcomes}
        assert len(results) == 1  # every replay got the first answer
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 2
        assert session.scalar(select(func.count()).select_from(Referral)) == 1
        assert session.scalar(select(func.count()).select_from(CrisisAlert)) == 1
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    engine.dispose()


# --------------------------------------------------------------------------- one kiosk session

PHQ2_POSITIVE = {"1": 2, "2": 2}  # total 4 >= 3: positive, so PHQ-9 is offered next


def test_a_session_is_triaged_only_with_its_own_member_or_kiosk(app, client, site, kiosk):
    """Session facts are read by session_id alone and filtered: nobody else's items count."""
    from ..helpers import pair_kiosk

    other = pair_kiosk(app, client, site.slug)
    _, ref_a = identified_member(app, site, kiosk)
    _, ref_b = identified_member(app, site, kiosk)
    shared_session = new_key()
    post(client, other["token"],
         submission_item("phq9", PHQ9_MILD, session_id=shared_session))
    post(client, kiosk["token"],
         submission_item("phq9", PHQ9_MILD, member_ref=ref_a, session_id=shared_session))
    # Another kiosk's anonymous PHQ-9 and another member's do not count: PHQ-9 is still offered.
    (anon,) = post(client, kiosk["token"],
                   submission_item("phq2", PHQ2_POSITIVE, session_id=shared_session))
    assert anon["result"]["next_screeners"] == ["phq9"]
    (b,) = post(client, kiosk["token"],
                submission_item("phq2", PHQ2_POSITIVE, member_ref=ref_b,
                                session_id=shared_session))
    assert b["result"]["next_screeners"] == ["phq9"]
    # The same kiosk's anonymous items and the same member's do: PHQ-9 is already done.
    (anon2,) = post(client, other["token"],
                    submission_item("phq2", PHQ2_POSITIVE, session_id=shared_session))
    assert anon2["result"]["next_screeners"] == []
    (a,) = post(client, kiosk["token"],
                submission_item("phq2", PHQ2_POSITIVE, member_ref=ref_a,
                                session_id=shared_session))
    assert a["result"]["next_screeners"] == []


# --------------------------------------------------------------------------- one open referral


def test_findings_fold_into_one_referral_across_instruments_and_sessions(
        app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    morning = new_key()
    (a,) = post(client, kiosk["token"],
                submission_item("phq9", PHQ9_MILD, member_ref=ref, session_id=morning))
    referral_id = a["result"]["referral"]["referral_id"]
    assert a["result"]["referral"]["priority"] == "routine"
    (b,) = post(client, kiosk["token"],
                submission_item("gad7", GAD7_MODERATE, member_ref=ref, session_id=morning))
    assert b["result"]["referral"]["referral_id"] == referral_id
    assert b["result"]["referral"]["priority"] == "soon"
    assert b["result"]["referral"]["version"] == 2
    # A later check-up, a physical finding: stage 2 blood pressure (Whelton 2017).
    (c,) = post(client, kiosk["token"],
                submission_item("blood_pressure", {"systolic": 150, "diastolic": 85},
                                member_ref=ref))
    assert c["result"]["score"]["band"] == "stage_2"
    assert c["result"]["referral"]["referral_id"] == referral_id
    (referral,) = open_referrals(app)
    assert {"health_coaching", "behavioral_health", "eap", "disease_management"} <= set(
        referral.programs)
    assert referral.version == 3
    codes = {r["code"] for r in referral.proposal["reasons"]}
    assert {"phq9_mild", "gad7_moderate_or_severe", "bp_stage_2"} <= codes
    with get_db(app).transaction(write=False) as session:
        # One pending outbox row per referral, pointing at the latest version.
        (row,) = session.scalars(select(OutboxMessage)).all()
        assert row.key == f"referral:{referral_id}:v3"
        assert row.priority == 5 and row.payload["priority"] == "soon"


def test_priority_escalates_and_never_lowers(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    (a,) = post(client, kiosk["token"], submission_item("phq9", PHQ9_MILD, member_ref=ref))
    assert a["result"]["referral"]["priority"] == "routine"
    (b,) = post(client, kiosk["token"], submission_item("phq9", PHQ9_SEVERE, member_ref=ref))
    assert b["result"]["referral"]["priority"] == "urgent"
    (c,) = post(client, kiosk["token"], submission_item("phq9", PHQ9_MILD, member_ref=ref))
    assert c["result"]["score"]["band"] == "mild"
    assert c["result"]["referral"]["priority"] == "urgent"
    (referral,) = open_referrals(app)
    assert referral.priority == "urgent"


def test_no_finding_no_referral_and_closed_referral_is_not_reused(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    (a,) = post(client, kiosk["token"],
                submission_item("phq9", phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), member_ref=ref))
    assert a["result"]["referral"] is None
    assert count(app, Referral) == 0
    (b,) = post(client, kiosk["token"], submission_item("phq9", PHQ9_MILD, member_ref=ref))
    with get_db(app).transaction() as session:
        session.scalars(select(Referral)).one().status = "closed"
    (c,) = post(client, kiosk["token"], submission_item("phq9", PHQ9_MILD, member_ref=ref))
    assert c["result"]["referral"]["referral_id"] != b["result"]["referral"]["referral_id"]
    assert count(app, Referral) == 2 and len(open_referrals(app)) == 1


def test_anonymous_items_never_create_a_referral(app, client, kiosk):
    (a,) = post(client, kiosk["token"], submission_item("phq9", PHQ9_SEVERE))
    assert a["status"] == "accepted" and a["result"]["score"]["band"] == "severe"
    assert a["result"]["referral"] is None
    assert count(app, Referral) == 0 and count(app, OutboxMessage) == 0
    with get_db(app).transaction(write=False) as session:
        assert session.scalars(select(Submission)).one().member_id is None


# --------------------------------------------------------------------------- crisis


def test_crisis_item_gets_guidance_priority_and_jumps_the_queue(app, client, site, kiosk):
    _, routine_ref = identified_member(app, site, kiosk)
    post(client, kiosk["token"], submission_item("phq9", PHQ9_MILD, member_ref=routine_ref))
    _, ref = identified_member(app, site, kiosk)
    (answer,) = post(client, kiosk["token"], submission_item("phq9", PHQ9_ITEM9, member_ref=ref))
    result = answer["result"]
    (guidance,) = result["crisis"]
    assert guidance["trigger"] == "phq9_item9"
    assert set(guidance["text"]) >= {"en", "es"} and set(guidance["title"]) >= {"en", "es"}
    phones = {r.get("phone") for r in guidance["resources"]}
    assert {"988", "911"} <= phones  # DESIGN.md 3.6: 988 Lifeline, 911 for immediate danger
    assert result["referral"]["priority"] == "crisis"
    assert result["referral"]["forward_now"] is True
    with get_db(app).transaction(write=False) as session:
        crisis_ref = session.scalars(select(Referral).where(
            Referral.public_id == result["referral"]["referral_id"])).one()
        assert crisis_ref.forward_now is True and crisis_ref.priority == "crisis"
        queue = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")
                                .order_by(OutboxMessage.priority, OutboxMessage.id)).all()
        assert [row.referral_id for row in queue][0] == crisis_ref.id
        assert queue[0].priority == 0 and queue[0].kind == "referral"
        assert queue[0].key == f"referral:{crisis_ref.public_id}:v1"
        assert queue[0].payload["priority"] == "crisis"
        assert queue[0].payload["crisis_triggers"] == ["phq9_item9"]
        assert queue[1].priority == 10  # the routine referral waits behind it
        raised = session.scalars(select(AuditLog).where(AuditLog.action == "crisis.raised")).one()
        assert raised.subject == f"referral:{crisis_ref.public_id}"
        assert raised.detail == {"trigger": "phq9_item9"}
        assert count(app, CrisisAlert) == 0  # identified: the referral, not an anonymous alert


def test_hypertensive_crisis_gets_aha_guidance(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    (answer,) = post(client, kiosk["token"],
                     submission_item("blood_pressure", {"systolic": 185, "diastolic": 100},
                                     member_ref=ref))
    (guidance,) = answer["result"]["crisis"]
    assert guidance["trigger"] == "hypertensive_crisis"
    assert "911" in guidance["text"]["en"] and "911" in guidance["text"]["es"]
    assert answer["result"]["referral"]["priority"] == "crisis"


def test_anonymous_crisis_raises_an_alert_without_identity(app, client, kiosk):
    item = submission_item("phq9", PHQ9_ITEM9, taken_at="2026-11-27T14:05:00+00:00")
    (answer,) = post(client, kiosk["token"], item)
    assert answer["result"]["crisis"][0]["trigger"] == "phq9_item9"
    assert answer["result"]["crisis_alert"] is True
    assert answer["result"]["referral"] is None
    assert count(app, Referral) == 0 and count(app, OutboxMessage) == 0
    with get_db(app).transaction(write=False) as session:
        alert = session.scalars(select(CrisisAlert)).one()
        assert alert.trigger == "phq9_item9"
        assert alert.kiosk.public_id == kiosk["kiosk_id"]
        assert alert.raised_at.isoformat() == "2026-11-27T14:05:00+00:00"
        # The alert row holds place and time only.
        assert {c.name for c in CrisisAlert.__table__.columns} == {
            "id", "idempotency_key", "kiosk_id", "trigger", "raised_at", "received_at",
            "clock_suspect", "from_rejected_item", "acknowledged_at", "acknowledged_by", "note"}
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "crisis.raised")).one()
        assert audit.subject is None and audit.detail == {"trigger": "phq9_item9"}


def test_skipped_item_9_gets_the_gentle_notice_not_crisis(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    answers = {k: v for k, v in PHQ9_SEVERE.items() if k != "9"}
    (answer,) = post(client, kiosk["token"],
                     submission_item("phq9", answers, member_ref=ref, skipped=["9"]))
    result = answer["result"]
    assert result["scored"] is False and result["score"] is None
    assert result["crisis"] == [] and result["crisis_alert"] is False
    assert [n["code"] for n in result["notices"]] == ["phq9_item9_skipped"]
    assert "988" in result["notices"][0]["text"]["en"]
    assert result["referral"] is None  # an unscored screener yields no finding
    with get_db(app).transaction(write=False) as session:
        sub = session.scalars(select(Submission)).one()
        assert sub.result is None and sub.skipped == ["9"] and sub.crisis is False


def test_positive_item_9_with_another_item_skipped_is_still_a_crisis(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    answers = {k: v for k, v in PHQ9_ITEM9.items() if k != "4"}
    (answer,) = post(client, kiosk["token"],
                     submission_item("phq9", answers, member_ref=ref, skipped=["4"]))
    result = answer["result"]
    assert result["scored"] is False
    assert [g["trigger"] for g in result["crisis"]] == ["phq9_item9"]
    assert result["referral"]["priority"] == "crisis"


def test_diastolic_crisis_with_systolic_skipped_is_still_a_crisis(app, client, site, kiosk):
    # AHA: diastolic > 120 alone is a hypertensive crisis; a blank systolic must not hide it.
    _, ref = identified_member(app, site, kiosk)
    (answer,) = post(client, kiosk["token"],
                     submission_item("blood_pressure", {"diastolic": 125}, member_ref=ref,
                                     skipped=["systolic"]))
    result = answer["result"]
    assert result["scored"] is False
    assert [g["trigger"] for g in result["crisis"]] == ["hypertensive_crisis"]
    assert result["referral"]["priority"] == "crisis"


def test_skipped_lists_are_checked(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    partial = {k: v for k, v in PHQ9_MILD.items() if k != "9"}
    answers = post(
        client, kiosk["token"],
        submission_item("phq9", partial, member_ref=ref, skipped=["42"]),
        submission_item("phq9", PHQ9_MILD, member_ref=ref, skipped=["9"]),
        submission_item("phq9", {**partial, "2": 9}, member_ref=ref, skipped=["9"]),
    )
    assert "items.0.skipped.0" in fields(answers[0])
    assert fields(answers[1]) == ["items.1.answers.9"]
    assert fields(answers[2]) == ["items.2.answers.2"]
    assert count(app, Submission) == 0


def test_member_ref_from_another_kiosk_of_the_site_files_late(app, client, site, kiosk):
    """A genuine reference of a kiosk of this site (since re-paired) still files its items."""
    from ..helpers import pair_kiosk

    other = pair_kiosk(app, client, site.slug)
    _, ref_for_other = identified_member(app, site, other)
    (answer,) = post(client, kiosk["token"],
                     submission_item("phq9", PHQ9_MILD, member_ref=ref_for_other))
    assert answer["status"] == "accepted"
    with get_db(app).transaction(write=False) as session:
        audit = session.scalars(select(AuditLog).where(
            AuditLog.action == "submission.received")).one()
        assert audit.detail["late"] == "other_kiosk"


def test_member_ref_from_another_sites_kiosk_is_refused(app, client, site, kiosk):
    from ..helpers import pair_kiosk

    with get_db(app).transaction() as session:
        here = session.get(Site, site.id)
        assert here is not None
        gen_site(session, "sister-site", employer=here.employer)
    sister = pair_kiosk(app, client, "sister-site")
    _, ref_for_sister = identified_member(app, site, sister)
    (answer,) = post(client, kiosk["token"],
                     submission_item("phq9", PHQ9_MILD, member_ref=ref_for_sister))
    assert answer["status"] == "rejected"
    assert fields(answer) == ["items.0.member_ref"]


def test_absurd_kiosk_total_is_a_named_rejection_not_a_500(app, client, site, kiosk):
    # Found in review: an unbounded int overflowed float comparison and sank the batch.
    _, ref = identified_member(app, site, kiosk)
    item = submission_item("phq9", PHQ9_MILD, member_ref=ref,
                           kiosk_result={"total": 10**400, "band": "mild", "flags": []})
    (answer,) = post(client, kiosk["token"], item)
    assert answer["status"] == "rejected"
    assert fields(answer) == ["items.0.kiosk_result.total"]


def test_key_in_capitals_is_the_same_key(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    item = submission_item("phq9", PHQ9_MILD, member_ref=ref)
    first = post(client, kiosk["token"], item)
    shouted = {**item, "idempotency_key": item["idempotency_key"].upper()}
    again = post(client, kiosk["token"], shouted)
    assert [first[0]["status"], again[0]["status"]] == ["accepted", "replayed"]
    assert count(app, Submission) == 1


def test_crisis_with_an_unusable_member_ref_still_alerts_staff(app, client, site, kiosk):
    """DESIGN.md §3: a crisis never fails silently, even when the member ref is refused."""
    from ..helpers import pair_kiosk

    with get_db(app).transaction() as session:
        here = session.get(Site, site.id)
        assert here is not None
        gen_site(session, "sister-site", employer=here.employer)
    sister = pair_kiosk(app, client, "sister-site")
    _, ref_for_sister = identified_member(app, site, sister)
    item = submission_item("phq9", PHQ9_ITEM9, member_ref=ref_for_sister)
    (answer,) = post(client, kiosk["token"], item)
    assert answer["status"] == "rejected"
    assert fields(answer) == ["items.0.member_ref"]
    assert [g["trigger"] for g in answer["crisis"]] == ["phq9_item9"]
    assert answer["crisis_recorded"] is True
    assert count(app, CrisisAlert) == 1
    assert count(app, Referral) == 0 and count(app, Submission) == 0
    post(client, kiosk["token"], item)  # the kiosk retries: still one alert
    assert count(app, CrisisAlert) == 1


def test_member_of_another_employer_is_refused(app, client, kiosk):
    with get_db(app).transaction() as session:
        other_site = gen_site(session, "elsewhere")
        stranger = gen_member(session, other_site)
        kiosk_row = session.scalars(select(Kiosk).where(
            Kiosk.public_id == kiosk["kiosk_id"])).one()
        ref = make_member_ref(app.config["SECRET_KEY"], stranger, kiosk_row)
    (answer,) = post(client, kiosk["token"], submission_item("phq9", PHQ9_MILD, member_ref=ref))
    assert fields(answer) == ["items.0.member_ref"]


# --------------------------------------------------------------------------- unscored items


def test_declined_difficulty_question_leaves_the_phq9_scored(app, client, site, kiosk):
    # PHQ-9 1.1.0 item 10 is unscored and optional: "Prefer not to answer" is no partial.
    _, ref = identified_member(app, site, kiosk)
    answers = post(
        client, kiosk["token"],
        submission_item("phq9", PHQ9_MODERATE, member_ref=ref, version="1.1.0", skipped=["10"]),
        submission_item("phq9", {**PHQ9_MODERATE, "10": 3}, member_ref=ref, version="1.1.0"),
        submission_item("phq9", PHQ9_MODERATE, member_ref=ref, version="1.1.0"),
    )
    assert [a["status"] for a in answers] == ["accepted"] * 3
    for answer in answers:
        result = answer["result"]
        assert result["scored"] is True and result["notices"] == []
        assert result["score"]["total"] == 12 and result["score"]["band"] == "moderate"
        assert result["referral"]["priority"] == "soon"


def test_difficulty_answer_is_checked_and_never_both_given_and_skipped(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    answers = post(
        client, kiosk["token"],
        submission_item("phq9", {**PHQ9_MILD, "10": 4}, member_ref=ref, version="1.1.0"),
        submission_item("phq9", {**PHQ9_MILD, "10": 1}, member_ref=ref, version="1.1.0",
                        skipped=["10"]),
        # 1.0.0, the version items queued offline carry, has no item 10.
        submission_item("phq9", {**PHQ9_MILD, "10": 1}, member_ref=ref),
    )
    assert fields(answers[0]) == ["items.0.answers.10"]
    assert fields(answers[1]) == ["items.1.answers.10"]
    assert fields(answers[2]) == ["items.2.answers.10"]
    assert count(app, Submission) == 0


def test_partial_phq9_with_difficulty_declined_still_finds_the_crisis(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    answers = {k: v for k, v in PHQ9_ITEM9.items() if k != "4"}
    (answer,) = post(client, kiosk["token"],
                     submission_item("phq9", answers, member_ref=ref, version="1.1.0",
                                     skipped=["4", "10"]))
    result = answer["result"]
    assert result["scored"] is False
    assert [g["trigger"] for g in result["crisis"]] == ["phq9_item9"]
    assert result["referral"]["priority"] == "crisis"


def test_an_accepted_items_key_is_read_once_a_refused_ones_still_answered_with_it(
        client: FlaskClient, kiosk: dict[str, Any], monkeypatch: Any) -> None:
    """Issue 20 (P6), session 11: validation reads an accepted item's key; the key as sent is
    parsed again only to name a refused item (parsing it twice was 3.5% of a backlog)."""
    from onsite_server.services.submissions import context

    parsed: list[object] = []
    parse = context.parse_uuid

    def counted(value: object) -> str | None:
        parsed.append(value)
        return parse(value)

    monkeypatch.setattr(context, "parse_uuid", counted)
    good = [submission_item("phq9", PHQ9_MILD) for _ in range(3)]
    bad = submission_item("phq9", PHQ9_MILD, taken_at="not a time")  # refused by validation
    bad["idempotency_key"] = bad["idempotency_key"].upper()
    resp = client.post(URL, json={"items": [*good, bad]}, headers=auth(kiosk["token"]))
    answers = resp.get_json()["results"]
    assert [a["status"] for a in answers] == ["accepted"] * 3 + ["rejected"]
    assert answers[3]["key"] == bad["idempotency_key"].lower()
    assert parsed == [bad["idempotency_key"]]
