"""Build one employer report for whole months, its small cells suppressed across tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from ..errors import N_, ServiceError
from ..suppression import DEFAULT_MINIMUM, Publication, SuppressionError, check_minimum, suppress
from .counting import counted, tallied
from .model import NOT_RECORDED, EmployerReport
from .tables import day_hour_table, events_table, origin_table, screening_tables

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


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
    outcomes, origins, visits = counted(session, start, end, month_starts, site_id, zone)
    for (instrument, band), n in tallied(session, months, site_id).items():
        outcomes[instrument][band] += n
        origins[instrument][NOT_RECORDED] += n
    tables = [*screening_tables(outcomes), origin_table(outcomes, origins),
              events_table(session, start, end, site_id), day_hour_table(visits)]
    publication = Publication.of(t.table for t in tables)
    return EmployerReport(months[0], months[1], site_id, timezone, tuple(tables), publication,
                          suppress(publication, minimum))
