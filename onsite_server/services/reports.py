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

The database does the counting (issue 20): a window picks each person's latest answer, GROUP BY
counts them, and a UNION of (local hour, person) rows counts visits, so what comes back to
Python is the cells, not the period's rows (tests/onsite_server/services/
test_reports_counted.py holds it to a plain Python count of the rows on both databases).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, Integer, case, func, literal, null, select, union
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from shared.assessments import list_instruments, load_definition

from ..models import Booking, Event, Kiosk, Slot, Submission, SubmissionTally
from .errors import N_, ServiceError
from .retention import NOT_SCORED
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


def _months_between(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    """Every (year, month) from first to last, both included."""
    out = []
    year, month = first
    while (year, month) <= last:
        out.append((year, month))
        year, month = year + month // 12, month % 12 + 1
    return out


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

    month_starts = [_month_start(y, m) for y, m in _months_between(first, last)][1:]
    outcomes, origins, visits = _counted(session, start, end, month_starts, site_id, zone)
    for (instrument, band), n in _tallied(session, months, site_id).items():
        outcomes[instrument][band] += n
        origins[instrument][NOT_RECORDED] += n
    tables = [*_screening_tables(outcomes), _origin_table(outcomes, origins),
              _events_table(session, start, end, site_id), _day_hour_table(visits)]
    publication = Publication.of(t.table for t in tables)
    return EmployerReport(months[0], months[1], site_id, timezone, tuple(tables), publication,
                          suppress(publication, minimum))


Counts = dict[str, defaultdict[str, int]]
Column = ColumnElement[Any] | InstrumentedAttribute[Any]
Visits = dict[tuple[date, int], int]  # people per local (date, hour)

# Hours are counted from here so that an hour index is never negative: integer division then
# floors on both databases (SQLite's and PostgreSQL's truncate toward zero).
_HOUR_SHIFT = 1_000_000  # about 114 years of hours


class _Epoch(ColumnElement[int]):
    """Whole seconds since 1970 of a stored UTC time, on either database."""

    inherit_cache = True
    type = Integer()

    def __init__(self, column: Column) -> None:
        self.column = column


@compiles(_Epoch, "sqlite")
def _epoch_sqlite(element: _Epoch, compiler: Any, **kw: Any) -> str:
    # SQLite keeps the time as text, UTC; strftime('%s') reads it as whole seconds.
    return f"CAST(strftime('%s', {compiler.process(element.column, **kw)}) AS INTEGER)"


@compiles(_Epoch)
def _epoch_default(element: _Epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor(EXTRACT(EPOCH FROM {compiler.process(element.column, **kw)})) AS BIGINT)"


class _Measured(ColumnElement[int]):
    """1 when a submission's ``devices`` names at least one device, else 0."""

    inherit_cache = True
    type = Integer()

    def __init__(self, column: Column) -> None:
        self.column = column


@compiles(_Measured, "sqlite")
def _measured_sqlite(element: _Measured, compiler: Any, **kw: Any) -> str:
    # json_array_length is 0 for anything but an array, NULL for NULL.
    return f"(coalesce(json_array_length({compiler.process(element.column, **kw)}), 0) > 0)"


@compiles(_Measured)
def _measured_default(element: _Measured, compiler: Any, **kw: Any) -> str:
    # PostgreSQL's json_array_length refuses a scalar (a JSON null), so ask for arrays only.
    col = compiler.process(element.column, **kw)
    return (f"(CASE WHEN json_typeof({col}) = 'array' THEN json_array_length({col}) "
            "ELSE 0 END > 0)")


def _who(id_: Any, member_id: Any, session_id: Any) -> tuple[ColumnElement[Any], ...]:
    """``retention.person_key`` as three columns (member, else session, else the row): equal
    on all three is the same person. Rows read together (a window's partition, a UNION) treat
    NULLs as equal, which is what lets one column stand empty."""
    session_ = func.nullif(session_id, "")
    return (member_id, case((member_id.is_(None), session_), else_=None),
            case((member_id.is_(None) & session_.is_(None), id_), else_=None))


def _bounded(value: Column, bounds: Sequence[datetime],
             picks: Sequence[int]) -> ColumnElement[Any]:
    """``picks[i]`` for the i-th interval of ``value`` cut at ``bounds`` (one more pick than
    bounds); a constant when there is one interval."""
    if not bounds:
        return literal(picks[0], Integer())
    return case(*((value < b, literal(p, Integer())) for b, p in zip(bounds, picks,
                                                                      strict=False)),
                else_=literal(picks[-1], Integer()))


def _offsets(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[list[datetime], list[int]]:
    """The zone's UTC offsets (seconds) over [start, end) and the instants they change at."""

    def offset(second: int) -> int:
        delta = datetime.fromtimestamp(second, UTC).astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    first, last = int(start.timestamp()), int(end.timestamp())
    bounds: list[datetime] = []
    picks = [offset(first)]
    day = first
    while day < last:
        nxt = min(day + 86_400, last)
        if offset(nxt) == picks[-1]:  # zones change at most a few times a year, never twice a day
            day = nxt
            continue
        lo, hi = day, nxt  # zones change on a whole second: bisect to it
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if offset(mid) == picks[-1] else (lo, mid)
        if hi < last:
            bounds.append(datetime.fromtimestamp(hi, UTC))
            picks.append(offset(hi))
        day = hi
    return bounds, picks


def _counted(session: Session, start: datetime, end: datetime, months: Sequence[datetime],
             site_id: int | None, zone: ZoneInfo) -> tuple[Counts, Counts, Visits]:
    """People per instrument and band and per instrument and origin (each person once per
    site, month and instrument, by their latest answer), and people per local date and hour
    (kiosk users and check-ins), from the answers still here.

    Counted by the database in one statement (issue 20): the period's rows are read once into
    a materialized CTE (reading them is the cost: they lie all over the table), a window
    numbers each person's answers newest first and GROUP BY counts the first ones, and a
    UNION of (local hour, person) counts visits. Only the cells come back.
    """
    bounds, picks = _offsets(zone, start, end)

    def hour(at: Any) -> ColumnElement[Any]:
        # The local hour is the UTC time shifted by the zone's offset at that instant.
        return (_Epoch(at) + _bounded(at, bounds, picks)
                + literal(_HOUR_SHIFT * 3600, BigInteger())) // 3600

    who = _who(Submission.id, Submission.member_id, Submission.session_id)
    rows_q = (select(Kiosk.site_id.label("site"),
                     _bounded(Submission.taken_at, months,
                              list(range(len(months) + 1))).label("month"),
                     Submission.instrument_id.label("instrument"),
                     func.coalesce(func.nullif(Submission.result["band"].as_string(), ""),
                                   NOT_SCORED).label("band"),
                     case((_Measured(Submission.devices), 1), else_=0).label("measured"),
                     Submission.taken_at.label("taken_at"), Submission.id.label("id"),
                     hour(Submission.taken_at).label("hour"),
                     *(c.label(n) for c, n in zip(who, ("m", "s", "r"), strict=True)))
              .join(Kiosk, Kiosk.id == Submission.kiosk_id)
              .where(Submission.taken_at >= start, Submission.taken_at < end))
    desk = (select(hour(Booking.checked_in_at).label("hour"), Booking.member_id.label("m"),
                   null().label("s"), null().label("r"))
            .join(Event, Event.id == Booking.event_id)
            .where(Booking.checked_in_at >= start, Booking.checked_in_at < end))
    if site_id is not None:
        rows_q = rows_q.where(Kiosk.site_id == site_id)
        desk = desk.where(Event.site_id == site_id)
    rows = rows_q.cte("period_rows").prefix_with("MATERIALIZED")
    ranked = select(rows.c.instrument, rows.c.band, rows.c.measured,
                    func.row_number().over(
                        partition_by=(rows.c.site, rows.c.month, rows.c.instrument,
                                      rows.c.m, rows.c.s, rows.c.r),
                        order_by=(rows.c.taken_at.desc(), rows.c.id.desc())).label("rank")
                    ).subquery("ranked")
    latest = (select(literal("outcome").label("part"), ranked.c.instrument, ranked.c.band,
                     ranked.c.measured.label("number"), func.count().label("n"))
              .where(ranked.c.rank == 1)
              .group_by(ranked.c.instrument, ranked.c.band, ranked.c.measured))
    # UNION, not UNION ALL: one row per person and hour, whichever way they came.
    people = union(select(rows.c.hour, rows.c.m, rows.c.s, rows.c.r), desk).subquery("people")
    visits_q = (select(literal("visit").label("part"), null().label("instrument"),
                       null().label("band"), people.c.hour.label("number"),
                       func.count().label("n"))
                .group_by(people.c.hour))
    outcomes: Counts = defaultdict(lambda: defaultdict(int))
    origins: Counts = defaultdict(lambda: defaultdict(int))
    visits: Visits = {}
    epoch = datetime(1970, 1, 1)
    for part, instrument, band, number, n in session.execute(latest.union_all(visits_q)):
        if part == "outcome":
            outcomes[instrument][band] += n
            origins[instrument][DEVICE if number else SELF_REPORTED] += n
        else:
            local = epoch + timedelta(hours=int(number) - _HOUR_SHIFT)
            visits[(local.date(), local.hour)] = int(n)
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
    """Members per event by how their booking ended: checked in, no-show, or still booked.

    A member with several bookings of one event counts once, by the best of them (checked in
    before no-show before booked); the database picks it and counts.
    """
    rank = case(*((Booking.status == c, literal(i, Integer()))
                  for i, c in enumerate(EVENT_COLUMNS)), else_=literal(len(EVENT_COLUMNS)))
    best = (select(Booking.event_id.label("event_id"), func.min(rank).label("best"))
            .join(Slot, Slot.id == Booking.slot_id).join(Event, Event.id == Booking.event_id)
            .where(Slot.start_at >= start, Slot.start_at < end,
                   Booking.status.in_(EVENT_COLUMNS))
            .group_by(Booking.event_id, Booking.member_id))
    if site_id is not None:
        best = best.where(Event.site_id == site_id)
    per_member = best.subquery("per_member")
    query = (select(Event.public_id, Event.title, Event.title_es, per_member.c.best,
                    func.count())
             .join(per_member, per_member.c.event_id == Event.id)
             .group_by(Event.id, Event.public_id, Event.title, Event.title_es,
                       per_member.c.best))
    labels: dict[str, Label] = {}
    found: list[tuple[str, int, int]] = []
    for event_id, title, title_es, status_rank, n in session.execute(query):
        labels[event_id] = {"en": title, "es": title_es or title}
        found.append((event_id, int(status_rank), int(n)))
    counts = {(e, c): 0 for e in labels for c in EVENT_COLUMNS}
    for event_id, status_rank, n in found:
        counts[(event_id, EVENT_COLUMNS[status_rank])] += n
    rows = tuple(sorted(labels, key=lambda e: (labels[e]["en"], e)))
    return ReportTable("events", "events",
                       Table("events", rows, EVENT_COLUMNS, counts, row_totals=True,
                             col_totals=True), labels, {
                           "checked_in": {"en": "Checked in", "es": "Registrados"},
                           "no_show": {"en": "No-show", "es": "No se presentaron"},
                           "booked": {"en": "Booked", "es": "Con cita"}})


def _day_hour_table(visits: Mapping[tuple[date, int], int]) -> ReportTable:
    """People per local date and hour; a day's total adds its hours (a return visit counts)."""
    days = sorted({d for d, _h in visits})
    hours = sorted({h for _d, h in visits})
    counts = {(d.isoformat(), f"{h:02d}"): visits.get((d, h), 0) for d in days for h in hours}
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
