"""Crisis handling that tells the truth: when it was raised, one acknowledgement, one line.

The times shown are the answer's (the kiosk's clock) and the server's receive time, never the
referral's last edit; the waiting time counts from the receive time. One acknowledgement
(the crisis page, or the referral's status set to acknowledged with a note) takes the banner
off every page, audited with who and when. Results read as the instrument's own words.
"""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from onsite_server.db import get_db
from onsite_server.models import AuditLog, Member, OutboxMessage, Referral, Submission

from ..helpers import auth, identified_member, submission_item
from .helpers import Staff, post_form

PHQ9_ITEM9 = {"1": 2, "2": 2, "3": 2, "4": 2, "5": 2, "6": 2, "7": 2, "8": 1, "9": 1}  # 16
TAKEN = datetime(2026, 11, 30, 13, 41, tzinfo=UTC)  # 08:41 in New York
RECEIVED = datetime(2026, 11, 30, 13, 42, tzinfo=UTC)  # 08:42


def _text(resp: Any) -> str:
    """The page as read: tags dropped, entities decoded, spaces collapsed."""
    text = re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))
    return re.sub(r"\s+", " ", html_lib.unescape(text)).replace(" .", ".")


@pytest.fixture
def crisis(app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
           staff: dict[str, Staff]) -> dict[str, Any]:
    """A member of the staff advocate files a PHQ-9 with item 9 at a kiosk (the real API).

    The answer was taken at 08:41 and received at 08:42 (set afterwards: a test cannot wait
    for a clock); the referral is then edited by a later answer, which moves its updated_at.
    """
    member_id, ref = identified_member(app, site, kiosk)
    with get_db(app).transaction() as session:
        session.execute(update(Member).where(Member.public_id == member_id)
                        .values(advocate_id=staff["advocate"].advocate_id))
    item = submission_item("phq9", PHQ9_ITEM9, member_ref=ref, taken_at=TAKEN.isoformat())
    resp = client.post("/api/v1/submissions", json={"items": [item]},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    public_id = resp.get_json()["results"][0]["result"]["referral"]["referral_id"]
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == public_id)).one()
        session.execute(update(Submission).where(Submission.referral_id == referral.id)
                        .values(received_at=RECEIVED))
        session.execute(update(AuditLog).where(AuditLog.action == "crisis.raised")
                        .values(at=RECEIVED))
        referral.created_at = RECEIVED
    later = submission_item("gad7", {str(i): 2 for i in range(1, 8)}, member_ref=ref)
    assert client.post("/api/v1/submissions", json={"items": [later]},
                       headers=auth(kiosk["token"])).status_code == 200
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == public_id)).one()
        assert referral.priority == "crisis" and referral.version >= 2
        edited = referral.updated_at
    return {"referral": public_id, "edited": edited}


def _local(at: datetime) -> str:
    return at.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M")


def test_banner_and_page_show_when_raised_not_the_last_edit(
        crisis: dict[str, Any], as_admin: FlaskClient, as_advocate: FlaskClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The page is looked at 23 minutes after the crisis reached the server.
    monkeypatch.setattr("onsite_server.dashboard.banner.utcnow",
                        lambda: RECEIVED + timedelta(minutes=23, seconds=30))
    page = _text(as_admin.get("/dashboard/"))
    assert "Crises waiting: 1" in page
    assert "longest wait: 23 min" in page
    assert f"Answered {_local(TAKEN)} (kiosk clock)." in page
    assert f"Received {_local(RECEIVED)}." in page
    assert _local(crisis["edited"]) not in page  # the referral's last edit is not the crisis
    mine = _text(as_advocate.get("/advocate/"))
    assert f"Received {_local(RECEIVED)}. Waiting 23 min." in mine
    assert f"changed {_local(crisis['edited'])}" in mine  # the edit is named as an edit
    detail = _text(as_admin.get(f"/dashboard/crisis/referral/{crisis['referral']}"))
    assert f"Answered {_local(TAKEN)} (kiosk clock)" in detail
    assert f"Received {_local(RECEIVED)}" in detail and "Waiting 23 min" in detail


def test_the_waiting_time_reads_in_words() -> None:
    from onsite_server import create_app
    from onsite_server.dashboard.banner import waited

    app = create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "x"})
    since = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with app.test_request_context("/"):
        assert waited(since, since + timedelta(seconds=40)) == "under a minute"
        assert waited(since, since + timedelta(minutes=7)) == "7 min"
        assert waited(since, since + timedelta(hours=2, minutes=5)) == "2 h 05 min"
        assert waited(since, since + timedelta(days=3, hours=1)) == "3 days"


def test_status_acknowledged_with_a_note_clears_the_banner_once(
        app: Flask, crisis: dict[str, Any], as_advocate: FlaskClient, as_admin: FlaskClient,
        staff: dict[str, Staff]) -> None:
    assert 'class="crisis-banner"' in as_admin.get("/dashboard/").get_data(as_text=True)
    saved = post_form(as_advocate, f"/advocate/referrals/{crisis['referral']}",
                      {"status": "acknowledged", "note": "Phoned; they are safe at home."})
    assert saved.status_code == 302
    # Gone from every page and for everyone, with no second acknowledgement.
    for client, path in ((as_advocate, "/advocate/"), (as_admin, "/dashboard/"),
                         (as_admin, "/dashboard/fleet")):
        assert 'class="crisis-banner"' not in client.get(path).get_data(as_text=True), path
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == crisis["referral"])).one()
        assert referral.crisis_acknowledged_by == f"user:{staff['advocate'].id}"
        assert referral.crisis_acknowledged_at is not None
        assert referral.crisis_note == "Phoned; they are safe at home."
        acks = session.scalars(select(AuditLog).where(
            AuditLog.action == "crisis.referral_acknowledged")).all()
        assert [(a.actor, a.subject) for a in acks] == [
            (f"user:{staff['advocate'].id}", f"referral:{crisis['referral']}")]
    # The crisis page says who acknowledged it and offers no second form.
    detail = as_admin.get(f"/dashboard/crisis/referral/{crisis['referral']}")
    assert "by Test advocate: Phoned; they are safe at home." in _text(detail)
    assert 'name="note"' not in detail.get_data(as_text=True)


def test_the_crisis_page_acknowledgement_also_moves_the_status(
        app: Flask, crisis: dict[str, Any], as_admin: FlaskClient, as_advocate: FlaskClient,
        staff: dict[str, Staff]) -> None:
    done = post_form(as_admin, f"/dashboard/crisis/referral/{crisis['referral']}",
                     {"note": "Went to find them; walked them to the nurse."})
    assert done.status_code == 302
    assert 'class="crisis-banner"' not in as_advocate.get("/advocate/").get_data(as_text=True)
    page = _text(as_advocate.get(f"/advocate/referrals/{crisis['referral']}"))
    assert "Crisis acknowledged" in page and "by Test admin" in page
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == crisis["referral"])).one()
        assert referral.status == "acknowledged"
        assert referral.crisis_acknowledged_by == f"user:{staff['admin'].id}"
        queued = session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id == referral.id, OutboxMessage.status == "pending")).one()
        assert queued.payload["status"] == "acknowledged"


def test_banner_is_one_line_with_911_988_and_nothing_that_dismisses_it(
        crisis: dict[str, Any], as_admin: FlaskClient) -> None:
    raw = as_admin.get("/dashboard/").get_data(as_text=True)
    banner = raw[raw.index('<section class="crisis-banner"'):]
    banner = banner[:banner.index("</section>")]
    assert "call 911" in banner and "988" in banner
    # The details are one tap away, in a closed <details>; no form or button can dismiss it.
    assert "<details" in banner and "<details open" not in banner
    assert "<form" not in banner and "<button" not in banner


def test_results_show_the_instruments_words_in_the_pages_language(
        crisis: dict[str, Any], as_advocate: FlaskClient) -> None:
    english = _text(as_advocate.get(f"/advocate/referrals/{crisis['referral']}"))
    assert "Moderately severe depression symptoms" in english  # PHQ-9 total 16
    assert "moderately_severe" not in english
    with as_advocate.session_transaction() as session:
        session["lang"] = "es"
    spanish = _text(as_advocate.get(f"/advocate/referrals/{crisis['referral']}"))
    assert "Síntomas de depresión moderadamente graves" in spanish
    assert "moderately_severe" not in spanish


def test_a_crisis_from_a_refused_item_shows_its_receive_time(
        app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
        as_admin: FlaskClient) -> None:
    """No answer was stored (item 9 came as text): the receive time comes from the audit."""
    _member, ref = identified_member(app, site, kiosk)
    item = submission_item("phq9", {**PHQ9_ITEM9, "9": "2"}, member_ref=ref,
                           taken_at=TAKEN.isoformat())
    answer = client.post("/api/v1/submissions", json={"items": [item]},
                         headers=auth(kiosk["token"])).get_json()["results"][0]
    assert answer["status"] != "accepted" and answer["crisis_recorded"] is True
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral)).one()
        assert session.scalars(select(Submission)).first() is None
        session.execute(update(AuditLog).where(AuditLog.action == "crisis.raised")
                        .values(at=RECEIVED))
        referral.created_at = RECEIVED - timedelta(seconds=1)
        public_id = referral.public_id
    detail = _text(as_admin.get(f"/dashboard/crisis/referral/{public_id}"))
    assert "not known (the answer was not stored)" in detail
    assert f"Received {_local(RECEIVED)}" in detail


def test_an_alert_from_a_kiosk_with_a_wrong_clock_waits_by_the_servers_time(
        app: Flask, site: Any, as_coordinator: FlaskClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from onsite_server.models import CrisisAlert, Kiosk

    kiosk_clock = datetime(1970, 1, 1, 0, 5, tzinfo=UTC)
    with get_db(app).transaction() as session:
        kiosk = Kiosk(site_id=site.id, label="Lobby kiosk", place="Lobby")
        session.add(kiosk)
        session.flush()
        session.add(CrisisAlert(kiosk_id=kiosk.id, trigger="phq9_item9", raised_at=kiosk_clock,
                                received_at=RECEIVED, clock_suspect=True))
    monkeypatch.setattr("onsite_server.dashboard.banner.utcnow",
                        lambda: RECEIVED + timedelta(hours=2, minutes=5))
    page = _text(as_coordinator.get("/dashboard/"))
    assert "longest wait: 2 h 05 min" in page
    assert f"Answered {_local(kiosk_clock)} (kiosk clock). That kiosk's clock looks wrong." in page
    assert f"Received {_local(RECEIVED)}." in page


def test_a_kiosk_time_stored_before_year_1_was_refused_still_shows(
        app: Flask, crisis: dict[str, Any], as_admin: FlaskClient, as_advocate: FlaskClient
) -> None:
    """Year 1 has no local time in New York: the crisis banner on every page answered 500."""
    year_one = datetime(1, 1, 1, tzinfo=UTC)
    with get_db(app).transaction() as session:
        session.execute(update(Submission).values(taken_at=year_one))
    for client, path in ((as_admin, "/dashboard/"), (as_advocate, "/advocate/"),
                         (as_admin, f"/dashboard/crisis/referral/{crisis['referral']}"),
                         (as_advocate, f"/advocate/referrals/{crisis['referral']}")):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert "1-01-01 00:00 UTC" in _text(resp), path
