"""The employer report counts in SQL (issue 20): every cell the same as a plain Python count of
the rows, on SQLite and PostgreSQL, in time zones with a daylight-saving change and a half-hour
offset inside the period."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from onsite_server.db import get_db
from onsite_server.models import Booking, Event, Kiosk, Slot, Submission
from onsite_server.services.reports import (
    DEVICE,
    DEVICE_INSTRUMENTS,
    EVENT_COLUMNS,
    SELF_REPORTED,
    EmployerReport,
    employer_report,
)
from onsite_server.services.retention import NOT_SCORED, person_key

from ..helpers import gen_site
from ..report_data import (
    CUFF,
    SCALE,
    add_event,
    add_submissions,
    kiosk_for,
    seed_site,
    submission_row,
)

# March and April 2026: Chicago moves its clocks on 8 March at 08:00 UTC.
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 5, 1, tzinfo=UTC)
DST = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)


def python_counts(session: Session, site_id: int | None, zone: ZoneInfo) -> dict[str, Any]:
    """What the report must show, counted the plain way: read every row, count in Python."""
    query = (select(Submission.id, Kiosk.site_id, Submission.taken_at, Submission.instrument_id,
                    Submission.result, Submission.member_id, Submission.session_id,
                    Submission.devices)
             .join(Kiosk, Kiosk.id == Submission.kiosk_id)
             .where(Submission.taken_at >= START, Submission.taken_at < END))
    if site_id is not None:
        query = query.where(Kiosk.site_id == site_id)
    latest: dict[tuple[Any, ...], tuple[datetime, int, str, bool]] = {}
    visits: dict[tuple[str, str], set[str]] = defaultdict(set)
    for id_, site, at, instrument, result, member, session_id, devices in session.execute(query):
        who = person_key(id_, member, session_id)
        group = (site, at.strftime("%Y-%m"), instrument, who)
        if group not in latest or (at, id_) > latest[group][:2]:
            latest[group] = (at, id_, (result or {}).get("band") or NOT_SCORED, bool(devices))
        local = at.astimezone(zone)
        visits[(local.date().isoformat(), f"{local.hour:02d}")].add(who)
    outcomes: Counter[tuple[str, str]] = Counter()
    origins: Counter[tuple[str, str]] = Counter()
    for (_s, _m, instrument, _w), (_a, _i, band, measured) in latest.items():
        outcomes[(instrument, band)] += 1
        if instrument in DEVICE_INSTRUMENTS:
            origins[(instrument, DEVICE if measured else SELF_REPORTED)] += 1
    desk = (select(Booking.member_id, Booking.checked_in_at)
            .join(Event, Event.id == Booking.event_id)
            .where(Booking.checked_in_at >= START, Booking.checked_in_at < END))
    bookings = (select(Event.public_id, Booking.member_id, Booking.status)
                .join(Slot, Slot.id == Booking.slot_id).join(Event, Event.id == Booking.event_id)
                .where(Slot.start_at >= START, Slot.start_at < END,
                       Booking.status.in_(EVENT_COLUMNS)))
    if site_id is not None:
        desk = desk.where(Event.site_id == site_id)
        bookings = bookings.where(Event.site_id == site_id)
    for member, at in session.execute(desk):
        local = at.astimezone(zone)
        visits[(local.date().isoformat(), f"{local.hour:02d}")].add(f"m{member}")
    best: dict[tuple[str, int], str] = {}
    for event, member, status in session.execute(bookings):
        seen = best.get((event, member))
        if seen is None or EVENT_COLUMNS.index(status) < EVENT_COLUMNS.index(seen):
            best[(event, member)] = status
    events = Counter((event, status) for (event, _m), status in best.items())
    return {"outcomes": outcomes, "origins": origins, "events": events,
            "day_hour": Counter({k: len(v) for k, v in visits.items()})}


def report_counts(report: EmployerReport) -> dict[str, Any]:
    """The report's inner cells, in the same shape (zeros left out, as a Counter does)."""
    out: dict[str, Counter[Any]] = {"outcomes": Counter(), "origins": Counter(),
                                    "events": Counter(), "day_hour": Counter()}
    for table in report.tables:
        for (row, col), n in table.table.counts.items():
            if not n:
                continue
            if table.kind == "outcome":
                out["outcomes"][(table.id.removeprefix("outcome_"), row)] += n
            elif table.kind == "origin":
                out["origins"][(row, col)] += n
            elif table.kind in ("events", "day_hour"):
                out[table.kind][(row, col)] += n
    return out


@pytest.fixture
def history(app: Flask) -> dict[str, int]:
    """Two sites' kiosk use over two months: members and anonymous sessions, several bands and
    an unscored answer, some readings from a cuff or a scale, people who return within a
    month and across months, answers either side of the clock change, and events."""
    with get_db(app).transaction() as session:
        site = gen_site(session, "counted", timezone="America/Chicago")
        seeded = seed_site(session, site, members=120, submissions=1500, start=START,
                           days=55, seed=20, events=5)
        # Some readings from devices: every third blood pressure from a cuff, every second BMI
        # from a scale.
        session.execute(update(Submission).where(
            Submission.instrument_id == "blood_pressure", Submission.id % 3 == 0)
            .values(devices=[CUFF]))
        session.execute(update(Submission).where(
            Submission.instrument_id == "bmi", Submission.id % 2 == 0).values(devices=[SCALE]))
        kiosk = seeded.kiosk_ids[0]
        members = seeded.member_ids
        rows = []
        for i, minutes in enumerate((-90, -31, -1, 0, 1, 29, 30, 59, 61, 119)):
            # Around the clock change, and a member who returns within the hour.
            at = DST + timedelta(minutes=minutes)
            rows.append(submission_row(kiosk, members[i % 4], None, "blood_pressure",
                                       "stage_1", at, devices=[CUFF] if i % 2 else None))
        # No member and no session (or an empty one): each row is its own person.
        rows += [submission_row(kiosk, None, None, "phq2", "negative", START + timedelta(
            days=3, hours=h)) for h in range(3)]
        rows += [submission_row(kiosk, None, "", "phq2", "positive", START + timedelta(
            days=3, hours=1)) for _ in range(2)]
        # A member counted in each month, and the same instant twice (the row id decides).
        rows.append(submission_row(kiosk, members[5], None, "bmi", "overweight",
                                   datetime(2026, 3, 31, 23, 59, tzinfo=UTC), devices=[SCALE]))
        rows.append(submission_row(kiosk, members[5], None, "bmi", "obesity_class_1",
                                   datetime(2026, 4, 1, 0, 1, tzinfo=UTC)))
        tie = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)
        rows.append(submission_row(kiosk, members[6], None, "bmi", "underweight", tie))
        rows.append(submission_row(kiosk, members[6], None, "bmi", "healthy_weight", tie,
                                   devices=[SCALE]))
        # Just outside the period, both ends.
        rows.append(submission_row(kiosk, members[7], None, "phq2", "positive",
                                   START - timedelta(microseconds=1)))
        rows.append(submission_row(kiosk, members[7], None, "phq2", "positive", END))
        rows.append(submission_row(kiosk, None, str(uuid.uuid4()), "gad2", None, START))
        add_submissions(session, rows)
        # A member with two bookings of one event (no-show, then checked in) counts once.
        add_event(session, site.id, "Twice", DST, [(members[0], "no_show"),
                                                   (members[0], "checked_in"),
                                                   (members[1], "no_show"),
                                                   (members[1], "booked")])
        other = gen_site(session, "counted-other", timezone="UTC")
        other_kiosk = kiosk_for(session, other)
        add_submissions(session, [submission_row(other_kiosk, m, None, "phq2", "negative",
                                                 START + timedelta(days=2)) for m in members[:14]])
        return {"site": site.id, "other": other.id}


@pytest.mark.parametrize("zone", ["America/Chicago", "Asia/Kolkata", "UTC"])
def test_sql_counts_match_a_python_count_of_the_rows(app: Flask, history: dict[str, int],
                                                     zone: str) -> None:
    for site_id in (history["site"], None):
        with get_db(app).transaction(write=False) as session:
            expected = python_counts(session, site_id, ZoneInfo(zone))
            report = employer_report(session, first_month="2026-03", last_month="2026-04",
                                     site_id=site_id, timezone=zone)
        got = report_counts(report)
        assert got == expected
        assert expected["origins"][("blood_pressure", DEVICE)] > 0
        assert expected["origins"][("bmi", SELF_REPORTED)] > 0
        assert len({band for (i, band) in expected["outcomes"] if i == "bmi"}) >= 4
        assert report.suppression.primary  # small groups were there to suppress
    # The two days of the clock change read in local hours (02:00 does not exist in Chicago).
    if zone == "America/Chicago":
        assert ("2026-03-08", "03") in expected["day_hour"]
        assert ("2026-03-08", "02") not in expected["day_hour"]
