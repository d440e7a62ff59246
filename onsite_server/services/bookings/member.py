"""What a member does: book, cancel, reschedule, and see their bookings."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...models import (
    ACTIVE_BOOKING_STATUSES,
    Booking,
    Event,
    Kiosk,
    Member,
    Slot,
    new_uuid,
    utcnow,
)
from ..errors import N_
from ..members import MemberKeys, lock_member
from ..messages import (
    notify_booking,
    queue_appointment,
    queue_new_booking,
)
from ..statements import Prepared, insert_ignoring_conflicts
from .seats import (
    _WAITLIST_POSITION,
    CANCELLABLE,
    BookingError,
    BookingView,
    CancelResult,
    LockedSlot,
    RescheduleResult,
    SlotAt,
    _already_booked,
    _audit,
    _audit_row,
    _cancel_locked,
    _check_open,
    _check_open_at,
    _integrity,
    _lock_booking,
    _lock_slot_row,
    _lock_slots,
    _refuse_if_ended,
    _release_seat,
    _status_words,
    _take_seat,
    view,
)


def member_bookings(
    session: Session, member: Member, site_id: int, now: datetime | None = None
) -> list[BookingView]:
    """Return the member's active bookings at a site whose slot has not ended, soonest first."""
    now = now or utcnow()
    rows = session.scalars(
        select(Booking)
        .join(Slot, Booking.slot_id == Slot.id)
        .join(Event, Booking.event_id == Event.id)
        .where(
            Booking.member_id == member.id,
            Booking.status.in_(ACTIVE_BOOKING_STATUSES),
            Event.site_id == site_id,
            Slot.end_at > now,
        )
        .order_by(Slot.start_at, Booking.id)
    ).all()
    return [view(session, b) for b in rows]


# Built once: constructing a select() per request costs more than running it on SQLite.
_ACTIVE_OF_MEMBER = select(Booking.id).where(
    Booking.member_id == bindparam("member_id"), Booking.event_id == bindparam("event_id"),
    Booking.status.in_(ACTIVE_BOOKING_STATUSES), Booking.id != bindparam("exclude")).limit(1)


def _second_booking(session: Session, member_id: int, event_id: int,
                    exclude: int | None = None) -> bool:
    """Tell whether the member holds another active booking for the event."""
    return session.scalars(_ACTIVE_OF_MEMBER, {
        "member_id": member_id, "event_id": event_id,
        "exclude": -1 if exclude is None else exclude}).first() is not None


def _refuse_second_booking(
    session: Session, member_id: int, event_id: int, exclude: int | None = None
) -> None:
    if _second_booking(session, member_id, event_id, exclude):
        raise _already_booked()


def book(
    session: Session,
    *,
    member: Member | MemberKeys,
    slot: Slot | SlotAt,
    actor: str,
    kiosk: Kiosk | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    allow_started: bool = False,
) -> BookingView:
    """Book a seat in slot for member, or put them on its waitlist when it is full.

    ``slot`` is a slot read before, or one named at a site (``SlotAt``, a 404 naming
    ``slot_id`` when the site has no such slot). ``allow_started`` is for a walk-in at the
    door: a member standing there can take a free seat in a slot that is running (until it
    ends). ``member`` is a loaded Member or only its keys (``MemberKeys``).
    """
    now = now or utcnow()
    # Serialises one member's requests (PostgreSQL), as every write of a member does.
    lock_member(session, member.id)
    # The slot as it now stands, read (on PostgreSQL locked) as one row with its event and
    # site: the caller's object may be from an older transaction. A slot named by its public
    # id is found by the same statement, so the request reads it once.
    row = _lock_slot_row(session, slot.id if isinstance(slot, Slot) else slot)
    _check_open_at(row.cancelled or row.event_cancelled, row.start_at, row.end_at, now,
                   allow_started)
    status = "booked" if _seat_free(session, row) else "waitlisted"
    if status == "waitlisted" and row.start_at <= now:
        # A running slot's waitlist is closed (expire_waitlist): nobody would move up.
        raise BookingError(409, "slot_id", N_("this slot is running and full; choose a "
                                              "later slot, whose waitlist is open"))
    # The row by one statement that cannot fail on a unique index (no SAVEPOINT around it,
    # no object for the unit of work to flush). The one-booking-per-event rule is that
    # index's: a member's second active booking of the event is refused here, without a
    # SELECT for it first under the lock every booking of the slot queues for; the seat taken
    # above is then given back, so nothing of the attempt stays.
    public_id = new_uuid()
    inserted = _INSERT_BOOKING.run(session, {
        "public_id": public_id, "member_id": member.id, "event_id": row.event_id,
        "slot_id": row.id, "kiosk_id": kiosk.id if kiosk else None, "status": status,
        "idempotency_key": idempotency_key, "created_at": now, "updated_at": now}).first()
    if inserted is None:
        if status == "booked":
            _release_seat(session, row.id)
        raise _refused_row(session, idempotency_key)
    booking_id = int(inserted[0])
    _audit_row(session, actor, f"booking.{status}", member=member.public_id,
               site_id=row.site_id, booking=public_id, slot=row.public_id,
               event=row.event_public_id, status=status)
    # Its Appointment row and its message to the member, in one statement.
    queue_new_booking(session, booking_id, public_id,
                      "confirmation" if status == "booked" else "waitlisted",
                      language=member.language, title=row.event_title,
                      title_es=row.event_title_es, location=row.location,
                      start_at=row.start_at, timezone=row.timezone)
    # Counted after the row, not with the locked slot: on PostgreSQL a SELECT that waited for
    # the slot's lock sees the slot's row as it now stands but the bookings as they stood when
    # the statement began, without the rows waitlisted by those it waited for.
    position = _WAITLIST_POSITION.run(session, {"slot_id": row.id, "booking_id": booking_id}) \
        .scalar() if status == "waitlisted" else None
    return BookingView(
        booking_id=public_id, status=status, slot_id=row.public_id,
        event_id=row.event_public_id, event_title=row.event_title, start_at=row.start_at,
        end_at=row.end_at, waitlist_position=position, ticket=None)


# Any unique index refuses the row without an error: the one active booking per member and
# event (the rule's only check in book()), and the idempotency key (run_once claimed it
# first; a backstop).
_INSERT_BOOKING = Prepared(insert_ignoring_conflicts(cast(Table, Booking.__table__), (
    "public_id", "member_id", "event_id", "slot_id", "kiosk_id", "status", "idempotency_key",
    "created_at", "updated_at")))
_BOOKING_OF_KEY = select(Booking.id).where(Booking.idempotency_key == bindparam("key"))


def _refused_row(session: Session, idempotency_key: str | None) -> BookingError:
    """Why a unique index refused a new booking's row (what ``_integrity`` tells)."""
    if idempotency_key is not None and \
            session.scalar(_BOOKING_OF_KEY, {"key": idempotency_key}) is not None:
        return BookingError(409, "idempotency_key", N_("was already used for another booking"))
    return _already_booked()


def _seat_free(session: Session, slot: LockedSlot) -> bool:
    """Take a seat of a locked slot, or tell that it is full.

    ``slot`` was just read under its lock, so a full slot is recognised from that row without
    the UPDATE (most attempts on a popular slot are waitlisted). Otherwise the conditional
    UPDATE alone still decides: nothing else ever gives a seat.
    """
    if slot.booked_count >= slot.capacity:
        return False
    return _take_seat(session, slot.id)


def cancel_booking(
    session: Session, booking: Booking, actor: str, now: datetime | None = None
) -> CancelResult:
    """Cancel a booking before its slot ends; a seat freed before the start goes to the waitlist."""
    now = now or utcnow()
    lock_member(session, booking.member_id)
    slot = _lock_slots(session, [booking.slot_id])[booking.slot_id]
    booking = _lock_booking(session, booking.id)
    if booking.status not in CANCELLABLE:
        raise BookingError(
            409, "booking_id", N_("the booking is %(status)s and cannot be cancelled",
                                  status=_status_words(booking.status)))
    _refuse_if_ended(slot, now, "cancelled")
    promoted = _cancel_locked(session, booking, slot, actor, now, "booking.cancelled")
    return CancelResult(
        booking=view(session, booking),
        promoted=view(session, promoted) if promoted is not None else None,
    )


def reschedule(
    session: Session,
    booking: Booking,
    new_slot: Slot,
    actor: str,
    *,
    kiosk: Kiosk | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> RescheduleResult:
    """Move a booking to new_slot atomically; a full new_slot leaves the old booking as it was."""
    now = now or utcnow()
    lock_member(session, booking.member_id)
    slots = _lock_slots(session, [booking.slot_id, new_slot.id])
    old_slot, new_slot = slots[booking.slot_id], slots[new_slot.id]
    booking = _lock_booking(session, booking.id)
    if booking.status not in CANCELLABLE:
        raise BookingError(
            409, "booking_id", N_("the booking is %(status)s and cannot be rescheduled",
                                  status=_status_words(booking.status)))
    _refuse_if_ended(old_slot, now, "rescheduled")
    if new_slot.id == old_slot.id:
        raise BookingError(409, "slot_id", N_("the booking is already in this slot"))
    _check_open(new_slot, now)
    _refuse_second_booking(session, booking.member_id, new_slot.event_id, exclude=booking.id)
    try:
        # A savepoint, so a refusal half-way leaves the old booking untouched even for callers
        # that go on to commit (the dashboard), not only for the API's rolled-back request.
        with session.begin_nested():
            if not _take_seat(session, new_slot.id):
                raise BookingError(409, "slot_id", N_("that slot is full (or was cancelled); the "
                                                      "booking is unchanged"))
            promoted = _cancel_locked(
                session, booking, old_slot, actor, now, "booking.rescheduled_from")
            new = Booking(
                member_id=booking.member_id, event_id=new_slot.event_id, slot_id=new_slot.id,
                kiosk_id=kiosk.id if kiosk else booking.kiosk_id, status="booked",
                idempotency_key=idempotency_key, created_at=now, updated_at=now,
            )
            session.add(new)
            session.flush()
    except IntegrityError as exc:
        raise _integrity(exc) from exc
    _audit(session, actor, "booking.rescheduled_to", new, replaced=booking.public_id)
    queue_appointment(session, new)
    notify_booking(session, new, "confirmation")
    return RescheduleResult(
        booking=view(session, new),
        replaced=view(session, booking),
        promoted=view(session, promoted) if promoted is not None else None,
    )
