"""Bookings: seats taken by one conditional UPDATE, waitlists, cancel, reschedule, check-in.

Seat accounting: ``Slot.booked_count`` counts the seats given out (bookings that are
``booked``, ``checked_in`` or ``no_show``); it only moves through ``_take_seat`` and
``_release_seat``, each a single conditional UPDATE, so two requests can never both take the
last seat, on SQLite (writers serialised by BEGIN IMMEDIATE) or PostgreSQL (row locks).

Time: a slot takes bookings (and reschedules into it) until it starts. Once it has started,
a booking in it can still be cancelled or moved out, but the freed seat goes to nobody: a
waitlisted member cannot be told in time to come to a slot that is already running, so the
waitlist stays as it is. Once the slot has ended, its bookings can no longer be cancelled or
moved: what happened has happened, and a seat that was not used becomes a no-show
(``mark_no_shows``).

Lock order on PostgreSQL, to keep concurrent requests free of deadlocks:
member row -> slot rows (by id) -> booking rows. SQLite ignores FOR UPDATE; its write
transactions are already serial.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.util import identity_key

from ..models import (
    ACTIVE_BOOKING_STATUSES,
    AuditLog,
    Booking,
    Event,
    Kiosk,
    Member,
    Slot,
    as_utc,
    utcnow,
)
from .errors import N_, Msg
from .members import lock_member
from .messages import notify_booking, queue_appointment

CANCELLABLE = ("booked", "waitlisted")
HOUSEKEEPING_ACTOR = "system:housekeeping"
_NO_SHOW_CHUNK = 500
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


class BookingError(ValueError):
    """A booking action refused for a reason the caller can show: status, field and message."""

    def __init__(self, status: int, field: str, message: Msg, title: str = "Booking refused"):
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field
        self.message = message
        self.title = title


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
        return asdict(self)


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


# --- look-ups -------------------------------------------------------------------------------


def find_slot(session: Session, site_id: int, slot_public_id: str, field: str = "slot_id") -> Slot:
    """Return the slot with this public id at this site, or raise a 404 naming field."""
    slot = session.scalars(
        select(Slot).join(Event, Slot.event_id == Event.id)
        .where(Slot.public_id == slot_public_id.lower(), Event.site_id == site_id)
    ).first()
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
        position = session.scalar(
            select(func.count()).select_from(Booking).where(
                Booking.slot_id == booking.slot_id,
                Booking.status == "waitlisted",
                Booking.id <= booking.id,
            )
        )
    slot, event = booking.slot, booking.event
    return BookingView(
        booking_id=booking.public_id, status=booking.status, slot_id=slot.public_id,
        event_id=event.public_id, event_title=event.title, start_at=slot.start_at,
        end_at=slot.end_at, waitlist_position=position, ticket=booking.ticket_token,
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


# --- seats and locks ------------------------------------------------------------------------


def _take_seat(session: Session, slot_id: int) -> bool:
    # The whole decision is this one statement: no read of booked_count ever precedes it.
    result = session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked_count < Slot.capacity, Slot.cancelled.is_(False))
        .values(booked_count=Slot.booked_count + 1)
        .execution_options(synchronize_session=False)
    )
    _expire_count(session, slot_id)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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
    slots = session.scalars(
        select(Slot).options(joinedload(Slot.event))
        .where(Slot.id.in_(sorted(set(slot_ids)))).order_by(Slot.id)
        .with_for_update(of=Slot).execution_options(populate_existing=True)
    ).unique().all()
    return {s.id: s for s in slots}


def _lock_booking(session: Session, booking_id: int) -> Booking:
    return session.scalars(
        select(Booking).where(Booking.id == booking_id)
        .with_for_update().execution_options(populate_existing=True)
    ).one()


def _check_open(slot: Slot, now: datetime, allow_started: bool = False) -> None:
    if slot.cancelled or slot.event.cancelled:
        raise BookingError(409, "slot_id", N_("this slot has been cancelled"))
    if allow_started and slot.end_at <= now:
        raise BookingError(409, "slot_id", N_("this slot has already ended"))
    if not allow_started and slot.start_at <= now:
        raise BookingError(409, "slot_id", N_("this slot has already started"))


def _refuse_if_ended(slot: Slot, now: datetime, action: str) -> None:
    if slot.end_at <= now:
        raise BookingError(409, "booking_id", _ENDED[action])


def _status_words(status: str) -> Msg:
    return _STATUS_WORDS.get(status) or Msg(status.replace("_", " "))


def _refuse_second_booking(
    session: Session, member_id: int, event_id: int, exclude: int | None = None
) -> None:
    query = select(Booking.id).where(
        Booking.member_id == member_id,
        Booking.event_id == event_id,
        Booking.status.in_(ACTIVE_BOOKING_STATUSES),
    )
    if exclude is not None:
        query = query.where(Booking.id != exclude)
    if session.scalars(query).first() is not None:
        raise _already_booked()


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


def _audit(session: Session, actor: str, action: str, booking: Booking, **detail: Any) -> None:
    # Who booked what and when; never answers or results.
    session.add(AuditLog(
        actor=actor, action=action, subject=f"member:{booking.member.public_id}",
        detail={"booking": booking.public_id, "slot": booking.slot.public_id,
                "event": booking.event.public_id, "status": booking.status, **detail},
    ))


# --- actions --------------------------------------------------------------------------------


def book(
    session: Session,
    *,
    member: Member,
    slot: Slot,
    actor: str,
    kiosk: Kiosk | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    allow_started: bool = False,
) -> BookingView:
    """Book a seat in slot for member, or put them on its waitlist when it is full.

    ``allow_started`` is for a walk-in at the door: a member standing there can take a free
    seat in a slot that is running (until it ends).
    """
    now = now or utcnow()
    # Serialises one member's requests, so the one-booking-per-event check below sees a
    # concurrent request's booking instead of racing it.
    lock_member(session, member.id)
    slot = _lock_slots(session, [slot.id])[slot.id]
    _check_open(slot, now, allow_started)
    _refuse_second_booking(session, member.id, slot.event_id)
    try:
        with session.begin_nested():
            status = "booked" if _take_seat(session, slot.id) else "waitlisted"
            if status == "waitlisted" and slot.start_at <= now:
                # A running slot's waitlist is closed (expire_waitlist): nobody would move up.
                raise BookingError(409, "slot_id", N_("this slot is running and full; choose a "
                                                      "later slot, whose waitlist is open"))
            booking = Booking(
                member_id=member.id, event_id=slot.event_id, slot_id=slot.id,
                kiosk_id=kiosk.id if kiosk else None, status=status,
                idempotency_key=idempotency_key, created_at=now, updated_at=now,
            )
            session.add(booking)
            session.flush()
    except IntegrityError as exc:
        raise _integrity(exc) from exc
    _audit(session, actor, f"booking.{status}", booking)
    queue_appointment(session, booking)
    notify_booking(session, booking, "confirmation" if status == "booked" else "waitlisted")
    return view(session, booking)


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


def _claim_each(session: Session, ids: Sequence[int], condition: Any,
                **values: Any) -> Iterator[Booking]:
    """Apply one conditional UPDATE to ids in chunks; yield each booking whose UPDATE won.

    The condition is re-checked at write time, so a member's own action racing a job wins,
    and of two workers' jobs only one changes (and audits, and messages) each booking.
    """
    for start in range(0, len(ids), _NO_SHOW_CHUNK):
        won = session.scalars(
            update(Booking)
            .where(Booking.id.in_(ids[start:start + _NO_SHOW_CHUNK]), condition)
            .values(**values)
            .returning(Booking.id)
            .execution_options(synchronize_session=False)
        ).all()
        for booking_id in won:
            booking = session.get(Booking, booking_id, populate_existing=True)
            if booking is not None:
                yield booking


def mark_no_shows(session: Session, now: datetime | None = None, *,
                  site_id: int | None = None, slot_id: int | None = None,
                  actor: str = HOUSEKEEPING_ACTOR) -> int:
    """Turn `booked` bookings of slots that have ended into `no_show`; return how many.

    With ``site_id`` or ``slot_id`` only that site's or slot's bookings (a coordinator's
    button); without, every site's (the housekeeping job).
    """
    now = now or utcnow()
    query = (select(Booking.id).join(Slot, Booking.slot_id == Slot.id)
             .where(Booking.status == "booked", Slot.end_at <= now))
    if site_id is not None:
        query = query.join(Event, Booking.event_id == Event.id).where(Event.site_id == site_id)
    if slot_id is not None:
        query = query.where(Booking.slot_id == slot_id)
    ids = session.scalars(query.order_by(Booking.id)).all()
    changed = 0
    # Conditional on still being `booked`: a check-in racing the job wins.
    for booking in _claim_each(session, ids, Booking.status == "booked", status="no_show",
                               updated_at=now):
        changed += 1
        _audit(session, actor, "booking.no_show", booking)
        queue_appointment(session, booking)
    return changed


def expire_waitlist(session: Session, now: datetime | None = None) -> int:
    """Close the waitlist of slots that have started, telling each member; return how many.

    A seat freed once a slot runs goes to nobody (see the module's notes), so a member still
    waiting then will not get one: they hear so at once rather than at the end of the day.
    """
    now = now or utcnow()
    ids = session.scalars(
        select(Booking.id).join(Slot, Booking.slot_id == Slot.id)
        .where(Booking.status == "waitlisted", Slot.start_at <= now).order_by(Booking.id)
    ).all()
    changed = 0
    # Conditional on still waiting: a cancellation racing the job wins.
    for booking in _claim_each(session, ids, Booking.status == "waitlisted",
                               status="cancelled", cancelled_at=now, updated_at=now):
        changed += 1
        _audit(session, HOUSEKEEPING_ACTOR, "booking.waitlist_expired", booking)
        queue_appointment(session, booking)
        notify_booking(session, booking, "waitlist_expired")
    return changed


def send_reminders(session: Session, lead: timedelta, now: datetime | None = None) -> int:
    """Queue a reminder for each booked seat whose slot starts within ``lead``; return how many.

    Once per booking: ``reminded_at`` is set by a conditional UPDATE, so of two workers only
    one reminds. A seat booked (or moved up to) inside the window is not reminded: its
    confirmation came moments ago.
    """
    now = now or utcnow()
    rows = session.execute(
        select(Booking.id, Booking.updated_at, Slot.start_at)
        .join(Slot, Booking.slot_id == Slot.id)
        .where(Booking.status == "booked", Booking.reminded_at.is_(None),
               Slot.start_at > now, Slot.start_at <= now + lead).order_by(Booking.id)
    ).tuples().all()
    wanted = {booking_id for booking_id, changed, begins in rows if changed <= begins - lead}
    sent = 0
    # Every booking in the window is marked, so those booked inside it drop out of the query.
    for booking in _claim_each(session, [booking_id for booking_id, _, _ in rows],
                               Booking.reminded_at.is_(None), reminded_at=now):
        if booking.id in wanted and notify_booking(session, booking, "reminder"):
            sent += 1
    return sent


# --- a site's own actions (the coordinators' dashboard) ------------------------------------


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
