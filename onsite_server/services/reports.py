"""Employer reports: participation and screening outcomes, aggregates only, small cells hidden.

What one report publishes, for whole months (UTC, the months retention tallies use):

- **Screenings completed:** people screened per instrument.
- **Outcomes:** per instrument, people by result band (the band of their latest answer).
- **Device origin:** for blood pressure and BMI, people whose latest reading (the one the
  outcome counts) came from a Bluetooth device, was typed by the member (self-reported), or is
  no longer known (a tally of answers retention deleted keeps no origin). Each row adds up to
  the screenings cell of its instrument (one key), so suppression sees the split and its total
  together and no side of a split can be had by subtraction.
- **Participation by event:** members checked in, no-show and booked, per event whose slots
  start in the period.
- **Participation by day and hour:** people who used a kiosk or checked in at an event, per
  local date and hour (answers already deleted by retention are not in this table: a tally
  has no day or hour).

Cells count distinct people, never submissions. A person is a member, or for anonymous use
one kiosk session. Screenings and outcomes count a person once per site, month and
instrument, by the same rule retention uses when it tallies answers it deletes
(``retention.person_key``), so a report reads the rows still here plus the tallies and stays
the same after a purge. The outcome tables' totals *are* the screenings table's cells (one key
each), so suppression decides over all the tables at once (``services.suppression``).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.assessments import list_instruments, load_definition

from ..models import Booking, Event, Kiosk, Slot, Submission, SubmissionTally
from .errors import N_, ServiceError
from .retention import NOT_SCORED, person_key
from .suppression import (
    DEFAULT_MINIMUM,
    TOTAL,
    CellRange,
    Publication,
    Suppression,
    SuppressionError,
    Table,
    audit,
    check_minimum,
    suppress,
)

Label = Mapping[str, str]  # language code -> text
PEOPLE = "people"
EVENT_COLUMNS = ("checked_in", "no_show", "booked")
# The instruments whose answers a kiosk can take from a cuff or a scale (issue 19).
DEVICE_INSTRUMENTS = ("blood_pressure", "bmi")
DEVICE, SELF_REPORTED, NOT_RECORDED = "device", "self_reported", "not_recorded"
_ORIGIN_LABELS: dict[str, Label] = {
    DEVICE: {"en": "Measured by a device", "es": "Medido con un aparato"},
    SELF_REPORTED: {"en": "Typed by the member (self-reported)",
                    "es": "Escrito por la persona (autodeclarado)"},
    NOT_RECORDED: {"en": "Not known (answers deleted after the retention period)",
                   "es": "Se desconoce (respuestas eliminadas tras el período de conservación)"},
}
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_NOT_SCORED_LABEL = {"en": "Not scored (items skipped)",
                     "es": "Sin puntuación (preguntas omitidas)"}


@dataclass(frozen=True)
class ReportTable:
    """One table of a report: its counts and margins, and the labels of its rows and columns."""

    id: str
    kind: str  # screenings | outcome | origin | events | day_hour
    table: Table
    row_labels: Mapping[str, Label]
    col_labels: Mapping[str, Label]
    title: Label | None = None  # the instrument's title, for outcome tables


@dataclass(frozen=True)
class EmployerReport:
    """A whole report with its suppression decided; read cells through ``shown``."""

    first_month: str
    last_month: str
    site_id: int | None
    timezone: str
    tables: tuple[ReportTable, ...]
    publication: Publication
    suppression: Suppression

    @property
    def minimum(self) -> int:
        """The minimum cell size this report was suppressed at."""
        return self.suppression.minimum

    def table(self, table_id: str) -> ReportTable:
        """The table with this id."""
        for t in self.tables:
            if t.id == table_id:
                return t
        raise KeyError(table_id)

    def shown(self, table: ReportTable, row: str, col: str) -> int | None:
        """The published value of a cell, or None when it is suppressed."""
        key = table.table.key(row, col)
        return None if key in self.suppression.hidden else self.publication.values[key]

    def hidden_count(self) -> int:
        """How many cells the report hides."""
        return len(self.suppression.hidden)

    def audit(self) -> list[CellRange]:
        """The audit of every hidden cell: what a reader could narrow it down to."""
        return audit(self.publication, self.suppression.hidden, self.minimum)


def parse_month(value: str, field: str) -> tuple[int, int]:
    """Read YYYY-MM, or refuse naming the field."""
    match = _MONTH.match(value or "")
    if not match:
        raise ServiceError("invalid", "Invalid report period",
                           [{"field": field, "message": N_("must be a month as YYYY-MM")}])
    return int(match.group(1)), int(match.group(2))


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def _next_month(year: int, month: int) -> datetime:
    return _month_start(year + month // 12, month % 12 + 1)


def employer_report(session: Session, *, first_month: str, last_month: str,
                    site_id: int | None = None, minimum: int = DEFAULT_MINIMUM,
                    timezone: str = "UTC", max_months: int = 24) -> EmployerReport:
    """Build the employer report for whole months, with small cells suppressed across tables."""
    first = parse_month(first_month, "from")
    last = parse_month(last_month, "to")
    if last < first:
        raise ServiceError("invalid", "Invalid report period",
                           [{"field": "to", "message": N_("must not be before from")}])
    if (last[0] - first[0]) * 12 + last[1] - first[1] >= max_months:
        raise ServiceError("invalid", "Invalid report period",
                           [{"field": "to", "message": N_("at most %(n)d months", n=max_months)}])
    try:
        check_minimum(minimum)
    except SuppressionError as exc:
        raise ServiceError("invalid", "Invalid minimum cell size",
                           [{"field": exc.field, "message": exc.message}]) from exc
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ServiceError("invalid", "Invalid time zone",
                           [{"field": "timezone",
                             "message": N_("is not a known time zone")}]) from exc
    start, end = _month_start(*first), _next_month(*last)
    months = (f"{first[0]:04d}-{first[1]:02d}", f"{last[0]:04d}-{last[1]:02d}")

    outcomes, origins, visits = _screenings(session, start, end, site_id, zone)
    for (instrument, band), n in _tallied(session, months, site_id).items():
        outcomes[instrument][band] += n
        origins[instrument][NOT_RECORDED] += n
    _checkins(session, start, end, site_id, zone, visits)
    tables = [*_screening_tables(outcomes), _origin_table(outcomes, origins),
              _events_table(session, start, end, site_id), _day_hour_table(visits)]
    publication = Publication.of(t.table for t in tables)
    return EmployerReport(months[0], months[1], site_id, timezone, tuple(tables), publication,
                          suppress(publication, minimum))


Counts = dict[str, defaultdict[str, int]]


def _screenings(session: Session, start: datetime, end: datetime, site_id: int | None,
                zone: ZoneInfo) -> tuple[Counts, Counts, dict[tuple[date, int], set[str]]]:
    """People per instrument and band, and per instrument and origin, from the answers still
    here; and kiosk visits by hour."""
    query = (select(Submission.id, Kiosk.site_id, Submission.taken_at, Submission.instrument_id,
                    Submission.result["band"].as_string(), Submission.member_id,
                    Submission.session_id, Submission.devices)
             .join(Kiosk, Kiosk.id == Submission.kiosk_id)
             .where(Submission.taken_at >= start, Submission.taken_at < end))
    if site_id is not None:
        query = query.where(Kiosk.site_id == site_id)
    latest: dict[tuple[int, str, str, str], tuple[datetime, int, str, bool]] = {}
    visits: dict[tuple[date, int], set[str]] = defaultdict(set)
    for (id_, site, taken_at, instrument, band, member_id, session_id,
         devices) in session.execute(query):
        who = person_key(id_, member_id, session_id)
        person = (site, taken_at.strftime("%Y-%m"), instrument, who)
        if person not in latest or (taken_at, id_) > latest[person][:2]:
            latest[person] = (taken_at, id_, band or NOT_SCORED, bool(devices))
        local = taken_at.astimezone(zone)
        visits[(local.date(), local.hour)].add(who)
    outcomes: Counts = defaultdict(lambda: defaultdict(int))
    origins: Counts = defaultdict(lambda: defaultdict(int))
    for (_site, _month, instrument, _who), (_at, _id, band, measured) in latest.items():
        outcomes[instrument][band] += 1
        origins[instrument][DEVICE if measured else SELF_REPORTED] += 1
    return outcomes, origins, visits


def _tallied(session: Session, months: tuple[str, str], site_id: int | None
             ) -> dict[tuple[str, str], int]:
    """People per instrument and band from the tallies of deleted answers."""
    query = (select(SubmissionTally.instrument_id, SubmissionTally.band,
                    func.sum(SubmissionTally.members))
             .where(SubmissionTally.month >= months[0], SubmissionTally.month <= months[1])
             .group_by(SubmissionTally.instrument_id, SubmissionTally.band))
    if site_id is not None:
        query = query.where(SubmissionTally.site_id == site_id)
    return {(i, b): int(n or 0) for i, b, n in session.execute(query) if n}


def _checkins(session: Session, start: datetime, end: datetime, site_id: int | None,
              zone: ZoneInfo, visits: dict[tuple[date, int], set[str]]) -> None:
    """Add event check-ins to the visits by local date and hour."""
    query = (select(Booking.member_id, Booking.checked_in_at)
             .join(Event, Event.id == Booking.event_id)
             .where(Booking.checked_in_at >= start, Booking.checked_in_at < end))
    if site_id is not None:
        query = query.where(Event.site_id == site_id)
    for member_id, at in session.execute(query):
        local = at.astimezone(zone)
        visits[(local.date(), local.hour)].add(person_key(0, member_id, None))


@lru_cache(maxsize=64)
def _instrument_labels(instrument_id: str) -> tuple[dict[str, str], tuple[tuple[str, Label], ...]]:
    """The instrument's title and its bands in the definition's order, from the assets."""
    try:
        definition = load_definition(instrument_id)
    except (KeyError, FileNotFoundError, ValueError):
        return {"en": instrument_id, "es": instrument_id}, ()
    bands = tuple((str(b["id"]), dict(b["label"]))
                  for b in definition.get("scoring", {}).get("bands", ()))
    return dict(definition["title"]), bands


def _screening_tables(outcomes: Mapping[str, Mapping[str, int]]) -> list[ReportTable]:
    """The screenings table, then one outcome table per instrument sharing its cells."""
    order = {iid: i for i, (iid, _v) in enumerate(list_instruments())}
    instruments = sorted((i for i, bands in outcomes.items() if sum(bands.values())),
                         key=lambda i: (order.get(i, len(order)), i))
    screened_counts: dict[tuple[str, str], int] = {}
    titles: dict[str, Label] = {}
    out: list[ReportTable] = []
    for instrument in instruments:
        title, known = _instrument_labels(instrument)
        titles[instrument] = title
        labels: dict[str, Label] = dict(known)
        seen = outcomes[instrument]
        rows = [b for b, _ in known] + sorted(b for b in seen if b not in labels)
        for band in rows:
            labels.setdefault(band, _NOT_SCORED_LABEL if band == NOT_SCORED
                              else {"en": band, "es": band})
        counts = {(band, PEOPLE): seen.get(band, 0) for band in rows}
        screened_counts[(instrument, PEOPLE)] = sum(counts.values())
        table_id = f"outcome_{instrument}"
        shared = {(table_id, TOTAL, PEOPLE): ("screenings", instrument, PEOPLE)}
        out.append(ReportTable(
            table_id, "outcome",
            Table(table_id, tuple(rows), (PEOPLE,), counts, col_totals=True, shared=shared),
            labels, {PEOPLE: {"en": "People", "es": "Personas"}}, title))
    screenings = ReportTable(
        "screenings", "screenings",
        Table("screenings", tuple(instruments), (PEOPLE,), screened_counts),
        titles, {PEOPLE: {"en": "People screened", "es": "Personas evaluadas"}})
    return [screenings, *out]


def _origin_table(outcomes: Mapping[str, Mapping[str, int]],
                  origins: Mapping[str, Mapping[str, int]]) -> ReportTable:
    """People per device instrument by where their counted reading came from.

    A row's total is the instrument's screenings cell (one key), so the split is suppressed
    together with the number it splits. The "not known" column is there only when a tally
    holds some of the period's people.
    """
    rows = tuple(i for i in DEVICE_INSTRUMENTS if sum(outcomes.get(i, {}).values()))
    unknown = any(origins.get(i, {}).get(NOT_RECORDED) for i in rows)
    cols = (DEVICE, SELF_REPORTED, *((NOT_RECORDED,) if unknown else ()))
    counts = {(i, c): origins.get(i, {}).get(c, 0) for i in rows for c in cols}
    shared = {("origin", i, TOTAL): ("screenings", i, PEOPLE) for i in rows}
    return ReportTable("origin", "origin",
                       Table("origin", rows, cols, counts, row_totals=True, shared=shared),
                       {i: _instrument_labels(i)[0] for i in rows},
                       {c: _ORIGIN_LABELS[c] for c in cols})


def _events_table(session: Session, start: datetime, end: datetime,
                  site_id: int | None) -> ReportTable:
    """Members per event by how their booking ended: checked in, no-show, or still booked."""
    query = (select(Event.public_id, Event.title, Event.title_es, Booking.member_id,
                    Booking.status)
             .join(Slot, Slot.id == Booking.slot_id).join(Event, Event.id == Booking.event_id)
             .where(Slot.start_at >= start, Slot.start_at < end,
                    Booking.status.in_(EVENT_COLUMNS)))
    if site_id is not None:
        query = query.where(Event.site_id == site_id)
    rank = {c: i for i, c in enumerate(EVENT_COLUMNS)}
    best: dict[tuple[str, int], str] = {}
    labels: dict[str, Label] = {}
    for event_id, title, title_es, member_id, status in session.execute(query):
        labels[event_id] = {"en": title, "es": title_es or title}
        seen = best.get((event_id, member_id))
        if seen is None or rank[status] < rank[seen]:
            best[(event_id, member_id)] = status
    counts = {(e, c): 0 for e in labels for c in EVENT_COLUMNS}
    for (event_id, _member), status in best.items():
        counts[(event_id, status)] += 1
    rows = tuple(sorted(labels, key=lambda e: (labels[e]["en"], e)))
    return ReportTable("events", "events",
                       Table("events", rows, EVENT_COLUMNS, counts, row_totals=True,
                             col_totals=True), labels, {
                           "checked_in": {"en": "Checked in", "es": "Registrados"},
                           "no_show": {"en": "No-show", "es": "No se presentaron"},
                           "booked": {"en": "Booked", "es": "Con cita"}})


def _day_hour_table(visits: Mapping[tuple[date, int], set[str]]) -> ReportTable:
    """People per local date and hour; a day's total adds its hours (a return visit counts)."""
    days = sorted({d for d, _h in visits})
    hours = sorted({h for _d, h in visits})
    counts = {(d.isoformat(), f"{h:02d}"): len(visits.get((d, h), ())) for d in days
              for h in hours}
    row_labels = {d.isoformat(): {"en": d.strftime("%a %Y-%m-%d"),
                                  "es": f"{_ES_DAYS[d.weekday()]} {d.isoformat()}"} for d in days}
    col_labels = {f"{h:02d}": {"en": f"{h:02d}:00", "es": f"{h:02d}:00"} for h in hours}
    return ReportTable("day_hour", "day_hour",
                       Table("day_hour", tuple(row_labels), tuple(col_labels), counts,
                             row_totals=True, col_totals=True), row_labels, col_labels)


_ES_DAYS = ("lun", "mar", "mié", "jue", "vie", "sáb", "dom")


def label(text: Label, language: str) -> str:
    """A label in the language, falling back to English."""
    return text.get(language) or text.get("en") or next(iter(text.values()), "")


def table_csv(report: EmployerReport, table: ReportTable, language: str = "en",
              hidden_mark: str = "suppressed", total_label: str = "Total") -> str:
    """One table as CSV with its margins; a suppressed cell reads ``hidden_mark``."""
    t = table.table
    cols = [*t.cols, *([TOTAL] if t.row_totals else [])]
    rows = [*t.rows, *([TOTAL] if t.col_totals else [])]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def name(labels: Mapping[str, Label], key: str) -> str:
        return total_label if key == TOTAL else label(labels[key], language)

    writer.writerow(_safe(["", *(name(table.col_labels, c) for c in cols)]))
    for row in rows:
        line: list[Any] = [name(table.row_labels, row)]
        for col in cols:
            if not t.has(row, col):
                line.append("")
                continue
            value = report.shown(table, row, col)
            line.append(hidden_mark if value is None else value)
        writer.writerow(_safe(line))
    return out.getvalue()


def _safe(cells: list[Any]) -> list[Any]:
    """Quote text a spreadsheet would run as a formula (event titles are typed by staff)."""
    return ["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c
            for c in cells]


def rows_of(table: ReportTable) -> Sequence[str]:
    """The table's row keys, with the totals row last when it has one."""
    return [*table.table.rows, *([TOTAL] if table.table.col_totals else [])]


def cols_of(table: ReportTable) -> Sequence[str]:
    """The table's column keys, with the totals column last when it has one."""
    return [*table.table.cols, *([TOTAL] if table.table.row_totals else [])]
