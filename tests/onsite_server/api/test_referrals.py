"""POST /referrals/consent and POST /crisis-alerts.

PHQ-9 bands: Kroenke K, Spitzer RL, Williams JB. J Gen Intern Med. 2001;16(9):606-613 (5-9 mild).
Crisis triggers and the anonymous alert: DESIGN.md 3.6.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from onsite_server.db import get_db
from onsite_server.models import AuditLog, CrisisAlert, OutboxMessage, Referral
from shared.schemas.referrals import ConsentResponse, CrisisAlertResponse

from ..helpers import auth, identified_member, new_key, submission_item

CONSENT = "/api/v1/referrals/consent"
ALERTS = "/api/v1/crisis-alerts"
PHQ9_MILD = {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 1, "7": 1, "8": 0, "9": 0}  # 7: mild


def count(app: Flask, model: type) -> int:
    with get_db(app).transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def referral(app: Flask) -> Referral:
    with get_db(app).transaction(write=False) as session:
        row = session.scalars(select(Referral)).one()
        session.expunge(row)
        return row


def consent_body(ref: str, **overrides: Any) -> dict[str, Any]:
    body = {"idempotency_key": new_key(), "member_ref": ref, "consent": True,
            "contact_method": "phone", "contact_time": "morning", "phone": "+1 555 010 2000"}
    body.update(overrides)
    return body


def error_fields(resp: Any) -> list[str]:
    return [e["field"] for e in resp.get_json()["errors"]]


def with_referral(app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any]) -> str:
    _, ref = identified_member(app, site, kiosk)
    resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                       json={"items": [submission_item("phq9", PHQ9_MILD, member_ref=ref)]})
    assert resp.get_json()["results"][0]["result"]["referral"]["version"] == 1
    return ref


# --------------------------------------------------------------------------- consent


def test_consent_attaches_to_the_open_referral(app, client, site, kiosk):
    ref = with_referral(app, client, site, kiosk)
    resp = client.post(CONSENT, json=consent_body(ref, contact_method="text",
                                                  contact_time="evening"),
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200, resp.get_json()
    answer = ConsentResponse.model_validate(resp.get_json())
    row = referral(app)
    assert answer.referral_id == row.public_id
    assert row.consent is True and row.consent_at is not None
    assert (row.contact_method, row.contact_time) == ("text", "evening")
    assert row.contact_phone == "+1 555 010 2000"
    assert row.version == 2 and answer.version == 2
    assert row.priority == "routine"  # consent changes how to reach them, not the urgency
    with get_db(app).transaction(write=False) as session:
        (outbox,) = session.scalars(select(OutboxMessage)).all()
        assert outbox.key == f"referral:{row.public_id}:v2"
        assert outbox.payload["consent"] is True and outbox.payload["contact_method"] == "text"
        # The number typed at the kiosk reaches the advocate through the outbox.
        assert outbox.payload["contact_phone"] == "+1 555 010 2000"
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "referral.updated")
                                .order_by(AuditLog.id.desc())).first()
        assert audit is not None and audit.detail["cause"] == "consent"


def test_consent_replay_and_conflict(app, client, site, kiosk):
    ref = with_referral(app, client, site, kiosk)
    body = consent_body(ref)
    first = client.post(CONSENT, json=body, headers=auth(kiosk["token"]))
    again = client.post(CONSENT, json=body, headers=auth(kiosk["token"]))
    assert again.status_code == first.status_code == 200
    assert again.get_json() == first.get_json()
    assert referral(app).version == 2  # the replay changed nothing
    audits = count(app, AuditLog)
    changed = client.post(CONSENT, json={**body, "contact_time": "afternoon"},
                          headers=auth(kiosk["token"]))
    assert changed.status_code == 409
    assert error_fields(changed) == ["idempotency_key"]
    assert referral(app).contact_time == "morning" and count(app, AuditLog) == audits


def test_consent_without_a_referral_opens_one(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    resp = client.post(CONSENT, json=consent_body(ref, contact_method="email",
                                                  email="alex@example.com", phone=None),
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200, resp.get_json()
    row = referral(app)
    assert row.status == "new" and row.priority == "routine" and row.programs == []
    assert row.consent is True and row.contact_email == "alex@example.com"
    # Later findings fold into this same referral.
    client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                json={"items": [submission_item("phq9", PHQ9_MILD, member_ref=ref)]})
    row = referral(app)
    assert row.programs == ["health_coaching"] and row.consent is True
    assert count(app, Referral) == 1


def test_declining_with_nothing_open_stores_nothing(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    resp = client.post(CONSENT, json={"idempotency_key": new_key(), "member_ref": ref,
                                      "consent": False},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    assert resp.get_json()["referral_id"] is None
    assert count(app, Referral) == 0 and count(app, OutboxMessage) == 0


def test_declining_is_recorded_on_an_open_referral(app, client, site, kiosk):
    ref = with_referral(app, client, site, kiosk)
    resp = client.post(CONSENT, json={"idempotency_key": new_key(), "member_ref": ref,
                                      "consent": False},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    row = referral(app)
    assert row.consent is False and row.contact_method is None


@pytest.mark.sqlite_only
def test_consent_bad_fields_are_named(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)  # the test roster has no phone on file
    headers = auth(kiosk["token"])
    cases = [
        (consent_body(ref, contact_method=None), ["contact_method"]),
        (consent_body(ref, contact_time=None), ["contact_time"]),
        (consent_body(ref, contact_method="pigeon"), ["contact_method"]),
        (consent_body(ref, contact_time="midnight"), ["contact_time"]),
        (consent_body(ref, phone=None), ["phone"]),
        (consent_body(ref, phone="call me"), ["phone"]),
        (consent_body(ref, contact_method="email", email="not-an-address"), ["email"]),
        (consent_body(ref, contact_method="email"), ["email"]),
        (consent_body("nonsense"), ["member_ref"]),
        (consent_body(ref, idempotency_key="123"), ["idempotency_key"]),
        (consent_body(ref, consent="maybe"), ["consent"]),
        (consent_body(ref, extra=1), ["extra"]),
    ]
    for body, expected in cases:
        resp = client.post(CONSENT, json=body, headers=headers)
        assert resp.status_code == 422, (body, resp.get_json())
        assert resp.mimetype == "application/problem+json"
        assert error_fields(resp) == expected, body
    assert count(app, Referral) == 0


@pytest.mark.sqlite_only
def test_consent_needs_a_device_token(client):
    resp = client.post(CONSENT, json={"idempotency_key": new_key(), "member_ref": "x",
                                      "consent": False})
    assert resp.status_code == 401


# --------------------------------------------------------------------------- crisis alerts


def test_kiosk_raises_an_anonymous_crisis_alert_once(app, client, kiosk):
    body = {"idempotency_key": new_key(), "trigger": "phq9_item9",
            "raised_at": "2026-11-27T10:15:00-05:00"}
    first = client.post(ALERTS, json=body, headers=auth(kiosk["token"]))
    assert first.status_code == 201, first.get_json()
    answer = CrisisAlertResponse.model_validate(first.get_json())
    assert answer.trigger == "phq9_item9"
    again = client.post(ALERTS, json=body, headers=auth(kiosk["token"]))
    assert again.status_code == 201 and again.get_json() == first.get_json()
    with get_db(app).transaction(write=False) as session:
        alert = session.scalars(select(CrisisAlert)).one()
        assert alert.kiosk.public_id == kiosk["kiosk_id"]
        assert alert.raised_at.isoformat() == "2026-11-27T15:15:00+00:00"  # stored in UTC
        assert session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "crisis.raised")) == 1
    conflict = client.post(ALERTS, json={**body, "trigger": "hypertensive_crisis"},
                           headers=auth(kiosk["token"]))
    assert conflict.status_code == 409
    assert error_fields(conflict) == ["idempotency_key"]
    assert count(app, CrisisAlert) == 1 and count(app, Referral) == 0


def test_crisis_alert_bad_fields_are_named(app, client, kiosk):
    headers = auth(kiosk["token"])
    good = {"idempotency_key": new_key(), "trigger": "hypertensive_crisis",
            "raised_at": "2026-11-27T10:15:00Z"}
    cases = [
        ({**good, "trigger": "bored"}, ["trigger"]),
        ({**good, "raised_at": "2026-11-27T10:15:00"}, ["raised_at"]),
        ({**good, "member_ref": "x"}, ["member_ref"]),  # no identity, ever
        ({k: v for k, v in good.items() if k != "idempotency_key"}, ["idempotency_key"]),
    ]
    for body, expected in cases:
        resp = client.post(ALERTS, json=body, headers=headers)
        assert resp.status_code == 422, body
        assert error_fields(resp) == expected
    assert client.post(ALERTS, json=good).status_code == 401
    # Refused bodies with a readable trigger still alerted staff (a crisis never fails
    # silently): one alert for the good key (sent twice), one for the body without a key.
    assert count(app, CrisisAlert) == 2


def test_refused_crisis_alert_with_a_readable_trigger_is_still_raised(app, client, kiosk):
    headers = auth(kiosk["token"])
    body = {"idempotency_key": new_key(), "trigger": "phq9_item9", "raised_at": "soon"}
    resp = client.post(ALERTS, json=body, headers=headers)
    assert resp.status_code == 422 and error_fields(resp) == ["raised_at"]
    problem = resp.get_json()
    assert problem["crisis_recorded"] is True
    assert [g["trigger"] for g in problem["crisis"]] == ["phq9_item9"]
    with get_db(app).transaction(write=False) as session:
        alert = session.scalars(select(CrisisAlert)).one()
        assert alert.trigger == "phq9_item9" and alert.from_rejected_item is True
        assert alert.clock_suspect is True  # the kiosk's time could not be read
    client.post(ALERTS, json=body, headers=headers)  # a resend raises nothing new
    fixed = {**body, "raised_at": "2026-11-27T10:15:00Z"}
    assert client.post(ALERTS, json=fixed, headers=headers).status_code == 201
    assert count(app, CrisisAlert) == 1
    unreadable = client.post(ALERTS, json={"trigger": "bored"}, headers=headers)
    assert unreadable.status_code == 422 and unreadable.get_json()["crisis_recorded"] is False
    assert count(app, CrisisAlert) == 1
