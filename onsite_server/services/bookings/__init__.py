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

from .housekeeping import (
    HOUSEKEEPING_ACTOR,
    expire_waitlist,
    mark_no_shows,
    send_reminders,
)
from .member import (
    book,
    cancel_booking,
    member_bookings,
    reschedule,
)
from .seats import (
    CANCELLABLE,
    BookingError,
    BookingView,
    CancelResult,
    RescheduleResult,
    SlotAt,
    find_booking,
    find_slot,
    view,
)
from .slots import (
    UNDO_REASON_MAX,
    BookedRow,
    SlotBookingRow,
    arrived_late,
    cancel_slot,
    check_in,
    check_in_row,
    list_slot_bookings,
    promote,
    set_capacity,
    undo_check_in,
)

__all__ = [
    "BookedRow",
    "BookingError",
    "BookingView",
    "CANCELLABLE",
    "CancelResult",
    "HOUSEKEEPING_ACTOR",
    "RescheduleResult",
    "SlotAt",
    "SlotBookingRow",
    "UNDO_REASON_MAX",
    "arrived_late",
    "book",
    "cancel_booking",
    "cancel_slot",
    "check_in",
    "check_in_row",
    "expire_waitlist",
    "find_booking",
    "find_slot",
    "list_slot_bookings",
    "mark_no_shows",
    "member_bookings",
    "promote",
    "reschedule",
    "send_reminders",
    "set_capacity",
    "undo_check_in",
    "view",
]
