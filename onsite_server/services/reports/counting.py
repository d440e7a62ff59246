"""The database counts a report's cells: people per instrument, band, origin and local hour.

A window picks each person's latest answer, GROUP BY counts them, and a UNION of (local hour,
person) rows counts visits, so what comes back to Python is the cells, not the period's rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, case, func, literal, null, select, union
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from ...models import Booking, Event, Kiosk, Submission, SubmissionTally
from ..retention import NOT_SCORED
from .model import DEVICE, SELF_REPORTED

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


def counted(session: Session, start: datetime, end: datetime, months: Sequence[datetime],
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


def tallied(session: Session, months: tuple[str, str], site_id: int | None
             ) -> dict[tuple[str, str], int]:
    """People per instrument and band from the tallies of deleted answers."""
    query = (select(SubmissionTally.instrument_id, SubmissionTally.band,
                    func.sum(SubmissionTally.members))
             .where(SubmissionTally.month >= months[0], SubmissionTally.month <= months[1])
             .group_by(SubmissionTally.instrument_id, SubmissionTally.band))
    if site_id is not None:
        query = query.where(SubmissionTally.site_id == site_id)
    return {(i, b): int(n or 0) for i, b, n in session.execute(query) if n}
