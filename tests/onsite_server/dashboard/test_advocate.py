"""The onsite advocate view, the crisis banner, and who may see individual health data."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import (
    Advocate,
    AuditLog,
    CrisisAlert,
    Kiosk,
    Member,
    OutboxMessage,
    Referral,
    Submission,
    utcnow,
)

from ..helpers import gen_advocate, gen_member
from .helpers import Staff, gen_staff, login, post_form

# Who may see which page: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only


def _referral(app: Flask, site: Any, advocate_id: int | None, *, priority: str = "soon",
              first_name: str = "Alex", with_result: bool = False) -> dict[str, str]:
    with get_db(app).transaction() as session:
        advocate = session.get(Advocate, advocate_id) if advocate_id else None
        member = gen_member(session, site, first_name=first_name, advocate=advocate)
        proposal: dict[str, Any] = {"reasons": [{"code": "phq9_moderate", "text": {
            "en": "PHQ-9 moderate", "es": "PHQ-9 moderada"}}]}
        if priority == "crisis":
            proposal["crisis"] = [{"trigger": "phq9_item9"}]
        referral = Referral(member_id=member.id, advocate_id=advocate_id, status="sent",
                            priority=priority, proposal=proposal, version=1,
                            contact_method="phone", contact_time="morning",
                            contact_phone="+1-555-0142")
        session.add(referral)
        session.flush()
        if with_result:
            kiosk = Kiosk(site_id=site.id, label="k")
            session.add(kiosk)
            session.flush()
            session.add(Submission(
                idempotency_key=str(uuid.uuid4()), request_hash="0" * 64, kiosk_id=kiosk.id,
                member_id=member.id, instrument_id="phq9", instrument_version="1.0.0",
                answers={}, result={"band": "moderate", "total": 12}, response={},
                taken_at=utcnow() - timedelta(days=30), referral_id=referral.id))
        return {"referral": referral.public_id, "member": member.public_id,
                "name": f"{first_name} Tester"}


@pytest.fixture
def cases(app: Flask, site: Any, staff: dict[str, Staff]) -> dict[str, dict[str, str]]:
    """Referrals of the staff advocate's members, and one of another advocate's member."""
    with get_db(app).transaction() as session:
        other_id = gen_advocate(session, "Other Advocate").id
    mine = staff["advocate"].advocate_id
    return {
        "routine": _referral(app, site, mine, priority="routine", first_name="Rita"),
        "crisis": _referral(app, site, mine, priority="crisis", first_name="Carl",
                            with_result=True),
        "urgent": _referral(app, site, mine, priority="urgent", first_name="Uma"),
        "theirs": _referral(app, site, other_id, priority="crisis", first_name="Theo"),
    }


def test_advocate_list_is_own_members_crisis_first(as_advocate: FlaskClient,
                                                   cases: dict[str, dict[str, str]]) -> None:
    html = as_advocate.get("/advocate/").get_data(as_text=True)
    order = [html.index(cases[k]["name"]) for k in ("crisis", "urgent", "routine")]
    assert order == sorted(order)
    assert cases["theirs"]["name"] not in html
    assert "+1-555-0142" in html and "phone" in html and "morning" in html


def test_another_advocates_referral_is_not_found(as_advocate: FlaskClient,
                                                 cases: dict[str, dict[str, str]]) -> None:
    theirs = cases["theirs"]["referral"]
    assert as_advocate.get(f"/advocate/referrals/{theirs}").status_code == 404
    assert as_advocate.get(f"/dashboard/crisis/referral/{theirs}").status_code == 404


def test_referral_page_shows_history_and_is_audited(app: Flask, as_advocate: FlaskClient,
                                                    staff: dict[str, Staff],
                                                    cases: dict[str, dict[str, str]]) -> None:
    html = as_advocate.get(f"/advocate/referrals/{cases['crisis']['referral']}")\
        .get_data(as_text=True)
    assert "Patient Health Questionnaire (PHQ-9)" in html and "moderate" in html
    assert "PHQ-9 question 9" in html
    with get_db(app).transaction() as session:
        views = session.scalars(select(AuditLog).where(
            AuditLog.action == "referral.viewed",
            AuditLog.subject == f"referral:{cases['crisis']['referral']}")).all()
    assert views and all(v.actor == f"user:{staff['advocate'].id}" for v in views)


def test_status_moves_forward_with_a_note_and_queues_for_central(
        app: Flask, as_advocate: FlaskClient, cases: dict[str, dict[str, str]]) -> None:
    url = f"/advocate/referrals/{cases['urgent']['referral']}"
    missing = post_form(as_advocate, url, {"status": "contacted", "note": "  "})
    assert 'id="note-error"' in missing.get_data(as_text=True)
    assert post_form(as_advocate, url, {"status": "contacted",
                                        "note": "Phoned, booked coaching."}).status_code == 302
    # A status never moves back.
    post_form(as_advocate, url, {"status": "acknowledged", "note": "late click"})
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == cases["urgent"]["referral"])).one()
        assert referral.status == "contacted" and referral.version == 2
        row = session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id == referral.id)).one()
        assert row.payload["status"] == "contacted" and row.key.endswith(":v2")
        notes = session.scalars(select(AuditLog.note).where(
            AuditLog.action == "referral.status")).all()
    assert "Phoned, booked coaching." in notes


def _alert(app: Flask, site: Any) -> int:
    with get_db(app).transaction() as session:
        kiosk = Kiosk(site_id=site.id, label="Lobby kiosk", place="Lobby")
        session.add(kiosk)
        session.flush()
        alert = CrisisAlert(kiosk_id=kiosk.id, trigger="hypertensive_crisis",
                            raised_at=utcnow())
        session.add(alert)
        session.flush()
        return alert.id


def test_crisis_banner_on_every_page_until_acknowledged(app: Flask, site: Any,
                                                        as_coordinator: FlaskClient,
                                                        as_advocate: FlaskClient,
                                                        cases: dict[str, dict[str, str]]
                                                        ) -> None:
    alert_id = _alert(app, site)
    for client, pages in ((as_coordinator, ["/dashboard/", "/dashboard/fleet"]),
                          (as_advocate, ["/advocate/"])):
        for path in pages:
            html = client.get(path).get_data(as_text=True)
            assert 'class="crisis-banner"' in html and "Lobby" in html, path
    # The advocate also sees their member's crisis referral; the coordinator never does.
    assert cases["crisis"]["referral"] in as_advocate.get("/advocate/").get_data(as_text=True)
    coordinator_home = as_coordinator.get("/dashboard/").get_data(as_text=True)
    assert cases["crisis"]["referral"] not in coordinator_home
    assert "Crisis referral of a member" not in coordinator_home
    empty = post_form(as_coordinator, f"/dashboard/crisis/alert/{alert_id}", {"note": ""})
    assert 'id="note-error"' in empty.get_data(as_text=True)
    done = post_form(as_coordinator, f"/dashboard/crisis/alert/{alert_id}",
                     {"note": "Went to the lobby; offered help."})
    assert done.status_code == 302
    assert 'class="crisis-banner"' not in as_coordinator.get("/dashboard/").get_data(
        as_text=True)
    with get_db(app).transaction() as session:
        alert = session.get(CrisisAlert, alert_id)
        assert alert is not None and alert.note == "Went to the lobby; offered help."


def test_coordinator_never_sees_individual_health_data(as_coordinator: FlaskClient,
                                                       cases: dict[str, dict[str, str]]
                                                       ) -> None:
    crisis = cases["crisis"]["referral"]
    assert as_coordinator.get("/advocate/").status_code == 403
    assert as_coordinator.get(f"/advocate/referrals/{crisis}").status_code == 403
    assert as_coordinator.get(f"/dashboard/crisis/referral/{crisis}").status_code == 403
    for path in ("/dashboard/", "/dashboard/fleet"):
        html = as_coordinator.get(path).get_data(as_text=True)
        assert all(case["name"] not in html for case in cases.values()), path


def test_advocate_of_another_site_sees_nothing_here(app: Flask, site: Any,
                                                    staff: dict[str, Staff],
                                                    cases: dict[str, dict[str, str]]) -> None:
    from .helpers import site_of

    elsewhere = site_of(app, "far-away")
    # The same advocate record, but logged in at a site of another employer.
    far = gen_staff(app, "advocate", elsewhere, email="far.adv@test.example",
                    advocate_public_id=staff["advocate"].advocate_public_id)
    client = app.test_client()
    login(client, far)
    html = client.get("/advocate/").get_data(as_text=True)
    assert cases["crisis"]["name"] not in html
    assert client.get(f"/advocate/referrals/{cases['crisis']['referral']}").status_code == 404
    with get_db(app).transaction() as session:
        assert session.scalars(select(Member)).first() is not None
