"""Events and slots: what the CLI and the coordinators' dashboard both do to a site's events.

Create and edit events, generate a day's slots in the site's local time, change a slot's
capacity, cancel a slot or a whole event (the members affected are listed, and told through
central), promote from the waitlist, and export the roster (CSV) and the calendar (.ics).
Seat accounting and the messages to members stay in ``bookings`` (which queues them through
``messages``); this module adds validation, the previews and the exports. Nothing here
ever reads a member's answers or results.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from ..models import EVENT_KINDS, AuditLog, Booking, Event, Site, Slot, utcnow
from . import bookings
from .errors import N_, ServiceError

# The event's files (roster CSV, calendar) live in event_files; callers read them here too.
from .event_files import ROSTER_COLUMNS as ROSTER_COLUMNS
from .event_files import calendar_ics as calendar_ics
from .event_files import roster_csv as roster_csv

MAX_SLOTS_PER_RUN = 200
MAX_CAPACITY = 1000
TITLE_MAX = 200
DESCRIPTION_MAX = 2000  # as the dashboard form allows
# C0 controls but tab and line breaks, and DEL: no one types them, and an event's title and
# place go to central in FHIR strings, which may not hold them (the Bundle would be refused).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
KIND_LABELS = {
    "biometric_screening": ("Biometric screening", "Evaluación biométrica"),
    "flu_shot": ("Flu shot", "Vacuna contra la gripe"),
    "coaching": ("Coaching", "Coaching de salud"),
    "other": ("Other", "Otro"),
}


# Slots are made on days in this range: a day outside it is a typo (9999 for 2027), and the
# ends of the calendar cannot be turned into UTC at all (year 1 east of UTC, 9999 west of it).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)


class SlotTimeError(ValueError):
    """A local day or time that cannot hold a slot at the site: the field, then the message.

    A time the clocks skip (spring forward), or a day outside FIRST_DAY..LAST_DAY.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _invalid(field: str, message: str, title: str = "Invalid event") -> ServiceError:
    return ServiceError("invalid", title, [{"field": field, "message": message}])


def _conflict(field: str, message: str, title: str = "Refused") -> ServiceError:
    return ServiceError("conflict", title, [{"field": field, "message": message}])


def site_zone(site: Site) -> ZoneInfo:
    """Return the site's time zone."""
    return ZoneInfo(site.timezone)


# --- events ----------------------------------------------------------------------------------


def _control_errors(texts: dict[str, str | None]) -> list[dict[str, str]]:
    """Name each text holding a control character (``_CONTROL``)."""
    return [{"field": name, "message": N_("contains control characters")}
            for name, text in texts.items() if text and _CONTROL.search(text)]


@dataclass(frozen=True)
class EventInput:
    """What a coordinator (or the CLI) says about an event."""

    title: str
    kind: str = "other"
    title_es: str | None = None
    location: str | None = None
    description: str | None = None
    description_es: str | None = None

    def cleaned(self) -> EventInput:
        """Return the input trimmed, or raise ServiceError naming each bad field."""
        errors = []
        title = self.title.strip()
        if not title:
            errors.append({"field": "title", "message": N_("is required")})
        elif len(title) > TITLE_MAX:
            errors.append({"field": "title", "message": N_("is longer than %(n)d characters",
                                                            n=TITLE_MAX)})
        title_es = (self.title_es or "").strip() or None
        if title_es and len(title_es) > TITLE_MAX:
            errors.append({"field": "title_es",
                           "message": N_("is longer than %(n)d characters", n=TITLE_MAX)})
        if self.kind not in EVENT_KINDS:
            errors.append({"field": "kind", "message": N_("must be one of %(choices)s",
                                                           choices=", ".join(EVENT_KINDS))})
        location = (self.location or "").strip() or None
        if location and len(location) > TITLE_MAX:
            errors.append({"field": "location",
                           "message": N_("is longer than %(n)d characters", n=TITLE_MAX)})
        descriptions = {}
        for name in ("description", "description_es"):
            text = (getattr(self, name) or "").strip() or None
            if text and len(text) > DESCRIPTION_MAX:
                errors.append({"field": name, "message": N_("is longer than %(n)d characters",
                                                             n=DESCRIPTION_MAX)})
            descriptions[name] = text
        errors += _control_errors({"title": title, "title_es": title_es, "location": location,
                                   **descriptions})
        if errors:
            raise ServiceError("invalid", "Invalid event", errors)
        return EventInput(title=title, kind=self.kind, title_es=title_es, location=location,
                          **descriptions)


def create_event(session: Session, site: Site, data: EventInput, actor: str) -> Event:
    """Create an event at a site."""
    data = data.cleaned()
    event = Event(site_id=site.id, title=data.title, title_es=data.title_es, kind=data.kind,
                  location=data.location, description=data.description,
                  description_es=data.description_es)
    session.add(event)
    session.flush()
    session.add(AuditLog(actor=actor, action="event.created", subject=f"event:{event.public_id}",
                         detail={"title": event.title}))
    return event


def update_event(session: Session, event: Event, data: EventInput, actor: str) -> Event:
    """Change an event's title, kind, place and description."""
    if event.cancelled:
        raise _conflict("event_id", N_("the event has been cancelled"))
    data = data.cleaned()
    event.title, event.title_es, event.kind = data.title, data.title_es, data.kind
    event.location, event.description = data.location, data.description
    event.description_es = data.description_es
    session.add(AuditLog(actor=actor, action="event.updated", subject=f"event:{event.public_id}",
                         detail={"title": event.title}))
    session.flush()
    return event


def find_event(session: Session, site_id: int, public_id: str) -> Event:
    """Return the event with this public id at this site, or raise not_found."""
    event = session.scalars(select(Event).where(Event.public_id == public_id.lower(),
                                                Event.site_id == site_id)).first()
    if event is None:
        raise ServiceError("not_found", "Not found",
                           [{"field": "event_id", "message": N_("no such event at this site")}])
    return event


def find_slot(session: Session, site_id: int, public_id: str) -> Slot:
    """Return the slot with this public id at this site, or raise not_found."""
    return bookings.find_slot(session, site_id, public_id)  # BookingError: a ServiceError


@dataclass(frozen=True)
class EventSummary:
    """One line of the event list."""

    event: Event
    first_start: datetime | None
    last_end: datetime | None
    slot_count: int
    capacity: int
    taken: int


def list_events(session: Session, site: Site, *, include_past: bool = False,
                now: datetime | None = None) -> list[EventSummary]:
    """Return the site's events with their first and last slot and seat counts, soonest first."""
    now = now or utcnow()
    events = session.scalars(select(Event).options(joinedload(Event.slots))
                             .where(Event.site_id == site.id)).unique().all()
    out = []
    for event in events:
        live = [s for s in event.slots if not s.cancelled]
        first = min((s.start_at for s in event.slots), default=None)
        last = max((s.end_at for s in event.slots), default=None)
        if not include_past and last is not None and last <= now:
            continue
        out.append(EventSummary(
            event=event, first_start=first, last_end=last, slot_count=len(live),
            capacity=sum(s.capacity for s in live), taken=sum(s.booked_count for s in live)))
    far = datetime.max.replace(tzinfo=UTC)
    out.sort(key=lambda e: (e.event.cancelled, e.first_start or far, e.event.id))
    return out


def first_upcoming_slot(session: Session, site: Site,
                        now: datetime | None = None) -> tuple[int, datetime | None]:
    """The number of the site's slots still to start (not cancelled) and the first one's start.

    What a change of the site's time zone moves on the clock: slots keep their moment in time.
    """
    now = now or utcnow()
    count, first = session.execute(
        select(func.count(Slot.id), func.min(Slot.start_at)).join(Event)
        .where(Event.site_id == site.id, Event.cancelled.is_(False),
               Slot.cancelled.is_(False), Slot.start_at > now)).one()
    return int(count), first


# --- slots -----------------------------------------------------------------------------------


def make_slots(event: Event, day: date, start: time, count: int, minutes: int,
               capacity: int, zone: ZoneInfo) -> list[Slot]:
    """Build count consecutive slots starting at local day+start, stored in UTC.

    Steps are taken in UTC so that slots stay back to back across a DST change; a local start
    time that does not exist (skipped by spring-forward) is refused rather than guessed.
    """
    first = local_moment(day, start, zone, "start")
    out = []
    for i in range(count):
        begin = first + timedelta(minutes=minutes * i)
        out.append(Slot(event_id=event.id, start_at=begin,
                        end_at=begin + timedelta(minutes=minutes), capacity=capacity))
    return out


def local_moment(day: date, at: time, zone: ZoneInfo, field: str) -> datetime:
    """The UTC moment of a local day and time at the site, or SlotTimeError naming the field.

    A time the clocks skip (spring forward) is refused rather than guessed. A time that
    happens twice (fall back) is its first occurrence, still on summer time, as RFC 5545
    reads a local time (section 3.3.5); docs/event-day.md says so to coordinators.
    """
    if not FIRST_DAY <= day <= LAST_DAY:
        raise SlotTimeError("day", N_("must be between %(first)s and %(last)s",
                                      first=FIRST_DAY.isoformat(), last=LAST_DAY.isoformat()))
    local = datetime.combine(day, at, tzinfo=zone)
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise SlotTimeError(field, N_("%(day)s %(time)s does not exist in %(zone)s (clocks "
                                      "skip it)", day=day.isoformat(),
                                      time=at.strftime("%H:%M"), zone=zone.key))
    return moment


@dataclass(frozen=True)
class SlotPlan:
    """A run of slots to generate: a local day from start to end, one slot every `every` min."""

    day: date
    start: time
    end: time
    every: int = 15
    capacity: int = 1

    def count(self, zone: ZoneInfo) -> int:
        """How many whole slots fit between start and end (local times, DST-aware).

        Raises SlotTimeError for a start or end the clocks skip, or a day out of range.
        """
        begin = local_moment(self.day, self.start, zone, "start")
        finish = local_moment(self.day, self.end, zone, "end")
        return int((finish - begin).total_seconds() // 60) // self.every


def add_slots(session: Session, event: Event, day: date, start: time, count: int,
              minutes: int, capacity: int, zone: ZoneInfo, actor: str) -> list[Slot]:
    """Add count consecutive slots of `minutes` from local day+start (the CLI's form).

    Refuses a run that overlaps one of the event's slots, holds more than MAX_SLOTS_PER_RUN
    slots, or starts at a local time the clocks skip.
    """
    if event.cancelled:
        raise _conflict("event_id", N_("the event has been cancelled"))
    errors = []
    if not 1 <= count <= MAX_SLOTS_PER_RUN:
        errors.append({"field": "count", "message": N_("must be 1 to %(n)d", n=MAX_SLOTS_PER_RUN)})
    if not 5 <= minutes <= 480:
        errors.append({"field": "every", "message": N_("must be 5 to 480 minutes")})
    if not 1 <= capacity <= MAX_CAPACITY:
        errors.append({"field": "capacity", "message": N_("must be 1 to %(n)d", n=MAX_CAPACITY)})
    if errors:
        raise ServiceError("invalid", "Invalid slots", errors)
    try:
        slots = make_slots(event, day, start, count, minutes, capacity, zone)
    except SlotTimeError as exc:
        raise _invalid(exc.field, exc.args[0], "Invalid slots") from exc
    existing = session.scalars(select(Slot).where(Slot.event_id == event.id,
                                                  Slot.cancelled.is_(False))).all()
    for new in slots:
        for old in existing:
            if new.start_at < old.end_at and old.start_at < new.end_at:
                clash = old.start_at.astimezone(zone)
                raise _conflict("start", N_("overlaps the slot at %(at)s",
                                            at=clash.strftime("%Y-%m-%d %H:%M")), "Slots overlap")
    session.add_all(slots)
    session.flush()
    session.add(AuditLog(actor=actor, action="slots.generated",
                         subject=f"event:{event.public_id}",
                         detail={"count": count, "every": minutes, "capacity": capacity,
                                 "first": slots[0].start_at.isoformat()}))
    return slots


def generate_slots(session: Session, event: Event, plan: SlotPlan, zone: ZoneInfo,
                   actor: str, now: datetime | None = None) -> list[Slot]:
    """Add slots to an event from a plan (e.g. 9:00-12:00 every 15 min, 2 seats each).

    As ``add_slots``, and refuses a run that starts in the past or leaves no whole slot.
    """
    now = now or utcnow()
    if plan.end <= plan.start:
        raise _invalid("end", N_("must be after the start"), "Invalid slots")
    if not 5 <= plan.every <= 480:
        raise _invalid("every", N_("must be 5 to 480 minutes"), "Invalid slots")
    try:
        count = plan.count(zone)
    except SlotTimeError as exc:
        raise _invalid(exc.field, exc.args[0], "Invalid slots") from exc
    if count < 1:
        raise _invalid("end", N_("leaves no room for one %(n)d-minute slot", n=plan.every),
                       "Invalid slots")
    if count > MAX_SLOTS_PER_RUN:
        raise _invalid("end", N_("would make %(count)d slots; at most %(n)d at once", count=count,
                                  n=MAX_SLOTS_PER_RUN),
                       "Invalid slots")
    if datetime.combine(plan.day, plan.start, tzinfo=zone) <= now:
        raise _invalid("start", N_("is in the past"), "Invalid slots")
    return add_slots(session, event, plan.day, plan.start, count, plan.every, plan.capacity,
                     zone, actor)


def set_capacity(session: Session, slot: Slot, capacity: int, actor: str,
                 now: datetime | None = None) -> list[Booking]:
    """Change a slot's capacity (never below the seats taken); return who moved up (told)."""
    if not 0 <= capacity <= MAX_CAPACITY:
        raise _invalid("capacity", N_("must be 0 to %(n)d", n=MAX_CAPACITY), "Invalid capacity")
    return bookings.set_capacity(session, slot, capacity, actor, now)


def promote(session: Session, slot: Slot, actor: str, booking_public_id: str | None = None,
            now: datetime | None = None) -> Booking:
    """Promote the first waitlisted booking (or the one named) into a free seat; they are told."""
    booking = None
    if booking_public_id:
        booking = bookings.find_booking(session, slot.event.site_id, booking_public_id)
    return bookings.promote(session, slot, actor, booking=booking, now=now)


# --- cancelling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Affected:
    """A member whose booking a cancellation ends (names and times only)."""

    booking_id: str
    member_id: str
    first_name: str
    last_name: str
    employee_id: str
    status: str
    start_at: datetime
    end_at: datetime


def _affected(booking: Booking, status: str | None = None) -> Affected:
    return Affected(booking_id=booking.public_id, member_id=booking.member.public_id,
                    first_name=booking.member.first_name, last_name=booking.member.last_name,
                    employee_id=booking.member.employee_id, status=status or booking.status,
                    start_at=booking.slot.start_at, end_at=booking.slot.end_at)


def affected_by(session: Session, slots: Iterable[Slot],
                now: datetime | None = None) -> list[Affected]:
    """Preview who a cancellation of these slots would reach: booked and waitlisted members."""
    now = now or utcnow()
    ids = [s.id for s in slots if not s.cancelled and s.end_at > now]
    if not ids:
        return []
    rows = session.scalars(
        select(Booking).options(joinedload(Booking.member), joinedload(Booking.slot))
        .where(Booking.slot_id.in_(ids), Booking.status.in_(bookings.CANCELLABLE))
    ).all()
    out = [_affected(b) for b in rows]
    out.sort(key=lambda a: (a.start_at, a.last_name, a.first_name))
    return out


def cancel_slot(session: Session, slot: Slot, actor: str,
                now: datetime | None = None) -> list[Affected]:
    """Cancel one slot; every booked or waitlisted member is told through central (bookings)."""
    cancelled = bookings.cancel_slot(session, slot, actor, now)
    session.add(AuditLog(actor=actor, action="slot.cancelled", subject=f"slot:{slot.public_id}",
                         detail={"bookings": len(cancelled)}))
    return [_affected(b, previous) for b, previous in cancelled]


def cancel_event(session: Session, event: Event, actor: str,
                 now: datetime | None = None) -> list[Affected]:
    """Cancel an event and its slots that have not ended; return the members affected."""
    now = now or utcnow()
    if event.cancelled:
        return []
    event.cancelled = True
    session.flush()
    affected: list[Affected] = []
    for slot in list(event.slots):
        if not slot.cancelled and slot.end_at > now:
            affected += cancel_slot(session, slot, actor, now)
    session.add(AuditLog(actor=actor, action="event.cancelled",
                         subject=f"event:{event.public_id}", detail={"bookings": len(affected)}))
    return affected


# --- waitlist --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitlistSlot:
    """A slot with its waitlist in order, and whether a seat is free to promote into."""

    slot: Slot
    free: int
    waiting: list[bookings.SlotBookingRow]


def waitlist(session: Session, event: Event, now: datetime | None = None) -> list[WaitlistSlot]:
    """Return the event's slots that have a waitlist and have not ended, soonest first."""
    now = now or utcnow()
    out = []
    for slot in event.slots:
        if slot.cancelled or slot.end_at <= now:
            continue
        waiting = [r for r in bookings.list_slot_bookings(session, slot)
                   if r.status == "waitlisted"]
        if waiting:
            out.append(WaitlistSlot(slot=slot, free=slot.seats_left, waiting=waiting))
    return out


def waiting_counts(session: Session, event: Event) -> dict[int, int]:
    """Return how many are waitlisted in each of the event's slots (slot id -> count)."""
    rows = session.execute(
        select(Booking.slot_id, func.count()).where(Booking.event_id == event.id,
                                                    Booking.status == "waitlisted")
        .group_by(Booking.slot_id)
    ).all()
    return {slot_id: n for slot_id, n in rows}


def event_summary_dict(summary: EventSummary) -> dict[str, Any]:
    """Describe an event-list line as plain data (for JSON callers)."""
    event = summary.event
    return {"event_id": event.public_id, "title": event.title, "title_es": event.title_es,
            "kind": event.kind, "location": event.location, "cancelled": event.cancelled,
            "first_start": summary.first_start, "last_end": summary.last_end,
            "slots": summary.slot_count, "capacity": summary.capacity, "taken": summary.taken}
