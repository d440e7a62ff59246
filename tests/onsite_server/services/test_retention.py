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
