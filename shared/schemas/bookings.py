"""Bookings: a member books, cancels or reschedules a slot from a kiosk."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import AwareDatetime, IdempotencyKey, Out, Strict, UuidText

MemberRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=512,
        description="The opaque member reference returned by POST /identify.",
    ),
]
BookingStatus = Literal["booked", "waitlisted", "cancelled", "checked_in", "no_show"]


class BookingRequest(Strict):
    """Book a slot for an identified member; a full slot puts them on its waitlist."""

    idempotency_key: IdempotencyKey
    member_ref: MemberRef
    slot_id: UuidText = Field(description="The slot's id from the catalog.")


class CancelRequest(Strict):
    """Cancel a booking (or leave a waitlist)."""

    idempotency_key: IdempotencyKey
    member_ref: MemberRef = Field(description="The member whose booking this is; another "
                                  "member's booking answers 404.")


class RescheduleRequest(Strict):
    """Move a booking to another slot: all or nothing."""

    idempotency_key: IdempotencyKey
    member_ref: MemberRef = Field(description="The member whose booking this is.")
    slot_id: UuidText = Field(description="The slot to move to; it must have a free seat.")


class MemberBookingsRequest(Strict):
    """Look up a member's bookings; the reference travels in the body, never in a URL."""

    member_ref: MemberRef


class BookingOut(Out):
    """A booking as the kiosk shows it."""

    booking_id: str
    status: BookingStatus
    slot_id: str
    event_id: str
    event_title: str
    start_at: AwareDatetime
    end_at: AwareDatetime
    waitlist_position: int | None = Field(
        default=None, description="1 for the next member to be promoted; only when waitlisted."
    )
    ticket: str | None = Field(default=None, description="Signed check-in ticket: booked seats "
                                                        "only (a waitlisted booking has none).")
    ticket_url: str | None = Field(default=None, description="The ticket page at central; the "
                                                            "ticket QR's content.")


class RescheduleOut(BookingOut):
    """The new booking, and the one it replaced (now cancelled)."""

    replaced_booking_id: str


class MemberBookingsOut(Out):
    """A member's active bookings at this site whose slot has not ended, soonest first."""

    bookings: list[BookingOut]
