"""What staff do on a slot: its list, check-in and its undoing, promotion, capacity, cancelling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ...models import (
    AuditLog,
    Booking,
    Member,
    Slot,
    as_utc,
    utcnow,
)
from ..errors import N_
from ..messages import notify_booking, queue_appointment, queue_appointment_row
from ..statements import Prepared
from .seats import (
    CANCELLABLE,
    BookingError,
    BookingView,
    _audit,
    _audit_row,
    _check_open,
    _lock_booking,
    _lock_slots,
    _mark_promoted,
    _promote,
    _release_seat,
    _status_words,
    _take_seat,
    view,
)


@dataclass(frozen=True)
class SlotBookingRow:
    """One line of a coordinator's slot list: who booked and where they stand (no health data)."""

    booking_id: str
    member_id: str
    first_name: str
    last_name: str
    employee_id: str
    status: str
    waitlist_position: int | None
    created_at: datetime
    checked_in_at: datetime | None


def list_slot_bookings(session: Session, slot: Slot) -> list[SlotBookingRow]:
    """Return every booking of a slot: seated first, then the waitlist in order, then the rest."""
    rows = session.execute(
        select(Booking, Member).join(Member, Booking.member_id == Member.id)
        .where(Booking.slot_id == slot.id).order_by(Booking.id)
    ).all()
    rank = {"checked_in": 0, "booked": 0, "waitlisted": 1}
    ordered = sorted(rows, key=lambda r: (rank.get(r[0].status, 2), r[0].id))
    out: list[SlotBookingRow] = []
    position = 0
    for booking, member in ordered:
        pos = None
        if booking.status == "waitlisted":
            position += 1
            pos = position
        out.append(SlotBookingRow(
            booking_id=booking.public_id, member_id=member.public_id,
            first_name=member.first_name, last_name=member.last_name,
            employee_id=member.employee_id, status=booking.status, waitlist_position=pos,
            created_at=booking.created_at, checked_in_at=booking.checked_in_at,
        ))
    return out


def check_in(
    session: Session, booking: Booking, actor: str = "system", now: datetime | None = None,
    *, late: bool = False,
) -> BookingView:
    """Mark a booked member as arrived; checking in twice is harmless.

    With ``late`` a no-show may be checked in too: the member came after their slot was
    given up on. Its seat was never released (no-shows keep theirs), so no count moves.
    Arriving after the slot's end is audited as ``booking.checked_in_late``.
    """
    now = now or utcnow()
    if booking.status == "booked" and _check_in_booked(session, booking, now):
        was = "booked"
    else:
        booking = _lock_booking(session, booking.id)
        if booking.status == "checked_in":
            return view(session, booking)
        allowed = ("booked", "no_show") if late else ("booked",)
        if booking.status not in allowed:
            raise BookingError(
                409, "booking_id", N_("the booking is %(status)s; only a booked seat can be "
                                      "checked in", status=_status_words(booking.status)))
        was = booking.status
        booking.status = "checked_in"
        booking.checked_in_at = now
        booking.updated_at = now
        session.flush()
    if arrived_late(booking):
        _audit(session, actor, "booking.checked_in_late", booking, was=was)
    else:
        _audit(session, actor, "booking.checked_in", booking)
    queue_appointment(session, booking)
    return view(session, booking)


# The door's usual case in one statement: the row changes only while it is still booked, so
# of two desks scanning one ticket at once exactly one changes it (on PostgreSQL the second
# waits for the first's row lock, then finds it checked in).
_BOOKING = cast(Table, Booking.__table__)
_CHECK_IN_BOOKED = Prepared(
    update(_BOOKING)
    .where(_BOOKING.c.id == bindparam("booking_id"), _BOOKING.c.status == "booked")
    .values(status="checked_in", checked_in_at=bindparam("now", type_=_BOOKING.c.updated_at.type),
            updated_at=bindparam("now", type_=_BOOKING.c.updated_at.type)))


def _check_in_booked(session: Session, booking: Booking, now: datetime) -> bool:
    """Check in a booking that is still booked; False when it no longer is (nothing changed).

    One conditional UPDATE instead of a locking re-read and an update: the re-read (with
    ``populate_existing``) also dropped the member, slot and event the caller had loaded,
    and three more SELECTs brought them back for the audit row and the answer.
    """
    done = _CHECK_IN_BOOKED.run(session, {"booking_id": booking.id, "now": now})
    if done.rowcount != 1:
        return False
    for name, value in (("status", "checked_in"), ("checked_in_at", now), ("updated_at", now)):
        set_committed_value(booking, name, value)  # what the row now holds
    return True


@dataclass(frozen=True)
class BookedRow:
    """A booking as plain values read in one row, not loaded as an object: what its
    check-in writes name (the audit row's subject, site and detail; the Appointment row)."""

    id: int
    public_id: str
    member_public_id: str
    slot_public_id: str
    event_public_id: str
    site_id: int
    end_at: datetime


def check_in_row(session: Session, row: BookedRow, actor: str = "system",
                 now: datetime | None = None) -> bool | None:
    """Check in a booking read as booked, by statements alone; None when it no longer is.

    What ``check_in`` writes for a booked seat (the conditional UPDATE, the audit row, the
    Appointment row), without loading the booking, its member, slot and event as objects or
    a flush of the session's unit of work: on the door's path these cost more than the
    statements. Returns whether the member arrived late (after the slot's end). When the
    UPDATE matches nothing (checked in by another desk meanwhile, cancelled, moved), nothing
    is written and the caller decides from the booking as it now stands.
    """
    now = now or utcnow()
    done = _CHECK_IN_BOOKED.run(session, {"booking_id": row.id, "now": now})
    if done.rowcount != 1:
        return None
    late = now >= as_utc(row.end_at)
    detail: dict[str, Any] = {"was": "booked"} if late else {}
    _audit_row(session, actor, "booking.checked_in_late" if late else "booking.checked_in",
               member=row.member_public_id, site_id=row.site_id, booking=row.public_id,
               slot=row.slot_public_id, event=row.event_public_id, status="checked_in",
               **detail)
    queue_appointment_row(session, row.id, row.public_id)
    return late


def arrived_late(booking: Booking) -> bool:
    """Whether the member was checked in only after their slot had ended."""
    return booking.checked_in_at is not None and \
        as_utc(booking.checked_in_at) >= as_utc(booking.slot.end_at)


UNDO_REASON_MAX = 500


def undo_check_in(session: Session, booking: Booking, reason: str, actor: str,
                  now: datetime | None = None) -> BookingView:
    """Take back a check-in made by mistake, with the reason (audited).

    The booking goes back to ``booked``, or to ``no_show`` when its slot has ended (what
    housekeeping would have made of it). The seat stays taken either way, so no count moves.
    """
    now = now or utcnow()
    reason = " ".join((reason or "").split())
    if not reason:
        raise BookingError(422, "reason", N_("is required"),
                           title="Invalid")
    if len(reason) > UNDO_REASON_MAX:
        raise BookingError(422, "reason", N_("is too long (at most %(n)d characters)",
                                             n=UNDO_REASON_MAX), title="Invalid")
    booking = _lock_booking(session, booking.id)
    if booking.status != "checked_in":
        raise BookingError(409, "booking_id", N_(
            "the booking is %(status)s; only a check-in can be undone",
            status=_status_words(booking.status)))
    checked_in_at = booking.checked_in_at
    booking.status = "no_show" if as_utc(booking.slot.end_at) <= now else "booked"
    booking.checked_in_at = None
    booking.updated_at = now
    session.flush()
    _audit(session, actor, "booking.check_in_undone", booking, reason=reason,
           checked_in_at=checked_in_at.isoformat() if checked_in_at else None)
    queue_appointment(session, booking)
    return view(session, booking)


def promote(
    session: Session, slot: Slot, actor: str, *, booking: Booking | None = None,
    now: datetime | None = None,
) -> Booking:
    """Give a free seat of a slot not yet started to a waitlisted booking; return it.

    Without ``booking``, the first in line; a coordinator may name one instead. Once the
    slot has started its waitlist is closed (``expire_waitlist``), as for any freed seat.
    """
    now = now or utcnow()
    slot = _lock_slots(session, [slot.id])[slot.id]
    _check_open(slot, now)
    if booking is None:
        promoted = _promote(session, slot, actor, now)
        if promoted is None:
            raise BookingError(409, "slot_id", N_("no free seat, or nobody on the waitlist"))
        return promoted
    booking = _lock_booking(session, booking.id)
    if booking.slot_id != slot.id or booking.status != "waitlisted":
        raise BookingError(409, "booking_id", N_("is not on this slot's waitlist"))
    if not _take_seat(session, slot.id):
        raise BookingError(409, "slot_id", N_("has no free seat; raise its capacity first"))
    _mark_promoted(session, booking, actor, now)
    return booking


def set_capacity(
    session: Session, slot: Slot, capacity: int, actor: str, now: datetime | None = None
) -> list[Booking]:
    """Change a slot's seat count, never below the seats taken; return the bookings promoted.

    Seats added before the slot starts go to the waitlist in order, as a cancellation's do.
    """
    now = now or utcnow()
    slot = _lock_slots(session, [slot.id])[slot.id]
    if slot.cancelled or slot.event.cancelled:
        raise BookingError(409, "capacity", N_("the slot has been cancelled"))
    if slot.end_at <= now:
        raise BookingError(409, "capacity", N_("the slot has ended"))
    # One conditional UPDATE, like a booking's: a seat taken meanwhile cannot be squeezed out.
    result = session.execute(
        update(Slot).where(Slot.id == slot.id, Slot.booked_count <= capacity)
        .values(capacity=capacity).execution_options(synchronize_session=False)
    )
    session.expire(slot, ["capacity", "booked_count"])
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise BookingError(409, "capacity", N_("%(n)d seats are taken; the capacity cannot "
                                              "go below that", n=slot.booked_count))
    session.add(AuditLog(actor=actor, action="slot.capacity", subject=f"slot:{slot.public_id}",
                         detail={"capacity": capacity}))
    promoted: list[Booking] = []
    while slot.start_at > now:
        one = _promote(session, slot, actor, now)
        if one is None:
            break
        promoted.append(one)
    return promoted


def cancel_slot(
    session: Session, slot: Slot, actor: str, now: datetime | None = None
) -> list[tuple[Booking, str]]:
    """Cancel a slot that has not ended and its booked and waitlisted bookings.

    Each member is sent a cancellation through central. Returns each booking cancelled with
    the status it had. A checked-in member stays as they are: they came. Cancelling twice
    changes nothing and returns nothing.
    """
    now = now or utcnow()
    slot = _lock_slots(session, [slot.id])[slot.id]
    if slot.end_at <= now:
        raise BookingError(409, "slot_id", N_("the slot has ended; what happened has happened"))
    slot.cancelled = True
    # No member locks: lock order is member -> slot -> booking, and this holds the slot.
    rows = session.scalars(
        select(Booking).options(joinedload(Booking.member))
        .where(Booking.slot_id == slot.id, Booking.status.in_(CANCELLABLE))
        .order_by(Booking.id).with_for_update(of=Booking)
        .execution_options(populate_existing=True)
    ).unique().all()
    out: list[tuple[Booking, str]] = []
    for booking in rows:
        previous = booking.status
        booking.status = "cancelled"
        booking.cancelled_at = now
        booking.updated_at = now
        session.flush()
        if previous == "booked":
            _release_seat(session, slot.id)
        _audit(session, actor, "booking.cancelled_by_site", booking, previous=previous)
        queue_appointment(session, booking)
        notify_booking(session, booking, "cancellation")
        out.append((booking, previous))
    return out
