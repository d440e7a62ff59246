"""Messages waiting to go to the central advocate system, and operational alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

OUTBOX_STATUSES = ("pending", "sending", "sent", "dead")


class OutboxMessage(Base):
    """One idempotent upload to central; crisis rows sort first."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "status", "priority", "next_attempt_at"),
                      # Retention deletes sent rows by their age without reading them all.
                      Index("ix_outbox_sent", "status", "sent_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "referral", "booking" or "message"
    key: Mapped[str] = mapped_column(String(64), unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # lower is sooner; crisis = 0
    payload: Mapped[dict[str, Any]]
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"), index=True)
    # A booking's Appointment (kind "booking") or a message about it (kind "message").
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # A worker's claim while it sends ("sending"): another worker may take the row back once
    # the lease has run out (the first one died), so nothing is sent twice at once or lost.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    # The last try failed for central's sake (no answer, 5xx, 429), not the row's: the first
    # request central answers makes the row due again instead of leaving it to its timer.
    waiting_on_central: Mapped[bool] = mapped_column(Boolean, default=False,
                                                     server_default=false())


class Alert(Base):
    """An operational alert shown as a dashboard banner (stuck outbox, crisis, etc.)."""

    __tablename__ = "alert"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[datetime | None]
