"""Employer reports on SQLite and PostgreSQL: distinct people, suppression across tables, and the
same numbers after retention deletes the answers."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from onsite_server.db import get_db
from onsite_server.models import Site, Submission, SubmissionTally
from onsite_server.services.errors import ServiceError
from onsite_server.services.reports import (
    DEVICE,
    NOT_RECORDED,
    PEOPLE,
    SELF_REPORTED,
    EmployerReport,
    employer_report,
    table_csv,
)
from onsite_server.services.retention import purge_expired
from onsite_server.services.suppression import TOTAL, audit_passes

from ..helpers import gen_site
from ..report_data import (
    CUFF,
    SCALE,
    add_event,
    add_members,
    add_submissions,
    kiosk_for,
    seed_site,
    submission_row,
)

MARCH = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _report(app: Flask, **kw: Any) -> EmployerReport:
    args: dict[str, Any] = {"first_month": "2026-03", "last_month": "2026-03"} | kw
    with get_db(app).transaction(write=False) as session:
        return employer_report(session, **args)


def _values(report: EmployerReport, *table_ids: str) -> dict[Any, int]:
    keep = {t.table.name for t in report.tables if t.id in table_ids or t.kind in table_ids}
    return {k: v for k, v in report.publication.values.items()
            if isinstance(k, tuple) and k[0] in keep}


@pytest.fixture
def plain_site(app: Flask) -> tuple[int, int, int]:
    """A site with one kiosk: (site id, employer id, kiosk id)."""
    with get_db(app).transaction() as session:
        site = gen_site(session, "report-site", timezone="UTC")
        return site.id, site.employer_id, kiosk_for(session, site)


def test_cells_count_distinct_people_in_the_band_of_their_latest_answer(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 30)
        rows = []
        for i, member in enumerate(members):
            # Every member screens three times; only the last answer of the month counts.
            last = "positive" if i < 12 else "negative"
            for k, band in enumerate(["negative", "negative", last]):
                rows.append(submission_row(kiosk_id, member, str(uuid.uuid4()), "phq2", band,
                                           MARCH + timedelta(days=k)))
        anon = str(uuid.uuid4())
        rows.append(submission_row(kiosk_id, None, anon, "phq2", "negative", MARCH))
        rows.append(submission_row(kiosk_id, None, anon, "phq2", "negative", MARCH))
        add_submissions(session, rows)
    report = _report(app, site_id=site_id)
    outcome = report.table("outcome_phq2")
    assert report.shown(outcome, "positive", PEOPLE) == 12
    assert report.shown(outcome, "negative", PEOPLE) == 18 + 1  # one anonymous session
    screenings = report.table("screenings")
    assert report.shown(screenings, "phq2", PEOPLE) == 31
    assert outcome.table.key(TOTAL, PEOPLE) == screenings.table.key("phq2", PEOPLE)


def test_small_cells_are_hidden_with_complements_across_tables(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 60)
        bands = ["normal"] * 30 + ["elevated"] * 15 + ["stage_1"] * 12 + ["stage_2"] * 3
        add_submissions(session, [submission_row(kiosk_id, m, None, "blood_pressure", b, MARCH)
                                  for m, b in zip(members, bands, strict=True)])
    report = _report(app, site_id=site_id)
    bp = report.table("outcome_blood_pressure")
    assert report.shown(bp, "stage_2", PEOPLE) is None  # 3 people: primary
    hidden_here = [b for b in bp.table.rows if report.shown(bp, b, PEOPLE) is None]
    assert len(hidden_here) >= 2  # and one more, or the total would give it away
    assert report.shown(bp, TOTAL, PEOPLE) == 60
    assert audit_passes(report.publication, report.suppression.hidden, 11)
    assert all(r.width() >= 11 for r in report.audit())


def test_the_minimum_is_configurable_but_never_below_five(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 20)
        add_submissions(session, [
            submission_row(kiosk_id, m, None, "gad2", "positive" if i < 7 else "negative", MARCH)
            for i, m in enumerate(members)])
    gad2 = "outcome_gad2"
    at_11 = _report(app, site_id=site_id)
    assert at_11.shown(at_11.table(gad2), "positive", PEOPLE) is None
    at_5 = _report(app, site_id=site_id, minimum=5)
    assert at_5.shown(at_5.table(gad2), "positive", PEOPLE) == 7
    with pytest.raises(ServiceError) as err:
        _report(app, site_id=site_id, minimum=4)
    assert err.value.errors[0]["field"] == "min_cell"


@pytest.mark.parametrize(("kw", "field"), [
    ({"first_month": "2026-13"}, "from"),
    ({"last_month": "March"}, "to"),
    ({"first_month": "2026-04", "last_month": "2026-03"}, "to"),
    ({"first_month": "2020-01", "last_month": "2026-03"}, "to"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
])
@pytest.mark.sqlite_only
def test_bad_input_is_refused_naming_the_field(app: Flask, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ServiceError) as err:
        _report(app, **kw)
    assert err.value.kind == "invalid" and err.value.errors[0]["field"] == field


def test_the_report_is_the_same_after_retention_deletes_the_answers(app: Flask) -> None:
    with get_db(app).transaction() as session:
        site = gen_site(session, "retained", timezone="UTC")
        seed_site(session, site, members=150, submissions=1200, start=MARCH, days=20, seed=7)
    before = _report(app)
    with get_db(app).transaction() as session:
        session.execute(update(Submission).values(received_at=datetime(2026, 1, 1, tzinfo=UTC)))
    now = datetime(2026, 6, 1, tzinfo=UTC)
    purged = 0
    while True:
        # Small batches, so one person's rows are spread over several purges.
        with get_db(app).transaction() as session:
            n = purge_expired(session, days=90, now=now, limit=97)
        if not n:
            break
        purged += n
    assert purged == 1200
    after = _report(app)
    assert _values(after, "screenings", "outcome") == _values(before, "screenings", "outcome")
    assert after.suppression.hidden & set(_values(after, "screenings", "outcome")) == \
        before.suppression.hidden & set(_values(before, "screenings", "outcome"))
    with get_db(app).transaction(write=False) as session:
        rows = sum(t.count for t in session.scalars(select(SubmissionTally)))
    assert rows == 1200  # the row count is kept as before, next to the people count


def test_events_count_members_by_how_their_booking_ended(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, _kiosk = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 40)
        outcomes = ([(m, "checked_in") for m in members[:25]]
                    + [(m, "no_show") for m in members[25:28]]
                    + [(m, "booked") for m in members[28:40]])
        add_event(session, site_id, "Flu shots", MARCH, outcomes, title_es="Vacunas")
    report = _report(app, site_id=site_id)
    events = report.table("events")
    (event,) = events.table.rows
    assert events.row_labels[event] == {"en": "Flu shots", "es": "Vacunas"}
    assert report.shown(events, event, "checked_in") == 25
    assert report.shown(events, event, "no_show") is None  # 3
    assert report.shown(events, event, TOTAL) == 40
    day_hour = report.table("day_hour")
    assert report.shown(day_hour, "2026-03-02", "14") == 25  # the check-ins, at 14:35


def test_other_sites_and_months_are_left_out(app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        other = gen_site(session, "elsewhere", timezone="UTC")
        other_kiosk = kiosk_for(session, other)
        members = add_members(session, employer_id, 15)
        add_submissions(session, [
            *(submission_row(kiosk_id, m, None, "phq2", "negative", MARCH) for m in members),
            *(submission_row(other_kiosk, m, None, "phq2", "negative", MARCH) for m in members),
            *(submission_row(kiosk_id, m, None, "phq2", "negative", MARCH + timedelta(days=40))
              for m in members)])
    report = _report(app, site_id=site_id)
    assert report.shown(report.table("screenings"), "phq2", PEOPLE) == 15
    everywhere = _report(app)
    assert everywhere.shown(everywhere.table("screenings"), "phq2", PEOPLE) == 30
    two_months = _report(app, site_id=site_id, last_month="2026-04")
    assert two_months.shown(two_months.table("screenings"), "phq2", PEOPLE) == 30


def test_day_and_hour_are_in_the_site_time_zone(app: Flask,
                                                plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 12)
        add_submissions(session, [submission_row(kiosk_id, m, None, "phq2", "negative", MARCH)
                                  for m in members])
    report = _report(app, site_id=site_id, timezone="America/Chicago")
    day_hour = report.table("day_hour")
    assert report.shown(day_hour, "2026-03-02", "08") == 12  # 14:30 UTC is 08:30 in Chicago


def test_csv_has_the_same_cells_with_suppressed_marked(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 40)
        add_submissions(session, [
            submission_row(kiosk_id, m, None, "phq2", "positive" if i < 4 else "negative", MARCH)
            for i, m in enumerate(members)])
        add_event(session, site_id, "=HYPERLINK(\"x\")", MARCH, [(m, "checked_in")
                                                                for m in members[:12]])
        add_event(session, site_id, "\t=1+2", MARCH, [(m, "checked_in") for m in members[12:24]])
    report = _report(app, site_id=site_id)
    rows = list(csv.reader(io.StringIO(table_csv(report, report.table("outcome_phq2"), "es",
                                                 hidden_mark="suprimido", total_label="Total"))))
    assert rows[0] == ["", "Personas"]
    assert rows[1] == ["Detección de depresión negativa", "suprimido"]
    assert rows[2] == ["Detección de depresión positiva: se recomienda el PHQ-9", "suprimido"]
    assert rows[3] == ["Total", "40"]
    events = list(csv.reader(io.StringIO(table_csv(report, report.table("events")))))
    # A title is never run as a spreadsheet formula, whichever way it opens like one.
    titles = sorted(row[0] for row in events[1:] if row[0] != "Total")
    assert titles == ["'\t=1+2", "'=HYPERLINK(\"x\")"], titles


def test_an_empty_period_is_an_empty_report(app: Flask, site: Site) -> None:
    report = _report(app, first_month="2030-01", last_month="2030-02")
    assert report.table("screenings").table.rows == ()
    assert report.hidden_count() == 0


def test_retention_holds_a_persons_month_until_all_of_it_expired(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        (member,) = add_members(session, employer_id, 1)
        old = submission_row(kiosk_id, member, None, "phq2", "positive", MARCH)
        young = submission_row(kiosk_id, member, None, "phq2", "negative",
                               MARCH + timedelta(days=20))
        add_submissions(session, [old, young])
    now = MARCH + timedelta(days=100)  # the first is past 90 days, the second is not
    with get_db(app).transaction() as session:
        assert purge_expired(session, days=90, now=now) == 0
    with get_db(app).transaction() as session:
        assert purge_expired(session, days=90, now=now + timedelta(days=20)) == 2
        cells = {(t.band, t.count, t.members) for t in session.scalars(select(SubmissionTally))}
    # Two rows, one person, counted in the band of the later answer.
    assert cells == {("positive", 1, 0), ("negative", 1, 1)}


def test_held_rows_do_not_stop_the_purge_of_rows_behind_them(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        held, free = add_members(session, employer_id, 2)
        add_submissions(session, [
            # The first row waits for its month-mate; the second row's group is all expired.
            submission_row(kiosk_id, held, None, "phq2", "negative", MARCH),
            submission_row(kiosk_id, free, None, "phq2", "negative", MARCH),
            submission_row(kiosk_id, held, None, "phq2", "negative", MARCH + timedelta(days=20)),
        ])
    with get_db(app).transaction() as session:
        # One row a page: the first page holds only the held row.
        assert purge_expired(session, days=90, now=MARCH + timedelta(days=100), limit=1) == 1
        left = session.scalars(select(Submission.member_id)).all()
    assert sorted(left) == [held, held]


def test_device_origin_counts_each_persons_counted_reading(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    """Issue 19: people whose latest blood pressure or BMI came from a device, or was typed."""
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 40)
        rows = []
        for i, member in enumerate(members):
            # The first 25 typed a reading, then took one from the cuff later that month: the
            # later one is the one counted. The other 15 used the cuff first, then typed.
            later_from_cuff = i < 25
            rows.append(submission_row(kiosk_id, member, None, "blood_pressure", "normal", MARCH,
                                       devices=None if later_from_cuff else [CUFF]))
            rows.append(submission_row(kiosk_id, member, None, "blood_pressure", "elevated",
                                       MARCH + timedelta(days=1),
                                       devices=[CUFF] if later_from_cuff else None))
        rows.extend(submission_row(kiosk_id, m, None, "phq2", "negative", MARCH)
                    for m in members[:12])
        add_submissions(session, rows)
    report = _report(app, site_id=site_id)
    origin = report.table("origin")
    assert origin.table.rows == ("blood_pressure",)  # no BMI, and PHQ-2 takes no device
    assert origin.table.cols == (DEVICE, SELF_REPORTED)  # nothing was purged: all known
    assert report.shown(origin, "blood_pressure", DEVICE) == 25
    assert report.shown(origin, "blood_pressure", SELF_REPORTED) == 15
    assert report.shown(origin, "blood_pressure", TOTAL) == 40
    assert origin.table.key("blood_pressure", TOTAL) == \
        report.table("screenings").table.key("blood_pressure", PEOPLE)
    assert origin.row_labels["blood_pressure"]["es"] == "Presión arterial"
    lines = list(csv.reader(io.StringIO(table_csv(report, origin, "es"))))
    assert lines == [["", "Medido con un aparato", "Escrito por la persona (autodeclarado)",
                      "Total"], ["Presión arterial", "25", "15", "40"]]


def test_a_small_side_of_a_device_split_hides_the_other_side_too(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    """4 of 24 BMI readings typed: hiding 4 alone would leave it as 24 minus the device side."""
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 30)
        add_submissions(session, [
            *(submission_row(kiosk_id, m, None, "bmi", "overweight", MARCH,
                             devices=None if i < 4 else [SCALE])
              for i, m in enumerate(members[:24])),
            # Blood pressure: 3 from the cuff, all others typed; and a group of 6 all told.
            *(submission_row(kiosk_id, m, None, "blood_pressure", "normal", MARCH,
                             devices=[CUFF] if i < 3 else None)
              for i, m in enumerate(members[:30]))])
    report = _report(app, site_id=site_id)
    origin = report.table("origin")
    screenings = report.table("screenings")
    assert report.shown(screenings, "bmi", PEOPLE) == 24  # the total stays published
    assert report.shown(origin, "bmi", SELF_REPORTED) is None  # 4: below the minimum
    assert report.shown(origin, "bmi", DEVICE) is None  # else 24 - 20 gives the 4 away
    assert report.shown(origin, "blood_pressure", DEVICE) is None  # 3
    assert report.shown(origin, "blood_pressure", SELF_REPORTED) is None  # 30 - 27 = 3
    assert report.shown(screenings, "blood_pressure", PEOPLE) == 30
    hidden = {origin.table.key(r, c) for r in origin.table.rows for c in origin.table.cols}
    assert hidden <= report.suppression.hidden
    assert audit_passes(report.publication, report.suppression.hidden, 11)
    ranges = {r.key: r for r in report.audit()}
    assert all(ranges[k].width() >= 11 for k in hidden)


def test_a_device_split_of_a_group_under_the_minimum_is_hidden_whole(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 7)
        add_submissions(session, [submission_row(kiosk_id, m, None, "bmi", "overweight", MARCH,
                                                 devices=[SCALE] if i < 5 else None)
                                  for i, m in enumerate(members)])
    report = _report(app, site_id=site_id)
    origin = report.table("origin")
    assert [report.shown(origin, "bmi", c) for c in (DEVICE, SELF_REPORTED, TOTAL)] == \
        [None, None, None]
    assert report.shown(report.table("screenings"), "bmi", PEOPLE) is None


def test_a_split_with_a_zero_side_is_published(
        app: Flask, plain_site: tuple[int, int, int]) -> None:
    """A true zero identifies nobody: all 15 from the cuff shows 15 and 0."""
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 15)
        add_submissions(session, [submission_row(kiosk_id, m, None, "blood_pressure", "normal",
                                                 MARCH, devices=[CUFF]) for m in members])
    report = _report(app, site_id=site_id)
    origin = report.table("origin")
    assert report.shown(origin, "blood_pressure", DEVICE) == 15
    assert report.shown(origin, "blood_pressure", SELF_REPORTED) == 0


def test_device_origin_after_retention_is_not_known(app: Flask,
                                                     plain_site: tuple[int, int, int]) -> None:
    """A tally keeps no origin: the deleted answers' people move to "not known", the totals
    stay the screenings' cells."""
    site_id, employer_id, kiosk_id = plain_site
    with get_db(app).transaction() as session:
        members = add_members(session, employer_id, 30)
        old = [submission_row(kiosk_id, m, None, "blood_pressure", "normal", MARCH,
                              devices=[CUFF]) for m in members[:18]]
        young = [submission_row(kiosk_id, m, None, "blood_pressure", "normal",
                                MARCH + timedelta(days=27)) for m in members[18:]]
        add_submissions(session, old + young)
        session.execute(update(Submission).where(Submission.taken_at == MARCH)
                        .values(received_at=datetime(2026, 1, 1, tzinfo=UTC)))
    with get_db(app).transaction() as session:
        assert purge_expired(session, days=90, now=datetime(2026, 4, 15, tzinfo=UTC)) == 18
    report = _report(app, site_id=site_id)
    origin = report.table("origin")
    assert origin.table.cols == (DEVICE, SELF_REPORTED, NOT_RECORDED)
    assert report.shown(origin, "blood_pressure", NOT_RECORDED) == 18
    assert report.shown(origin, "blood_pressure", SELF_REPORTED) == 12
    assert report.shown(origin, "blood_pressure", DEVICE) == 0
    assert report.shown(origin, "blood_pressure", TOTAL) == 30
