"""Submissions that carry an id typed while the kiosk was offline (issue 8, "server down").

The server matches the id and birth date when the items arrive. Its answer must be the same
whether or not they matched (the path must not probe the roster); a match files the items
(and a crisis) for the member, a miss files them as anonymous (a crisis as a staff alert);
matches are capped per kiosk and audited like identify.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import AuditLog, CrisisAlert, Referral, Site, Submission
from onsite_server.services.identify import OFFLINE_ACTION, OFFLINE_CAPPED_ACTION

from ..helpers import auth, gen_member, sql_run, submission_item

URL = "/api/v1/submissions"
BIRTH = date(1979, 8, 9)
PHQ9_MODERATE = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "8": 2, "9": 0}
PHQ9_ITEM9 = {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0, "6": 0, "7": 0, "8": 0, "9": 2}


def offline_item(answers: dict[str, Any], typed_id: str, birth: date = BIRTH,
                 **extra: Any) -> dict[str, Any]:
    """A PHQ-9 item that names its member by the id and birth date typed offline."""
    item = submission_item("phq9", answers, **extra)
    del item["anonymous"]
    item["offline_identity"] = {"id": typed_id, "birth_date": birth.isoformat()}
    return item


def post(client: FlaskClient, token: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
    resp = client.post(URL, json={"items": list(items)}, headers=auth(token))
    assert resp.status_code == 200, resp.get_json()
    results: list[dict[str, Any]] = resp.get_json()["results"]
    return results


@pytest.fixture
def member_id(app: Flask, site: Site) -> str:
    """A roster member of the site's employer with employee id E5150."""
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        return gen_member(session, row, "E5150", birth_date=BIRTH).public_id


def _without_key(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "key"}


def _audit(app: Flask, action: str) -> list[AuditLog]:
    with get_db(app).transaction() as session:
        rows = list(session.scalars(select(AuditLog).where(AuditLog.action == action)))
        session.expunge_all()
        return rows


def _submission(app: Flask, key: str) -> Submission:
    with get_db(app).transaction() as session:
        row = session.scalars(select(Submission).where(Submission.idempotency_key == key)).one()
        session.expunge(row)
        return row


def test_a_match_files_for_the_member_and_a_miss_as_anonymous_with_one_answer(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], member_id: str) -> None:
    hit = offline_item(PHQ9_MODERATE, "e5150")  # matched upper-cased, as identify does
    miss = offline_item(PHQ9_MODERATE, "E5150", birth=date(1979, 8, 10))
    answers = post(client, kiosk["token"], hit, miss)
    assert [a["status"] for a in answers] == ["accepted", "accepted"]
    assert _without_key(answers[0]) == _without_key(answers[1])
    assert answers[0]["result"]["referral"] is None
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral)).one()
        assert referral.member.public_id == member_id and referral.priority == "soon"
    assert _submission(app, hit["idempotency_key"]).member_id == referral.member_id
    assert _submission(app, miss["idempotency_key"]).member_id is None
    audits = _audit(app, OFFLINE_ACTION)
    assert sorted(a.detail["outcome"] for a in audits) == ["match", "no_match"]
    assert {a.subject for a in audits} == {f"member:{member_id}", None}
    # The typed id and birth date are stored nowhere: only the member's public id, on a match.
    for audit in audits:
        assert "E5150" not in str(audit.detail) and "1979" not in str(audit.detail)


def test_a_crisis_reaches_the_member_or_staff_and_the_answers_still_agree(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], member_id: str) -> None:
    hit = offline_item(PHQ9_ITEM9, "E5150")
    miss = offline_item(PHQ9_ITEM9, "NOBODY")
    answers = post(client, kiosk["token"], hit, miss)
    assert _without_key(answers[0]) == _without_key(answers[1])
    assert answers[0]["crisis_recorded"] is True
    assert [g["trigger"] for g in answers[0]["crisis"]] == ["phq9_item9"]
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral)).one()
        assert referral.priority == "crisis" and referral.member.public_id == member_id
        alerts = list(session.scalars(select(CrisisAlert)))
        assert [a.trigger for a in alerts] == ["phq9_item9"]  # the unmatched one only


def test_a_refused_item_with_a_crisis_still_reaches_the_matched_member(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], member_id: str) -> None:
    bad = offline_item(PHQ9_ITEM9, "E5150", version="9.9.9")  # no such version
    answers = post(client, kiosk["token"], bad)
    assert answers[0]["status"] == "rejected" and answers[0]["crisis_recorded"] is True
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral)).one()
        assert referral.priority == "crisis" and referral.member.public_id == member_id
        assert list(session.scalars(select(CrisisAlert))) == []


def test_one_match_per_person_per_batch_and_a_replay_is_not_matched_again(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], member_id: str) -> None:
    session_id = "0b7c1f0e-8a4d-4b57-9a53-1c2d3e4f5a6b"
    first = offline_item(PHQ9_MODERATE, "E5150", session_id=session_id)
    second = offline_item(PHQ9_MODERATE, "e5150", session_id=session_id)
    assert [a["status"] for a in post(client, kiosk["token"], first, second)] == \
        ["accepted", "accepted"]
    again = post(client, kiosk["token"], first)
    assert again[0]["status"] == "replayed"
    assert len(_audit(app, OFFLINE_ACTION)) == 1


def test_matches_are_capped_per_kiosk_and_past_the_cap_items_are_anonymous(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], member_id: str) -> None:
    override(app, OFFLINE_IDENTIFY_PER_DAY=1)
    spent = offline_item(PHQ9_MODERATE, "SOMEONE-ELSE")
    capped = offline_item(PHQ9_MODERATE, "E5150")
    answers = post(client, kiosk["token"], spent, capped)
    assert _without_key(answers[0]) == _without_key(answers[1])
    assert _submission(app, capped["idempotency_key"]).member_id is None
    assert len(_audit(app, OFFLINE_ACTION)) == 1
    assert [a.detail["outcome"] for a in _audit(app, OFFLINE_CAPPED_ACTION)] == ["capped"]


@pytest.mark.parametrize(("change", "field"), [
    ({"offline_identity": {"id": "E5150", "birth_date": "09/08/1979"}},
     "items.0.offline_identity.birth_date"),
    ({"offline_identity": {"id": "", "birth_date": "1979-08-09"}}, "items.0.offline_identity.id"),
    ({"member_ref": "x"}, "items.0.member_ref"),
    ({"anonymous": True}, "items.0.member_ref"),
])
@pytest.mark.sqlite_only
def test_a_malformed_or_doubled_identity_is_refused_naming_the_field(
        client: FlaskClient, kiosk: dict[str, Any], change: dict[str, Any], field: str) -> None:
    item = offline_item(PHQ9_MODERATE, "E5150") | change
    answer = post(client, kiosk["token"], item)[0]
    assert answer["status"] == "rejected"
    assert field in [e["field"] for e in answer["problem"]["errors"]]


CONSENT = "/api/v1/referrals/consent"


def _consent(typed_id: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "offline_identity": {"id": typed_id,
                                                         "birth_date": BIRTH.isoformat()},
            "consent": True, "contact_method": "email", "contact_time": "morning",
            "email": "member@example.com", **extra}


def test_consent_typed_offline_reaches_the_matched_member_with_one_answer(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], member_id: str) -> None:
    hit = client.post(CONSENT, json=_consent("E5150", "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"),
                      headers=auth(kiosk["token"]))
    miss = client.post(CONSENT, json=_consent("NOBODY", "7f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"),
                       headers=auth(kiosk["token"]))
    assert hit.status_code == miss.status_code == 200
    assert hit.get_json() == miss.get_json()
    assert hit.get_json()["referral_id"] is None
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral)).one()
        assert referral.member.public_id == member_id
        assert (referral.consent, referral.contact_method) == (True, "email")
    assert sorted(a.detail["outcome"] for a in _audit(app, OFFLINE_ACTION)) == \
        ["match", "no_match"]


def test_offline_consent_refuses_only_what_does_not_depend_on_the_roster(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], member_id: str) -> None:
    key = "8f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
    missing_time = client.post(CONSENT, json=_consent("E5150", key, contact_time=None),
                               headers=auth(kiosk["token"]))
    assert missing_time.status_code == 422
    both = client.post(CONSENT, json=_consent("E5150", key, member_ref="x"),
                       headers=auth(kiosk["token"]))
    assert both.status_code == 422
    assert [e["field"] for e in both.get_json()["errors"]] == ["member_ref"]
    # No email on the roster and none typed: answered like any other, audited as unusable.
    no_channel = client.post(CONSENT, json=_consent("E5150", key, email=None),
                             headers=auth(kiosk["token"]))
    assert no_channel.status_code == 200
    assert [a.detail for a in _audit(app, "referral.consent_unusable")] == \
        [{"fields": ["email"]}]


def test_a_batchs_offline_attempts_are_audited_at_the_kiosks_site_in_one_statement(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], site: Site,
        member_id: str) -> None:
    """Each attempt keeps its own audit row, at the kiosk's site, without a query per row."""
    override(app, OFFLINE_IDENTIFY_PER_DAY=1)
    items = [offline_item(PHQ9_MODERATE, typed) for typed in ("E5150", "X-1", "X-2", "X-3")]
    with sql_run(app) as statements:
        answers = post(client, kiosk["token"], *items)
    assert [a["status"] for a in answers] == ["accepted"] * 4
    rows = _audit(app, OFFLINE_ACTION) + _audit(app, OFFLINE_CAPPED_ACTION)
    assert [(r.subject, r.detail["outcome"]) for r in rows] == [
        (f"member:{member_id}", "match"), (None, "capped"), (None, "capped"), (None, "capped")]
    assert {r.site_id for r in rows} == {site.id}
    # The ORM's audit listener looks up each entry's site with a statement of its own; the
    # attempts' rows go in with their site already known, all four in one INSERT.
    assert not [s for s in statements if s.startswith("SELECT (SELECT kiosk.site_id")]
    attempts = [s for s in statements if s.startswith("INSERT INTO audit_log")]
    # The attempts; then the member's referral with the batch's receipt.
    assert len(attempts) == 2


def test_a_batchs_typed_ids_are_looked_up_together_each_matched_as_on_its_own(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], site: Site,
        member_id: str) -> None:
    """One statement finds every member the batch's ids name; each id is matched as alone.

    Issue 20 (P6), session 11: one lookup per person was a tenth of a drained backlog's
    server time. An employee-id match still wins over someone else's badge id, an id still
    matches upper-cased, and a wrong birth date still misses.
    """
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        by_badge = gen_member(session, row, "E7", badge_id="BADGE-1",
                              birth_date=date(1990, 2, 3)).public_id
        by_employee = gen_member(session, row, "BADGE-1", birth_date=date(1991, 4, 5)).public_id
    items = [
        offline_item(PHQ9_MODERATE, "e5150"),                            # A, upper-cased
        offline_item(PHQ9_MODERATE, "E5150", birth=date(1979, 8, 10)),  # A's id, wrong date
        offline_item(PHQ9_MODERATE, "badge-1", birth=date(1990, 2, 3)),  # B by badge
        offline_item(PHQ9_MODERATE, "BADGE-1", birth=date(1991, 4, 5)),  # C by employee id
        offline_item(PHQ9_MODERATE, "X-9"),                              # nobody
    ]
    with sql_run(app) as statements:
        answers = post(client, kiosk["token"], *items)
    assert [a["status"] for a in answers] == ["accepted"] * 5
    rows = _audit(app, OFFLINE_ACTION)
    assert [(r.subject, r.detail["outcome"]) for r in rows] == [
        (f"member:{member_id}", "match"), (None, "no_match"),
        (f"member:{by_badge}", "match"), (f"member:{by_employee}", "match"), (None, "no_match")]
    # Each item is filed for the member its id matched, the misses as anonymous.
    with get_db(app).transaction() as session:
        from onsite_server.models import Member
        filed = []
        for item in items:
            stored = session.scalars(select(Submission).where(
                Submission.idempotency_key == item["idempotency_key"])).one()
            member = session.get(Member, stored.member_id) if stored.member_id else None
            filed.append(member.public_id if member else None)
    assert filed == [member_id, None, by_badge, by_employee, None]
    lookups = [s for s in statements
               if s.startswith("SELECT member.public_id") and "badge_id" in s]
    assert len(lookups) == 1
