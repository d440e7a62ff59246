"""The door list and the live view of an event day: who is coming, and how the day stands.

Names, times and booking status only, never health data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, joinedload

from ..models import Booking, Event, Member, Site, Slot, as_utc, utcnow
from . import bookings


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """Return the calendar day a moment falls on at the site."""
    return moment.astimezone(zone).date()


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC instants at which a local day begins and ends."""
    begin = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return begin, end


# The longest slot a run makes (events.add_slots: 480 minutes): a slot that started this long
# before a day began can still be running in it.
LONGEST_SLOT = timedelta(minutes=480)


def on_day(start_at: datetime, end_at: datetime, day: date, zone: ZoneInfo) -> bool:
    """Whether a slot is on the site's calendar day: it starts, runs or ends in it.

    A night-shift slot 23:45-00:15 is on both days, so the desk takes its ticket at 00:05.
    """
    begin, end = day_bounds(day, zone)
    return as_utc(start_at) < end and as_utc(end_at) > begin


def during_day(begin: datetime, end: datetime) -> ColumnElement[bool]:
    """SQL: the slots that start, run or end between a day's bounds (``day_bounds``)."""
    return and_(Slot.start_at < end, Slot.end_at > begin, Slot.start_at >= begin - LONGEST_SLOT)


# The states a door list shows, in its order: "late" is a check-in made after the slot ended.
PERSON_STATES = ("booked", "checked_in", "late", "no_show", "waitlisted")


@dataclass(frozen=True)
class Person:
    """One line of a door list: who, and where their booking stands (never health data)."""

    booking_id: str
    first_name: str
    last_name: str
    employee_id: str
    state: str  # one of PERSON_STATES
    checked_in_at: datetime | None
    waitlist_position: int | None
    start_at: datetime | None = None  # the slot's start, in lists that span slots


@dataclass(frozen=True)
class SlotPeople:
    """A slot with everyone booked in it (by last name) and its waitlist (in order)."""

    slot: Slot
    seated: list[Person]
    waiting: list[Person]


def who_is_coming(session: Session, event: Event) -> list[SlotPeople]:
    """Return each slot of the event with who holds a seat and who waits, with their state."""
    slots = list(event.slots)
    if not slots:
        return []
    rows = session.execute(
        select(Booking, Member).join(Member, Booking.member_id == Member.id)
        .where(Booking.slot_id.in_([s.id for s in slots]), Booking.status != "cancelled")
        .order_by(Booking.id)
    ).all()
    by_slot: dict[int, list[tuple[Booking, Member]]] = {}
    for booking, member in rows:
        by_slot.setdefault(booking.slot_id, []).append((booking, member))
    out = []
    for slot in slots:
        seated: list[Person] = []
        waiting: list[Person] = []
        for booking, member in by_slot.get(slot.id, []):
            state = booking.status
            if state == "checked_in" and bookings.arrived_late(booking):
                state = "late"
            person = Person(
                booking_id=booking.public_id, first_name=member.first_name,
                last_name=member.last_name, employee_id=member.employee_id, state=state,
                checked_in_at=booking.checked_in_at,
                waitlist_position=len(waiting) + 1 if state == "waitlisted" else None)
            (waiting if state == "waitlisted" else seated).append(person)
        seated.sort(key=lambda p: (p.last_name.lower(), p.first_name.lower(), p.employee_id))
        out.append(SlotPeople(slot=slot, seated=seated, waiting=waiting))
    return out


@dataclass(frozen=True)
class SlotCounts:
    """Seats and arrivals of one slot."""

    slot_id: str
    start_at: datetime
    end_at: datetime
    capacity: int
    taken: int
    free: int
    booked: int  # seated, not arrived yet
    checked_in: int
    waitlisted: int
    no_show: int
    cancelled: bool
    state: str  # upcoming | running | ended


def _state(slot: Slot, now: datetime) -> str:
    if slot.end_at <= now:
        return "ended"
    return "running" if slot.start_at <= now else "upcoming"


def day_view(session: Session, site: Site, day: date | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """Return the day's events and slots with seats taken and free, arrivals and waitlists."""
    now = now or utcnow()
    zone = ZoneInfo(site.timezone)
    day = day or local_day(now, zone)
    begin, end = day_bounds(day, zone)
    slots: Sequence[Slot] = session.scalars(
        select(Slot).options(joinedload(Slot.event)).join(Event, Slot.event_id == Event.id)
        .where(Event.site_id == site.id, during_day(begin, end))
        .order_by(Slot.start_at, Slot.id)
    ).all()
    counts: dict[tuple[int, str], int] = {}
    if slots:
        for slot_id, status, n in session.execute(
            select(Booking.slot_id, Booking.status, func.count())
            .where(Booking.slot_id.in_([s.id for s in slots]))
            .group_by(Booking.slot_id, Booking.status)
        ).all():
            counts[(slot_id, status)] = n
    events: dict[int, dict[str, Any]] = {}
    totals = {"capacity": 0, "taken": 0, "free": 0, "booked": 0, "checked_in": 0,
              "waitlisted": 0, "no_show": 0}
    for slot in slots:
        event = slot.event
        entry = events.setdefault(event.id, {
            "event_id": event.public_id, "title": event.title, "title_es": event.title_es,
            "location": event.location, "cancelled": event.cancelled, "slots": []})
        cancelled = slot.cancelled or event.cancelled
        row = SlotCounts(
            slot_id=slot.public_id, start_at=slot.start_at, end_at=slot.end_at,
            capacity=slot.capacity, taken=slot.booked_count,
            free=0 if cancelled else slot.seats_left,
            booked=counts.get((slot.id, "booked"), 0),
            checked_in=counts.get((slot.id, "checked_in"), 0),
            waitlisted=counts.get((slot.id, "waitlisted"), 0),
            no_show=counts.get((slot.id, "no_show"), 0), cancelled=cancelled,
            state=_state(slot, now))
        data = asdict(row)
        data["start_at"] = slot.start_at.isoformat()
        data["end_at"] = slot.end_at.isoformat()
        data["start_local"] = f"{slot.start_at.astimezone(zone):%H:%M}"
        data["end_local"] = f"{slot.end_at.astimezone(zone):%H:%M}"
        entry["slots"].append(data)
        if not cancelled:
            for name in totals:
                totals[name] += data[name]
    return {"day": day.isoformat(), "timezone": site.timezone, "now": now.isoformat(),
            "events": list(events.values()), "totals": totals}
