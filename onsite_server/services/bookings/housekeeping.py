"""Housekeeping the sync worker runs: no-shows, expired waitlists, reminders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...models import (
    Booking,
    Event,
    Slot,
    utcnow,
)
from ..messages import notify_booking, queue_appointment
from .seats import (
    _audit,
)

HOUSEKEEPING_ACTOR = "system:housekeeping"
_NO_SHOW_CHUNK = 500


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
