"""Retention: answers go 90 days after central has them; de-identified counts stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select, update

from onsite_server.db import get_db
from onsite_server.models import Referral, Submission, SubmissionTally
from onsite_server.services.retention import purge_expired
from onsite_server.services.sync import run_cycle

from ..helpers import auth, identified_member, submission_item
from .test_sync import PHQ9_MODERATE, FakeCentral, _settings, consent

PHQ9_MILD = {str(i): 1 for i in range(1, 8)} | {"8": 0, "9": 0}  # 7: mild (Kroenke 2001)


def _post(client: Any, kiosk: dict[str, Any], item: dict[str, Any]) -> None:
    resp = client.post("/api/v1/submissions", json={"items": [item]},
                       headers=auth(kiosk["token"]))
    assert resp.get_json()["results"][0]["status"] == "accepted"


def _age(app: Flask, days: int) -> None:
    with get_db(app).transaction() as session:
        session.execute(update(Submission).values(
            received_at=datetime.now(UTC) - timedelta(days=days)))


def _purge(app: Flask, days: int = 90) -> int:
    with get_db(app).transaction() as session:
        return purge_expired(session, days=days, now=datetime.now(UTC))


def _count(app: Flask) -> int:
    with get_db(app).transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(Submission)) or 0)


def _tallies(app: Flask) -> list[tuple[str, str, int]]:
    with get_db(app).transaction(write=False) as session:
        return [(t.instrument_id, t.band, t.count) for t in session.scalars(
            select(SubmissionTally).order_by(SubmissionTally.instrument_id,
                                             SubmissionTally.band))]


def test_anonymous_answers_go_after_the_period_and_are_counted(app: Flask, client: Any,
                                                               kiosk: dict[str, Any]) -> None:
    for _ in range(2):
        _post(client, kiosk, submission_item("phq9", PHQ9_MILD))
    _age(app, 89)
    assert _purge(app) == 0 and _count(app) == 2
    _age(app, 91)
    assert _purge(app) == 2 and _count(app) == 0
    assert _tallies(app) == [("phq9", "mild", 2)]
    _post(client, kiosk, submission_item("phq9", PHQ9_MILD))
    _age(app, 91)
    _purge(app)
    assert _tallies(app) == [("phq9", "mild", 3)]  # the same cell grows


def test_a_members_answers_wait_until_central_has_them(app: Flask, client: Any, site: Any,
                                                       kiosk: dict[str, Any]) -> None:
    _, ref = identified_member(app, site, kiosk)
    _post(client, kiosk, submission_item("phq9", PHQ9_MODERATE, member_ref=ref))
    consent(client, kiosk, ref)
    _age(app, 200)
    assert _purge(app) == 0  # not forwarded yet: central does not have them
    central = FakeCentral()
    central.fail.append(RuntimeError("down"))
    run_cycle(get_db(app).transaction, central, _settings(app))
    assert _purge(app) == 0  # the upload is still pending
    later = datetime.now(UTC) + timedelta(hours=1)
    run_cycle(get_db(app).transaction, central, _settings(app), now=lambda: later)
    assert central.bundles
    assert _purge(app) == 1 and _count(app) == 0
    assert _tallies(app) == [("phq9", "moderate", 1)]
    with get_db(app).transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Referral)) == 1  # kept


def test_answers_withheld_for_want_of_consent_go_after_the_period(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    _, ref = identified_member(app, site, kiosk)
    _post(client, kiosk, submission_item("phq9", PHQ9_MODERATE, member_ref=ref))
    consent(client, kiosk, ref, agreed=False)
    central = FakeCentral()
    assert run_cycle(get_db(app).transaction, central, _settings(app)).withheld == 1
    assert central.bundles == []  # nothing about the member left the site
    _age(app, 89)
    assert _purge(app) == 0
    _age(app, 91)  # never going to central: kept for the period, like anonymous answers
    assert _purge(app) == 1 and _count(app) == 0
    assert _tallies(app) == [("phq9", "moderate", 1)]


def test_the_sync_cycle_runs_retention(app: Flask, client: Any, kiosk: dict[str, Any]) -> None:
    _post(client, kiosk, submission_item("phq9", PHQ9_MILD))
    _age(app, 120)
    report = run_cycle(get_db(app).transaction, FakeCentral(), _settings(app))
    assert report.purged == 1 and _count(app) == 0


def test_unmatched_claims_go_after_the_retention_period(app: Flask, kiosk: dict[str, Any]
                                                        ) -> None:
    from datetime import date

    from onsite_server.models import Kiosk, UnmatchedClaim
    from onsite_server.services.retention import purge_claims

    now = datetime.now(UTC)
    with get_db(app).transaction() as session:
        device = session.scalars(select(Kiosk)).one()
        for typed, seen in (("E-OLD", now - timedelta(days=91)), ("E-NEW", now)):
            session.add(UnmatchedClaim(site_id=device.site_id, kiosk_id=device.id,
                                       typed_id=typed, birth_date=date(1990, 1, 2),
                                       phone="+1 555 0100", first_seen_at=seen,
                                       last_seen_at=seen))
    with get_db(app).transaction() as session:
        assert purge_claims(session, days=90, now=now) == 1
    with get_db(app).transaction(write=False) as session:
        assert list(session.scalars(select(UnmatchedClaim.typed_id))) == ["E-NEW"]


def test_sent_outbox_rows_replays_and_ended_log_ins_go_after_the_period(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
    from onsite_server.models import IdempotentRequest, OutboxMessage, User, UserSession
    from onsite_server.services.retention import purge_history

    # A member's referral reaches central: its sent outbox row names the member and contact.
    _, ref = identified_member(app, site, kiosk)
    _post(client, kiosk, submission_item("phq9", PHQ9_MODERATE, member_ref=ref))
    consent(client, kiosk, ref)
    central = FakeCentral()
    run_cycle(get_db(app).transaction, central, _settings(app))
    assert central.bundles
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=91), now - timedelta(days=89)
    with get_db(app).transaction() as session:
        sent = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status == "sent")))
        assert sent and all("member_id" in row.payload for row in sent)
        for row in sent:
            row.sent_at = old
        session.add(OutboxMessage(kind="referral", key="still-pending", payload={},
                                  status="pending", created_at=old, next_attempt_at=old))
        session.add(OutboxMessage(kind="referral", key="sent-lately", payload={},
                                  status="sent", created_at=recent, sent_at=recent))
        replays = list(session.scalars(select(IdempotentRequest)))
        assert replays  # the consent was keyed
        for replay in replays:
            replay.created_at = old
        session.add(IdempotentRequest(key="fresh-key", operation="referral.consent",
                                      request_hash="0" * 64, status_code=200, response="{}",
                                      created_at=recent))
        user = User(email="a@example.org", name="A", role="coordinator", password_hash="x")
        session.add(user)
        session.flush()
        session.add_all([
            UserSession(user_id=user.id, token_hash="1" * 64, created_at=old, ended_at=old,
                        ended_reason="logout"),
            UserSession(user_id=user.id, token_hash="2" * 64, created_at=old, ended_at=recent,
                        ended_reason="logout"),
            UserSession(user_id=user.id, token_hash="3" * 64, created_at=old)])  # still on
        # A later sent version of the same referral: it supersedes the ones above.
        session.add(OutboxMessage(kind="referral", key="newer-version", payload={},
                                  status="sent", referral_id=sent[0].referral_id,
                                  created_at=old, sent_at=old, next_attempt_at=old))
    with get_db(app).transaction() as session:
        gone = purge_history(session, days=90, now=now, limit=1)  # one of each table a call
    assert gone == 3  # one superseded sent row, one replay, one ended log-in
    with get_db(app).transaction() as session:
        while purge_history(session, days=90, now=now):
            pass
    with get_db(app).transaction(write=False) as session:
        # The open referral keeps its latest sent row: the sync reads it as "central has it",
        # so a withdrawn consent still cancels the referral there.
        assert sorted(session.scalars(select(OutboxMessage.key))) == [
            "newer-version", "sent-lately", "still-pending"]
        assert list(session.scalars(select(IdempotentRequest.key))) == ["fresh-key"]
        assert sorted(session.scalars(select(UserSession.token_hash))) == ["2" * 64, "3" * 64]
    with get_db(app).transaction() as session:
        session.execute(update(Referral).values(status="closed"))
    with get_db(app).transaction() as session:
        purge_history(session, days=90, now=now)
    with get_db(app).transaction(write=False) as session:
        assert sorted(session.scalars(select(OutboxMessage.key))) == ["sent-lately",
                                                                      "still-pending"]
