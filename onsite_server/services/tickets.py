"""Appointment tickets: a signed token per booked seat, the same every time it is asked for.

A ticket is minted from the booking and its slot alone, with a token id derived from the
booking id, so a lookup (a read) can show it without storing anything, a replayed answer
holds the same string, and a cancelled booking's ticket can be revoked by id. It is valid
from a year before its slot ends until ``TICKET_GRACE_DAYS`` after, and only a booked (or
checked-in) seat has one: a waitlisted booking gets its ticket when it is promoted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.tokens import Purpose, mint

from ..models import Booking, Slot, utcnow
from .signing import KeyStore

_TICKET_NAMESPACE = uuid.UUID("a7f0c2d4-5b6e-4c8a-9f1e-2d3c4b5a6978")
_VALID_BEFORE_END = timedelta(days=366)
TICKETED = ("booked", "checked_in")


def ticket_id(booking_public_id: str) -> str:
    """Return the token id of a booking's ticket (what a revocation list names)."""
    return str(uuid.uuid5(_TICKET_NAMESPACE, booking_public_id.lower()))


@dataclass(frozen=True)
class TicketIssuer:
    """Mints tickets with the server's ticket key and builds their URLs at central."""

    keys: KeyStore
    web_url: str
    grace: timedelta

    def ticket(self, booking_id: str, slot_id: str, status: str,
               slot_end: datetime) -> tuple[str | None, str | None]:
        """Return (token, ticket_url) for a booking, or (None, None) when it has no seat."""
        if status not in TICKETED:
            return None, None
        token = mint(self.keys.current(Purpose.TICKET),
                     {"subject": booking_id, "slot": slot_id},
                     lifetime=_VALID_BEFORE_END + self.grace,
                     now=slot_end - _VALID_BEFORE_END, token_id=ticket_id(booking_id))
        return token, f"{self.web_url.rstrip('/')}/ticket/{token}"


def revoked_ticket_ids(session: Session, grace: timedelta,
                       now: datetime | None = None) -> set[str]:
    """Return the ticket ids of cancelled bookings whose tickets would still be valid."""
    moment = now or utcnow()
    rows = session.scalars(select(Booking.public_id).join(Slot, Booking.slot_id == Slot.id)
                           .where(Booking.status == "cancelled",
                                  Slot.end_at > moment - grace))
    return {ticket_id(public_id) for public_id in rows}
