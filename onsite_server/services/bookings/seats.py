"""Seats: the conditional UPDATE that takes or frees one, locks, refusals, the waitlist's turn."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.util import identity_key

from ...models import (
    Booking,
    Event,
    Site,
    Slot,
    utcnow,
)
from ..errors import N_, Kind, Msg, ServiceError
from ..messages import notify_booking, queue_appointment
from ..statements import AUDIT_ROW, Prepared

CANCELLABLE = ("booked", "waitlisted")


# A booking's status inside a refusal, as words the dashboard can translate.
_STATUS_WORDS = {"booked": N_("booked"), "waitlisted": N_("waitlisted"),
                 "cancelled": N_("cancelled"), "checked_in": N_("checked in"),
                 "no_show": N_("no show")}
# Why a booking whose slot has ended cannot change, by what was asked.
_ENDED = {
    "cancelled": N_("the slot has ended, so the booking can no longer be cancelled; a seat "
                    "that was not used is recorded as a no-show"),
    "rescheduled": N_("the slot has ended, so the booking can no longer be rescheduled; a "
                      "seat that was not used is recorded as a no-show"),
}


# A booking refusal's HTTP status, as the kind of service error it is.
_KINDS: dict[int, Kind] = {404: "not_found", 409: "conflict", 422: "invalid"}


class BookingError(ServiceError):
    """A booking action refused for a reason the caller can show: status, field and message."""

    def __init__(self, status: int, field: str, message: Msg, title: str = "Booking refused"):
        super().__init__(_KINDS[status], title, [{"field": field, "message": message}])
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BookingView:
    """A booking as kiosks and the dashboard show it (public ids only)."""

    booking_id: str
    status: str
    slot_id: str
    event_id: str
    event_title: str
    start_at: datetime
    end_at: datetime
    waitlist_position: int | None
    ticket: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict."""
        # Every field is a str, int, datetime or None: nothing to copy deeply, which
        # dataclasses.asdict does for each value (copy.deepcopy of each datetime).
        return {name: getattr(self, name) for name in _VIEW_FIELDS}


_VIEW_FIELDS = tuple(f.name for f in fields(BookingView))


@dataclass(frozen=True)
class CancelResult:
    """The cancelled booking, and the waitlisted booking promoted into the freed seat."""

    booking: BookingView
    promoted: BookingView | None


@dataclass(frozen=True)
class RescheduleResult:
    """The new booking, the replaced (now cancelled) one, and any promotion in the old slot."""

    booking: BookingView
    replaced: BookingView
    promoted: BookingView | None


# Built once: constructing a select() per request costs more than running it on SQLite.
_SLOT_AT_SITE = select(Slot).join(Event, Slot.event_id == Event.id).where(
    Slot.public_id == bindparam("public_id"), Event.site_id == bindparam("site_id"))
_LOCK_SLOTS = (select(Slot).options(joinedload(Slot.event))
               .where(Slot.id.in_(bindparam("ids", expanding=True))).order_by(Slot.id)
               .with_for_update(of=Slot).execution_options(populate_existing=True))
_WAITLIST_POSITION = Prepared(select(func.count()).select_from(Booking).where(
    Booking.slot_id == bindparam("slot_id"), Booking.status == "waitlisted",
    Booking.id <= bindparam("booking_id")), flush=True)


def find_slot(session: Session, site_id: int, slot_public_id: str, field: str = "slot_id") -> Slot:
    """Return the slot with this public id at this site, or raise a 404 naming field."""
    slot = session.scalars(_SLOT_AT_SITE, {"public_id": slot_public_id.lower(),
                                           "site_id": site_id}).first()
    if slot is None:
        raise BookingError(404, field, N_("no such slot at this site"), title="Not found")
    return slot


def find_booking(session: Session, site_id: int, booking_public_id: str) -> Booking:
    """Return the booking with this public id at this site, or raise a 404 naming booking_id."""
    booking = session.scalars(
        select(Booking).join(Event, Booking.event_id == Event.id)
        .where(Booking.public_id == booking_public_id.lower(), Event.site_id == site_id)
    ).first()
    if booking is None:
        raise BookingError(404, "booking_id", N_("no such booking at this site"), title="Not found")
    return booking


def view(session: Session, booking: Booking) -> BookingView:
    """Describe a booking, with its current waitlist position when waitlisted."""
    position = None
    if booking.status == "waitlisted":
        position = _WAITLIST_POSITION.run(session, {"slot_id": booking.slot_id,
                                                    "booking_id": booking.id}).scalar()
    slot, event = booking.slot, booking.event
    return BookingView(
        booking_id=booking.public_id, status=booking.status, slot_id=slot.public_id,
        event_id=event.public_id, event_title=event.title, start_at=slot.start_at,
        end_at=slot.end_at, waitlist_position=position, ticket=booking.ticket_token,
    )


_SLOT = cast(Table, Slot.__table__)
# Built once (a Core statement with a bound parameter): constructing the ORM update per
# booking cost more than SQLite's work.
_TAKE_SEAT = Prepared(update(_SLOT)
                      .where(_SLOT.c.id == bindparam("seat_slot"),
                             _SLOT.c.booked_count < _SLOT.c.capacity,
                             _SLOT.c.cancelled.is_(False))
                      .values(booked_count=_SLOT.c.booked_count + 1))


def _take_seat(session: Session, slot_id: int) -> bool:
    # The whole decision is this one statement: no read of booked_count ever precedes it.
    result = _TAKE_SEAT.run(session, {"seat_slot": slot_id})
    _expire_count(session, slot_id)
    return bool(result.rowcount == 1)


def _release_seat(session: Session, slot_id: int) -> None:
    session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked_count > 0)
        .values(booked_count=Slot.booked_count - 1)
        .execution_options(synchronize_session=False)
    )
    _expire_count(session, slot_id)


def _expire_count(session: Session, slot_id: int) -> None:
    # The UPDATE bypassed the ORM; reload booked_count on next access instead of trusting it.
    slot = session.identity_map.get(identity_key(Slot, slot_id))
    if slot is not None:
        session.expire(slot, ["booked_count"])


def _lock_slots(session: Session, slot_ids: Iterable[int]) -> dict[int, Slot]:
    # Re-read (and on PostgreSQL lock) the slots with their events, so the cancelled and
    # started checks see current rows even if the caller's objects came from an older
    # transaction. The lock also makes a waitlisted insert visible to a concurrent
    # cancellation's promotion, which otherwise could miss it and leave a seat free.
    slots = session.scalars(_LOCK_SLOTS, {"ids": sorted(set(slot_ids))}).unique().all()
    return {s.id: s for s in slots}


def _lock_booking(session: Session, booking_id: int) -> Booking:
    return session.scalars(
        select(Booking).where(Booking.id == booking_id)
        .with_for_update().execution_options(populate_existing=True)
    ).one()


def _check_open(slot: Slot, now: datetime, allow_started: bool = False) -> None:
    _check_open_at(slot.cancelled or slot.event.cancelled, slot.start_at, slot.end_at, now,
                   allow_started)


def _check_open_at(cancelled: bool, start_at: datetime, end_at: datetime, now: datetime,
                   allow_started: bool = False) -> None:
    if cancelled:
        raise BookingError(409, "slot_id", N_("this slot has been cancelled"))
    if allow_started and end_at <= now:
        raise BookingError(409, "slot_id", N_("this slot has already ended"))
    if not allow_started and start_at <= now:
        raise BookingError(409, "slot_id", N_("this slot has already started"))


@dataclass(frozen=True)
class LockedSlot:
    """A slot read (on PostgreSQL locked) as one row with what a new booking names of its
    event and site: plain values, not mapped objects re-read with ``populate_existing``."""

    id: int
    public_id: str
    start_at: datetime
    end_at: datetime
    capacity: int
    booked_count: int
    cancelled: bool
    event_id: int
    event_public_id: str
    event_title: str
    event_title_es: str | None
    location: str | None
    event_cancelled: bool
    site_id: int
    timezone: str


def _locked_slot_statement(at_site: bool = False) -> Any:
    event, site = (cast(Table, model.__table__) for model in (Event, Site))
    return (
        select(_SLOT.c.id, _SLOT.c.public_id, _SLOT.c.start_at, _SLOT.c.end_at,
               _SLOT.c.capacity, _SLOT.c.booked_count, _SLOT.c.cancelled, event.c.id,
               event.c.public_id, event.c.title, event.c.title_es, event.c.location,
               event.c.cancelled, event.c.site_id, site.c.timezone)
        .join_from(_SLOT, event, _SLOT.c.event_id == event.c.id)
        .join(site, event.c.site_id == site.c.id)
        .where(*((_SLOT.c.public_id == bindparam("public_id"),
                  event.c.site_id == bindparam("site_id")) if at_site
                 else (_SLOT.c.id == bindparam("locked_slot"),)))
        .with_for_update(of=_SLOT))


@dataclass(frozen=True)
class SlotAt:
    """A slot named by its public id at a site, as a kiosk names it: ``book`` finds it in the
    statement that reads it under its lock, not in a read of its own before."""

    site_id: int
    public_id: str


# Built once. Same lock as ``_lock_slots`` (the slot's row, on PostgreSQL).
_LOCKED_SLOT = _locked_slot_statement()
_LOCKED_SLOT_AT_SITE = _locked_slot_statement(at_site=True)


def _lock_slot_row(session: Session, slot: int | SlotAt, field: str = "slot_id") -> LockedSlot:
    """Re-read (and on PostgreSQL lock) one slot as a row; see ``_lock_slots``. A slot named
    at a site that has no such slot raises a 404 naming field, as ``find_slot`` does."""
    if isinstance(slot, int):
        return LockedSlot(*session.execute(_LOCKED_SLOT, {"locked_slot": slot}).one())
    found = session.execute(_LOCKED_SLOT_AT_SITE, {"public_id": slot.public_id.lower(),
                                                   "site_id": slot.site_id}).first()
    if found is None:
        raise BookingError(404, field, N_("no such slot at this site"), title="Not found")
    return LockedSlot(*found)


def _refuse_if_ended(slot: Slot, now: datetime, action: str) -> None:
    if slot.end_at <= now:
        raise BookingError(409, "booking_id", _ENDED[action])


def _status_words(status: str) -> Msg:
    return _STATUS_WORDS.get(status) or Msg(status.replace("_", " "))


def _already_booked() -> BookingError:
    return BookingError(
        409, "slot_id",
        N_("the member already has a booking for this event; cancel or reschedule it instead"),
    )


def _integrity(exc: IntegrityError) -> BookingError:
    message = str(exc.orig)
    if "idempotency_key" in message:
        return BookingError(409, "idempotency_key", N_("was already used for another booking"))
    if "uq_booking_active_member_event" in message or (
        "booking.member_id" in message and "booking.event_id" in message
    ):
        return _already_booked()
    # Anything else (the slot's seat CHECK, a foreign key) is a bug, not a user error.
    raise exc


def _audit_row(session: Session, actor: str, action: str, *, member: str, site_id: int,
               booking: str, slot: str, event: str, status: str, **detail: Any) -> None:
    """Write a booking's audit entry by one prebuilt INSERT: who did what to which booking,
    never answers or results (public ids given; the entry's site is the booking's event's, so
    models/site_of.py has nothing to look up)."""
    AUDIT_ROW.run(session, {
        "at": utcnow(), "actor": actor, "action": action, "subject": f"member:{member}",
        "site_id": site_id,
        "detail": {"booking": booking, "slot": slot, "event": event, "status": status,
                   **detail}})


def _audit(session: Session, actor: str, action: str, booking: Booking, **detail: Any) -> None:
    """``_audit_row`` for a booking loaded as an object."""
    _audit_row(session, actor, action, member=booking.member.public_id,
               site_id=booking.event.site_id, booking=booking.public_id,
               slot=booking.slot.public_id, event=booking.event.public_id,
               status=booking.status, **detail)


def _cancel_locked(
    session: Session, booking: Booking, slot: Slot, actor: str, now: datetime, action: str
) -> Booking | None:
    """Cancel a locked booking; return the booking promoted into its seat, if any."""
    had_seat = booking.status == "booked"
    booking.status = "cancelled"
    booking.cancelled_at = now
    booking.updated_at = now
    session.flush()
    _audit(session, actor, action, booking)
    queue_appointment(session, booking)
    if action == "booking.cancelled":
        notify_booking(session, booking, "cancellation")
    if not had_seat:
        return None
    _release_seat(session, slot.id)
    if slot.start_at <= now:
        # The slot is running: the first waitlisted member could not be told in time to come,
        # and would be counted a no-show for a seat they never knew they had. The seat stays
        # free and the waitlist stays as it is.
        return None
    return _promote(session, slot, actor, now)


def _mark_promoted(session: Session, booking: Booking, actor: str, now: datetime) -> None:
    """Make a locked waitlisted booking whose seat is taken booked, and tell the member."""
    booking.status = "booked"
    booking.updated_at = now
    session.flush()
    _audit(session, actor, "booking.promoted", booking)
    queue_appointment(session, booking)
    notify_booking(session, booking, "waitlist_promotion")


def _promote(session: Session, slot: Slot, actor: str, now: datetime) -> Booking | None:
    """Give a free seat of a slot not yet started to its first waitlisted booking (in order)."""
    if not _take_seat(session, slot.id):
        return None
    tried: set[int] = set()
    while True:
        query = select(Booking.id).where(
            Booking.slot_id == slot.id, Booking.status == "waitlisted"
        )
        if tried:
            query = query.where(Booking.id.not_in(tried))
        ids = session.scalars(query.order_by(Booking.id).limit(20)).all()
        if not ids:
            _release_seat(session, slot.id)
            return None
        for booking_id in ids:
            tried.add(booking_id)
            # Re-checked under the row lock: that member may have just left the waitlist.
            candidate = session.scalars(
                select(Booking).where(Booking.id == booking_id, Booking.status == "waitlisted")
                .with_for_update().execution_options(populate_existing=True)
            ).first()
            if candidate is not None:
                _mark_promoted(session, candidate, actor, now)
                return candidate
