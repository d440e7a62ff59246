"""Booking: the site's events and slots, the member's bookings, and the yes-first steps to
book, cancel or move one."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from shared.i18n import N_, pick
from shared.schemas.bookings import BookingOut
from shared.schemas.catalog import CatalogEvent, CatalogSlot
from shared.when import format_when, format_when_where

from ..backend import Offline, Refused

if TYPE_CHECKING:
    from .base import VisitCore


class Booking:
    """The member's bookings and the one being booked, cancelled or moved this visit."""

    def __init__(self, visit: VisitCore) -> None:
        self.visit = visit
        self.bookings: list[BookingOut] = []
        self.booked: BookingOut | None = None
        self.event: CatalogEvent | None = None
        self.moving: BookingOut | None = None  # the booking being rescheduled
        # A booking or a cancellation waiting for the member's "yes": (what, slot or booking id).
        self.pending: tuple[str, str] | None = None

    def holds_member_data(self) -> bool:
        """Tell whether any booking of the member, or a step towards one, is held."""
        return (bool(self.bookings) or self.booked is not None or self.moving is not None
                or self.pending is not None)

    def events(self) -> list[CatalogEvent]:
        """Upcoming events from the cached catalog."""
        catalog = self.visit.backend.catalog()
        return list(catalog.events) if catalog is not None else []

    def slots(self) -> list[CatalogSlot]:
        """The chosen event's slots."""
        return list(self.event.slots) if self.event is not None else []

    @property
    def site_timezone(self) -> str:
        """The site's time zone (the catalog's); every time a member sees is on its clock."""
        catalog = self.visit.catalog()
        return catalog.site.timezone if catalog is not None else "UTC"

    def event_title(self, event: CatalogEvent) -> str:
        """The event's name in the visit's language, or the other one when it has none."""
        return pick(event.title, self.visit.language)

    def event_description(self, event: CatalogEvent) -> str:
        """The event's description in the visit's language, or the other one ("" for none)."""
        return pick(event.description, self.visit.language)

    def when(self, moment: datetime) -> str:
        """A time as the member reads it: "Mon, Dec 7 · 10:10 AM", on the site's clock."""
        return format_when(moment, self.site_timezone, self.visit.language)

    def when_where(self, moment: datetime, place: str | None) -> str:
        """Day, time and place: "Mon, Dec 7 · 10:10 AM · Room B", on the site's clock."""
        return format_when_where(moment, self.site_timezone, self.visit.language, place)

    def booking_event(self, booking: BookingOut) -> CatalogEvent | None:
        """The catalog's event of a booking (its words in both languages and its place)."""
        return next((e for e in self.events() if e.id == booking.event_id), None)

    def booking_summary(self, booking: BookingOut) -> tuple[str, str]:
        """What and when-where of a booking, in the visit's language on the site's clock."""
        event = self.booking_event(booking)
        title = self.event_title(event) if event is not None else booking.event_title
        return title, self.when_where(booking.start_at, event.location if event else None)

    def choose_event(self, event_id: str | None) -> None:
        """Open an event's slots (None: back to the list of events)."""
        self.pending = None
        self.event = next((e for e in self.events() if e.id == event_id), None)

    def load_bookings(self) -> None:
        """Fetch the member's bookings; offline, say booking needs the connection."""
        identity = self.visit.online_identity
        self.visit.needs_connection = identity is None
        if identity is None:
            self.bookings = []
            return
        try:
            self.bookings = self.visit.backend.bookings(identity)
        except Offline:
            self.visit.needs_connection = True
            self.bookings = []

    def choose_slot(self, slot_id: str) -> None:
        """A slot was tapped: ask the member to confirm before anything is booked."""
        if any(s.id == slot_id for s in self.slots()):
            self.visit.say("")
            self.pending = ("book", slot_id)

    def choose_cancel(self, booking_id: str) -> None:
        """"Cancel it" was tapped: ask the member to confirm first."""
        if any(b.booking_id == booking_id for b in self.bookings):
            self.visit.say("")
            self.pending = ("cancel", booking_id)

    def pending_slot(self) -> CatalogSlot | None:
        """The slot waiting for the member's confirmation, if any."""
        if self.pending is None or self.pending[0] != "book":
            return None
        return next((s for s in self.slots() if s.id == self.pending[1]), None)

    def pending_cancel(self) -> BookingOut | None:
        """The booking the member asked to cancel, waiting for their confirmation."""
        if self.pending is None or self.pending[0] != "cancel":
            return None
        return next((b for b in self.bookings if b.booking_id == self.pending[1]), None)

    def confirm(self) -> str:
        """The member said yes: book (or cancel) what was waiting for it."""
        pending, self.pending = self.pending, None
        if pending is None:
            return self.visit.screen
        what, ref = pending
        if what == "book":
            return self.book_slot(ref)
        self.cancel(ref)
        return self.visit.screen

    def keep(self) -> None:
        """The member said no: nothing is booked or cancelled; back to the list."""
        self.pending = None
        self.visit.say("")

    def back_to_list(self) -> str:
        """Back from the confirmation: the list again, nothing booked or cancelled."""
        self.visit.say("")
        self.pending = None
        self.visit.touch()
        return self.visit.screen

    def book(self, slot_id: str) -> bool:
        """Book (or join the waitlist for) a slot, or move the booking being rescheduled."""
        visit = self.visit
        identity = visit.online_identity
        if identity is None:
            visit.needs_connection = True
            return False
        try:
            if self.moving is not None:
                booking = visit.backend.reschedule(identity, self.moving.booking_id, slot_id)
                self.moving = None
            else:
                booking = visit.backend.book(identity, slot_id)
        except Offline:
            visit.needs_connection = True
            visit.say(N_("Booking needs the connection, which is down right now."))
            return False
        except Refused as exc:
            visit.say(N_("That did not work: {reason}"), reason=exc.reason)
            return False
        self.booked = booking
        if booking.status == "waitlisted":
            visit.say(N_("That time is full. You are on the waitlist, number {n}."),
                      n=str(booking.waitlist_position or ""))
        return True

    def book_slot(self, slot_id: str) -> str:
        """Book a slot and go on to the QR screen; stay (with a message) when that failed."""
        if self.book(slot_id):
            return self.visit.fire("booked") if not self.visit.message \
                else self.visit.keep_message("booked")
        return self.visit.screen

    def cancel(self, booking_id: str) -> None:
        """Cancel one of the member's bookings."""
        visit = self.visit
        identity = visit.online_identity
        if identity is None:
            return
        try:
            visit.backend.cancel(identity, booking_id)
        except Offline:
            visit.needs_connection = True
            return
        except Refused as exc:
            visit.say(N_("That did not work: {reason}"), reason=exc.reason)
            return
        if self.booked is not None and self.booked.booking_id == booking_id:
            self.booked = None
        visit.say(N_("Your booking is cancelled."))
        self.load_bookings()

    def start_moving(self, booking_id: str) -> None:
        """Pick a booking to reschedule; the next slot chosen replaces it."""
        self.moving = next((b for b in self.bookings if b.booking_id == booking_id), None)
        if self.moving is not None:
            self.choose_event(self.moving.event_id)
