"""Onsite events, their slots and members' bookings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, new_uuid, utcnow
from .core import Member, Site

BOOKING_STATUSES = ("booked", "waitlisted", "cancelled", "checked_in", "no_show")
ACTIVE_BOOKING_STATUSES = ("booked", "waitlisted", "checked_in")
EVENT_KINDS = ("biometric_screening", "flu_shot", "coaching", "other")


class Event(Base):
    """An onsite event such as a biometric screening, a flu-shot clinic or coaching."""

    __tablename__ = "event"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="other")
    title: Mapped[str]
    title_es: Mapped[str | None]
    description: Mapped[str | None] = mapped_column(Text)
    description_es: Mapped[str | None] = mapped_column(Text)  # shown on the kiosk in Spanish
    location: Mapped[str | None]
    cancelled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    site: Mapped[Site] = relationship()
    slots: Mapped[list[Slot]] = relationship(back_populates="event", order_by="Slot.start_at")


class Slot(Base):
    """A time slot with a seat count; booked_count only moves by conditional UPDATE."""

    __tablename__ = "slot"
    __table_args__ = (
        CheckConstraint("booked_count >= 0 AND booked_count <= capacity", name="seats"),
        CheckConstraint("capacity >= 0", name="capacity_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id"), index=True)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    capacity: Mapped[int] = mapped_column(Integer)
    booked_count: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[bool] = mapped_column(default=False)
    event: Mapped[Event] = relationship(back_populates="slots")

    @property
    def seats_left(self) -> int:
        """Seats still free."""
        return max(0, self.capacity - self.booked_count)


class Booking(Base):
    """A member's place in a slot, or on its waitlist."""

    __tablename__ = "booking"
    __table_args__ = (
        # One active booking per member per event, enforced by the database as a backstop.
        Index(
            "uq_booking_active_member_event",
            "member_id",
            "event_id",
            unique=True,
            sqlite_where=text("status IN ('booked', 'waitlisted', 'checked_in')"),
            postgresql_where=text("status IN ('booked', 'waitlisted', 'checked_in')"),
        ),
        Index("ix_booking_waitlist", "slot_id", "status", "id"),
        # The sync's housekeeping looks for the few open bookings (no-shows, waitlists,
        # reminders) and reports count check-ins by time: neither reads years of bookings.
        Index("ix_booking_status", "status"),
        Index("ix_booking_checked_in", "checked_in_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    idempotency_key: Mapped[str | None] = mapped_column(String(36), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosk.id"))
    status: Mapped[str] = mapped_column(String(16))
    ticket_token: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    checked_in_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    # When the reminder went into the outbox: set once, by the one worker whose UPDATE won.
    reminded_at: Mapped[datetime | None]
    member: Mapped[Member] = relationship()
    slot: Mapped[Slot] = relationship()
    event: Mapped[Event] = relationship()


class IdempotentRequest(Base):
    """The first answer to a keyed write (cancel, reschedule, consent...), replayed verbatim."""

    __tablename__ = "idempotent_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(36), unique=True)
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosk.id"))
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # retention
