"""Event day at the door: check-in by scanned ticket or by search, walk-ins, no-shows, live view.

A ticket is verified with the site's own public keys (``shared.tokens``) and recorded in the
site's database, so check-in keeps working while the server has no connection to central.
Every refusal carries a stable ``reason`` code the page translates, and the field it is
about. Nothing here reads a member's answers or results: coordinators see who booked and who
came, never health data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload

from shared.tokens import KeyRing, Purpose, TokenError, verify

from ..models import AuditLog, Booking, Event, Member, Site, Slot, as_utc, utcnow
from . import bookings
from .errors import N_, ServiceError

# The door list and the day's live view live in event_day; callers read them here too.
from .event_day import PERSON_STATES as PERSON_STATES
from .event_day import Person as Person
from .event_day import SlotCounts as SlotCounts
from .event_day import SlotPeople as SlotPeople
from .event_day import day_bounds as day_bounds
from .event_day import day_view as day_view
from .event_day import during_day, local_day, on_day
from .event_day import who_is_coming as who_is_coming
from .signing import KeyStore
from .tickets import revoked_ticket_ids, ticket_id

SEARCH_MIN_CHARS = 2
SEARCH_LIMIT = 25


NAME_MAX = 100

# Token refusals as the door sees them: a forged ticket and one signed by a key this site
# never had look the same to the person at the desk.
_TOKEN_REASONS = {
    "malformed": "malformed", "non_canonical": "malformed", "unknown_key": "forged",
    "bad_signature": "forged", "wrong_purpose": "wrong_purpose", "expired": "expired",
    "not_yet_valid": "not_yet_valid", "revoked": "revoked",
    # A retired (compromised) key's signature proves nothing any more: treat it as forged.
    "retired_key": "forged",
}
REASONS = ("malformed", "forged", "wrong_purpose", "expired", "not_yet_valid", "revoked",
           "unknown_booking", "other_day", "cancelled", "waitlisted", "no_show")


class CheckInRefused(ServiceError):
    """A check-in refused, with a stable reason code (one of REASONS) for the page."""

    def __init__(self, reason: str, message: str, field_name: str = "ticket",
                 at: datetime | None = None, booking_id: str | None = None) -> None:
        super().__init__("conflict", "Check-in refused",
                         [{"field": field_name, "message": message}], reason=reason)
        self.at = at  # the slot's start, when the reason is about its time
        # The booking found, when the desk can still act on it (a no-show arriving late).
        self.booking_id = booking_id


@dataclass(frozen=True)
class CheckedIn:
    """Who was checked in, where and when; `already` when they had been before."""

    booking_id: str
    first_name: str
    last_name: str
    employee_id: str
    event_title: str
    event_title_es: str | None
    start_at: datetime
    end_at: datetime
    checked_in_at: datetime | None
    status: str
    already: bool = False
    waitlist_position: int | None = None
    late: bool = False  # checked in only after the slot had ended

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-ready data."""
        # A shallow copy: dataclasses.asdict deep-copies every value (each datetime too),
        # which cost the desk's answer more than building the rest of it.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("start_at", "end_at", "checked_in_at"):
            if data[name] is not None:
                data[name] = data[name].isoformat()
        return data


def extract_token(scanned: str) -> str:
    """Return the token in what a scanner typed: a ticket URL ending /ticket/<token>, or it bare."""
    text = (scanned or "").strip()
    if "/ticket/" in text:
        text = text.rsplit("/ticket/", 1)[1]
        for mark in ("?", "#"):
            text = text.split(mark, 1)[0]
        text = text.rstrip("/")
        text = text.removesuffix(".ics")
    if not text:
        raise CheckInRefused("malformed", "is empty: scan the ticket's QR code or type its code")
    return text


def ticket_ring(session: Session, keys: KeyStore, grace: timedelta,
                now: datetime | None = None) -> KeyRing:
    """Return the site's verifying keys with the ids of revoked (cancelled) tickets."""
    return keys.ring(revoked_ticket_ids(session, grace, now))


# The scanned ticket's booking with what the answer and the audit row name; built once, as
# building it (three joined loads) cost about as much as running it.
_TICKET_BOOKING = (
    select(Booking).options(joinedload(Booking.member), joinedload(Booking.slot),
                            joinedload(Booking.event))
    .where(Booking.public_id == bindparam("public_id")))


@dataclass(frozen=True)
class TicketBooking:
    """A scanned ticket's booking as one row of plain values: what the desk checks, answers
    and writes, read before the write lock is taken (``read_ticket``)."""

    id: int
    public_id: str
    status: str
    checked_in_at: datetime | None
    member_public_id: str
    first_name: str
    last_name: str
    employee_id: str
    slot_public_id: str
    start_at: datetime
    end_at: datetime
    event_public_id: str
    event_title: str
    event_title_es: str | None
    site_id: int
    timezone: str

    def booked_row(self) -> bookings.BookedRow:
        """Return what the booking's check-in writes name."""
        return bookings.BookedRow(
            id=self.id, public_id=self.public_id, member_public_id=self.member_public_id,
            slot_public_id=self.slot_public_id, event_public_id=self.event_public_id,
            site_id=self.site_id, end_at=self.end_at)


def _ticket_row_statement() -> Any:
    booking, member, slot, event, site = (
        cast(Table, model.__table__) for model in (Booking, Member, Slot, Event, Site))
    return (
        select(booking.c.id, booking.c.public_id, booking.c.status, booking.c.checked_in_at,
               member.c.public_id, member.c.first_name, member.c.last_name,
               member.c.employee_id, slot.c.public_id, slot.c.start_at, slot.c.end_at,
               event.c.public_id, event.c.title, event.c.title_es, event.c.site_id,
               site.c.timezone)
        .join_from(booking, member, booking.c.member_id == member.c.id)
        .join(slot, booking.c.slot_id == slot.c.id)
        .join(event, booking.c.event_id == event.c.id)
        .join(site, event.c.site_id == site.c.id)
        .where(booking.c.public_id == bindparam("public_id")))


# Columns, not objects: loading a booking with its member, slot and event as four mapped
# objects cost the scan more than the database's work. Built once, with a bound parameter.
_TICKET_ROW = _ticket_row_statement()


def _revoked(status: str, public_id: str, end_at: datetime, token_id: str,
             grace: timedelta, now: datetime) -> bool:
    """Whether the ticket is one ``revoked_ticket_ids`` would list: its booking is cancelled
    and its slot ended less than ``grace`` ago."""
    return status == "cancelled" and token_id == ticket_id(public_id) and \
        as_utc(end_at) > now - grace


def _describe(booking: Booking, already: bool = False) -> CheckedIn:
    member, slot, event = booking.member, booking.slot, booking.event
    return CheckedIn(
        booking_id=booking.public_id, first_name=member.first_name, last_name=member.last_name,
        employee_id=member.employee_id, event_title=event.title, event_title_es=event.title_es,
        start_at=slot.start_at, end_at=slot.end_at, checked_in_at=booking.checked_in_at,
        status=booking.status, already=already, late=bookings.arrived_late(booking))


def _record(session: Session, booking: Booking, zone: ZoneInfo, actor: str,
            now: datetime, late: bool = False) -> CheckedIn:
    """Check a booking in after the ticket (or the search) found it.

    A no-show is refused unless ``late`` says the desk chose to take them in as arrived
    late; the refusal names the booking so the desk can offer exactly that.
    """
    if booking.status == "checked_in":
        return _describe(booking, already=True)
    if booking.status == "cancelled":
        raise CheckInRefused("cancelled", "the booking was cancelled")
    if booking.status == "waitlisted":
        raise CheckInRefused("waitlisted", "the member is on the waitlist, not in a seat; "
                                           "promote them first if a seat is free")
    if booking.status == "no_show" and not late:
        raise CheckInRefused("no_show", "the slot ended and the booking was marked a no-show; "
                             "check them in as arrived late if they are here",
                             booking_id=booking.public_id)
    if not on_day(booking.slot.start_at, booking.slot.end_at, local_day(now, zone), zone):
        when = booking.slot.start_at.astimezone(zone)
        raise CheckInRefused("other_day", f"the ticket is for {when:%Y-%m-%d %H:%M}, not today",
                             at=booking.slot.start_at)
    try:
        bookings.check_in(session, booking, actor, now, late=late)
    except bookings.BookingError as exc:
        raise CheckInRefused(booking.status, exc.message) from exc
    return _describe(booking)


def read_ticket(session: Session, site_id: int, scanned: str, ring: KeyRing,
                now: datetime | None = None, *, grace: timedelta | None = None) -> TicketBooking:
    """Verify a scanned ticket offline and read its booking; refusals say why. Reads only.

    A cancelled booking's ticket is refused as revoked by the ring's list (``ticket_ring``),
    or, given ``grace``, by its booking's own row, read here anyway: the desk's way, which
    spares every scan the list of all cancelled bookings still in their grace. Nothing here
    writes, so the desk reads before it takes SQLite's write lock (``get_read_session``),
    and a refused ticket never takes it.
    """
    now = now or utcnow()
    token = extract_token(scanned)
    try:
        verified = verify(token, ring, purpose=Purpose.TICKET, now=now)
    except TokenError as exc:
        raise CheckInRefused(_TOKEN_REASONS.get(exc.reason, "malformed"), str(exc)) from exc
    row = session.execute(_TICKET_ROW, {"public_id": verified.subject}).first()
    found = TicketBooking(*row) if row is not None else None
    # The site is checked below, after the revocation: the revoked list is the server's.
    if grace is not None and found is not None and _revoked(
            found.status, found.public_id, found.end_at, verified.token_id, grace, now):
        raise CheckInRefused("revoked", "has been revoked")
    # A ticket names its slot as well: a booking moved elsewhere has a new ticket.
    if found is None or found.site_id != site_id or \
            found.slot_public_id != verified.fields.get("slot"):
        raise CheckInRefused("unknown_booking", "names no booking at this site")
    return found


def check_in_found(session: Session, found: TicketBooking, actor: str,
                   now: datetime | None = None) -> CheckedIn:
    """Check in the booking a ticket found (``read_ticket``); refusals say why.

    The door's usual case, a seat booked for today, is written by statements alone
    (``bookings.check_in_row``). Any other state, or a booking changed since it was read
    (another desk, a cancellation), is decided from the booking as it now stands, loaded
    in the write transaction, exactly as a check-in by search is.
    """
    now = now or utcnow()
    zone = ZoneInfo(found.timezone)
    if found.status == "booked" and on_day(found.start_at, found.end_at, local_day(now, zone),
                                           zone):
        late = bookings.check_in_row(session, found.booked_row(), actor, now)
        if late is not None:
            return CheckedIn(
                booking_id=found.public_id, first_name=found.first_name,
                last_name=found.last_name, employee_id=found.employee_id,
                event_title=found.event_title, event_title_es=found.event_title_es,
                start_at=found.start_at, end_at=found.end_at, checked_in_at=now,
                status="checked_in", late=late)
    # As it now stands: not an object this session may hold from before the change.
    booking = session.scalars(_TICKET_BOOKING, {"public_id": found.public_id},
                              execution_options={"populate_existing": True}).first()
    if booking is None:  # gone since it was read (retention)
        raise CheckInRefused("unknown_booking", "names no booking at this site")
    return _record(session, booking, zone, actor, now)


def check_in_ticket(session: Session, site: Site, scanned: str, ring: KeyRing, actor: str,
                    now: datetime | None = None, *, grace: timedelta | None = None) -> CheckedIn:
    """Verify a scanned ticket offline and check its booking in; refusals say why.

    ``read_ticket`` then ``check_in_found`` on one session; see both.
    """
    now = now or utcnow()
    found = read_ticket(session, site.id, scanned, ring, now, grace=grace)
    return check_in_found(session, found, actor, now)


def check_in_booking(session: Session, site: Site, booking_public_id: str, actor: str,
                     now: datetime | None = None, late: bool = False) -> CheckedIn:
    """Check in a booking found by search (no ticket at hand), a no-show too when ``late``."""
    now = now or utcnow()
    try:
        booking = bookings.find_booking(session, site.id, booking_public_id)
    except bookings.BookingError as exc:
        raise CheckInRefused("unknown_booking", exc.message, "booking_id") from exc
    return _record(session, booking, ZoneInfo(site.timezone), actor, now, late=late)


def undo_check_in(session: Session, site: Site, booking_public_id: str, reason: str,
                  actor: str, now: datetime | None = None) -> CheckedIn:
    """Take back a check-in made by mistake, with the reason; refusals name the field."""
    now = now or utcnow()
    # A refusal is a bookings.BookingError, itself a ServiceError naming the field.
    booking = bookings.find_booking(session, site.id, booking_public_id)
    bookings.undo_check_in(session, booking, reason, actor, now)
    return _describe(booking)


@dataclass(frozen=True)
class DayBooking:
    """One of a member's bookings on the day, as the search list shows it."""

    booking_id: str
    event_title: str
    event_title_es: str | None
    start_at: datetime
    end_at: datetime
    status: str


@dataclass(frozen=True)
class MemberMatch:
    """A roster member found by name or id, with their bookings that day at this site."""

    member_id: str
    first_name: str
    last_name: str
    employee_id: str
    bookings: list[DayBooking] = field(default_factory=list)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(session: Session, site: Site, query: str, day: date | None = None,
           limit: int = SEARCH_LIMIT) -> list[MemberMatch]:
    """Find roster members by name or employee/badge id, with that day's bookings here."""
    text = " ".join((query or "").split())
    if len(text) < SEARCH_MIN_CHARS:
        raise ServiceError("invalid", "Search too short", [{
            "field": "q", "message": N_("type at least %(n)d characters", n=SEARCH_MIN_CHARS)}])
    zone = ZoneInfo(site.timezone)
    day = day or local_day(utcnow(), zone)
    full_name = func.lower(Member.first_name + " " + Member.last_name)
    members = session.scalars(
        select(Member).where(
            Member.employer_id == site.employer_id,
            or_(func.lower(Member.employee_id) == text.lower(),
                func.lower(Member.badge_id) == text.lower(),
                func.lower(Member.first_name).like(_like(text), escape="\\"),
                func.lower(Member.last_name).like(_like(text), escape="\\"),
                full_name.like(_like(text), escape="\\")))
        .order_by(Member.last_name, Member.first_name, Member.id).limit(limit)
    ).all()
    if not members:
        return []
    begin, end = day_bounds(day, zone)
    rows = session.execute(
        select(Booking, Slot, Event).join(Slot, Booking.slot_id == Slot.id)
        .join(Event, Booking.event_id == Event.id)
        .where(Booking.member_id.in_([m.id for m in members]), Event.site_id == site.id,
               Booking.status != "cancelled", during_day(begin, end))
        .order_by(Slot.start_at)
    ).all()
    by_member: dict[int, list[DayBooking]] = {}
    for booking, slot, event in rows:
        by_member.setdefault(booking.member_id, []).append(DayBooking(
            booking_id=booking.public_id, event_title=event.title,
            event_title_es=event.title_es, start_at=slot.start_at, end_at=slot.end_at,
            status=booking.status))
    return [MemberMatch(member_id=m.public_id, first_name=m.first_name, last_name=m.last_name,
                        employee_id=m.employee_id, bookings=by_member.get(m.id, []))
            for m in members]


@dataclass(frozen=True)
class NewMember:
    """A walk-in not yet on the roster, as the desk types them in."""

    employee_id: str
    first_name: str
    last_name: str
    birth_date: date | None

    def cleaned(self) -> NewMember:
        """Return the fields trimmed, or raise ServiceError naming each bad one."""
        errors = []
        values = {"employee_id": self.employee_id.strip(), "first_name": self.first_name.strip(),
                  "last_name": self.last_name.strip()}
        for name, value in values.items():
            if not value:
                errors.append({"field": name, "message": N_("is required")})
            elif len(value) > (64 if name == "employee_id" else NAME_MAX):
                errors.append({"field": name, "message": N_("is too long")})
        if self.birth_date is None:
            errors.append({"field": "birth_date", "message": N_("is required")})
        elif not date(1900, 1, 1) <= self.birth_date <= utcnow().date():
            errors.append({"field": "birth_date",
                           "message": N_("is not a plausible birth date")})
        if errors:
            raise ServiceError("invalid", "Invalid walk-in", errors)
        return NewMember(birth_date=self.birth_date, **values)


def find_or_add_member(session: Session, site: Site, data: NewMember, actor: str) -> Member:
    """Return the roster member with this employee id, or add the walk-in to the roster.

    A walk-in added here has a placeholder central id; the next roster import (which upserts
    by employee id) replaces it with the real one.
    """
    data = data.cleaned()
    member = session.scalars(select(Member).where(
        Member.employer_id == site.employer_id,
        func.lower(Member.employee_id) == data.employee_id.lower())).first()
    if member is not None:
        return member
    assert data.birth_date is not None  # cleaned() guarantees it
    member = Member(employer_id=site.employer_id, member_id=f"walk-in:{data.employee_id}",
                    employee_id=data.employee_id, first_name=data.first_name,
                    last_name=data.last_name, birth_date=data.birth_date)
    session.add(member)
    session.flush()
    session.add(AuditLog(actor=actor, action="member.added_walk_in",
                         subject=f"member:{member.public_id}", detail={}))
    return member


def find_member(session: Session, site: Site, member_public_id: str) -> Member:
    """Return a roster member of the site's employer, or raise not_found naming member_id."""
    member = session.scalars(select(Member).where(
        Member.public_id == member_public_id.lower(),
        Member.employer_id == site.employer_id)).first()
    if member is None:
        raise ServiceError("not_found", "Not found",
                           [{"field": "member_id",
                             "message": N_("no such member on this roster")}])
    return member


def walk_in(session: Session, site: Site, member: Member, slot: Slot, actor: str,
            now: datetime | None = None) -> CheckedIn:
    """Seat a walk-in in a slot that has not ended and check them in, or waitlist them."""
    now = now or utcnow()
    try:
        view = bookings.book(session, member=member, slot=slot, actor=actor, now=now,
                             allow_started=True)
    except bookings.BookingError as exc:
        raise ServiceError("conflict", "Walk-in refused",
                           [{"field": exc.field, "message": exc.message}]) from exc
    booking = bookings.find_booking(session, site.id, view.booking_id)
    if booking.status == "booked":
        bookings.check_in(session, booking, actor, now)
    done = _describe(booking)
    if booking.status == "waitlisted":
        return CheckedIn(**{**asdict(done), "waitlist_position": view.waitlist_position})
    return done


def due_no_shows(session: Session, site: Site, slot: Slot | None = None,
                 now: datetime | None = None) -> list[Person]:
    """Who "mark no-shows" would mark now: seats still only booked in slots that have ended.

    The confirmation page names them before anything changes.
    """
    now = now or utcnow()
    query = (select(Booking, Member, Slot).join(Member, Booking.member_id == Member.id)
             .join(Slot, Booking.slot_id == Slot.id).join(Event, Booking.event_id == Event.id)
             .where(Event.site_id == site.id, Booking.status == "booked", Slot.end_at <= now))
    if slot is not None:
        query = query.where(Booking.slot_id == slot.id)
    rows = session.execute(query.order_by(Slot.start_at, Member.last_name, Member.first_name,
                                          Booking.id)).all()
    return [Person(booking_id=b.public_id, first_name=m.first_name, last_name=m.last_name,
                   employee_id=m.employee_id, state="booked", checked_in_at=None,
                   waitlist_position=None, start_at=s.start_at) for b, m, s in rows]


def mark_no_shows(session: Session, site: Site, slot: Slot | None = None, actor: str = "",
                  now: datetime | None = None) -> int:
    """Mark this site's (or one slot's) ended, unclaimed seats as no-shows; return how many."""
    now = now or utcnow()
    if slot is not None and slot.end_at > now:
        raise ServiceError("conflict", "Too early", [{
            "field": "slot_id", "message": N_("the slot has not ended yet")}])
    return bookings.mark_no_shows(session, now, site_id=site.id,
                                  slot_id=slot.id if slot else None,
                                  actor=actor or bookings.HOUSEKEEPING_ACTOR)
