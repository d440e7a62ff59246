"""A report's tables built from the counted cells, with the labels of their rows and columns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache

from sqlalchemy import Integer, case, func, literal, select
from sqlalchemy.orm import Session

from shared.assessments import list_instruments, load_definition

from ...models import Booking, Event, Slot
from ..retention import NOT_SCORED
from ..suppression import TOTAL, Table
from .model import (
    DEVICE,
    DEVICE_INSTRUMENTS,
    EVENT_COLUMNS,
    NOT_RECORDED,
    PEOPLE,
    SELF_REPORTED,
    Label,
    ReportTable,
)

_ORIGIN_LABELS: dict[str, Label] = {
    DEVICE: {"en": "Measured by a device", "es": "Medido con un aparato"},
    SELF_REPORTED: {"en": "Typed by the member (self-reported)",
                    "es": "Escrito por la persona (autodeclarado)"},
    NOT_RECORDED: {"en": "Not known (answers deleted after the retention period)",
                   "es": "Se desconoce (respuestas eliminadas tras el período de conservación)"},
}
_NOT_SCORED_LABEL = {"en": "Not scored (items skipped)",
                     "es": "Sin puntuación (preguntas omitidas)"}


@lru_cache(maxsize=64)
def instrument_labels(instrument_id: str) -> tuple[dict[str, str], tuple[tuple[str, Label], ...]]:
    """The instrument's title and its bands in the definition's order, from the assets."""
    try:
        definition = load_definition(instrument_id)
    except (KeyError, FileNotFoundError, ValueError):
        return {"en": instrument_id, "es": instrument_id}, ()
    bands = tuple((str(b["id"]), dict(b["label"]))
                  for b in definition.get("scoring", {}).get("bands", ()))
    return dict(definition["title"]), bands


def screening_tables(outcomes: Mapping[str, Mapping[str, int]]) -> list[ReportTable]:
    """The screenings table, then one outcome table per instrument sharing its cells."""
    order = {iid: i for i, (iid, _v) in enumerate(list_instruments())}
    instruments = sorted((i for i, bands in outcomes.items() if sum(bands.values())),
                         key=lambda i: (order.get(i, len(order)), i))
    screened_counts: dict[tuple[str, str], int] = {}
    titles: dict[str, Label] = {}
    out: list[ReportTable] = []
    for instrument in instruments:
        title, known = instrument_labels(instrument)
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


def origin_table(outcomes: Mapping[str, Mapping[str, int]],
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
                       {i: instrument_labels(i)[0] for i in rows},
                       {c: _ORIGIN_LABELS[c] for c in cols})


def events_table(session: Session, start: datetime, end: datetime,
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


def day_hour_table(visits: Mapping[tuple[date, int], int]) -> ReportTable:
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
