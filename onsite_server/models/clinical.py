"""What members did at a kiosk, and the one referral each member's findings fold into."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, new_uuid, utcnow
from .core import Kiosk, Member

REFERRAL_STATUSES = ("new", "sent", "acknowledged", "contacted", "closed")


class Submission(Base):
    """One instrument's answers from a kiosk, with the server's own score."""

    __tablename__ = "submission"
    __table_args__ = (
        # A month's report reads one site's kiosks' rows by time; retention finds the expired
        # by the receive time: both a range, not a read of every row a site ever kept.
        Index("ix_submission_kiosk_taken", "kiosk_id", "taken_at"),
        Index("ix_submission_received", "received_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(36), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosk.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(36), index=True)
    instrument_id: Mapped[str] = mapped_column(String(32))
    instrument_version: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict[str, Any]]
    skipped: Mapped[list[Any]] = mapped_column(default=list)
    # The Bluetooth cuffs and scales behind some answers (shared DeviceOrigin dicts); answers
    # no device names were typed by the member (issue 19).
    devices: Mapped[list[Any]] = mapped_column(default=list)
    kiosk_result: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]  # the server's score; None when an item was skipped
    score_mismatch: Mapped[bool] = mapped_column(Boolean, default=False)
    crisis: Mapped[bool] = mapped_column(Boolean, default=False)
    taken_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The kiosk's clock was far from the server's when it sent this (taken_at is kept as sent).
    clock_suspect: Mapped[bool] = mapped_column(Boolean, default=False)
    response: Mapped[dict[str, Any]]  # the per-item answer, replayed verbatim for the same key
    # Indexed: each referral's bundle reads its submissions, and retention joins on it.
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"), index=True)
    kiosk: Mapped[Kiosk] = relationship()
    member: Mapped[Member | None] = relationship()


class Referral(Base):
    """The member's one open consolidated referral to their advocate."""

    __tablename__ = "referral"
    __table_args__ = (
        # One open referral per member: enforced by the database, not only by the code.
        Index(
            "uq_referral_open_member",
            "member_id",
            unique=True,
            sqlite_where=text("status != 'closed'"),
            postgresql_where=text("status != 'closed'"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    advocate_id: Mapped[int | None] = mapped_column(ForeignKey("advocate.id"))
    status: Mapped[str] = mapped_column(String(16), default="new")
    priority: Mapped[str] = mapped_column(String(16), default="routine")
    programs: Mapped[list[Any]] = mapped_column(default=list)
    proposal: Mapped[dict[str, Any]] = mapped_column(default=dict)  # shared.triage proposal
    consent: Mapped[bool | None] = mapped_column(Boolean)
    contact_method: Mapped[str | None] = mapped_column(String(16))  # phone | text | email
    contact_time: Mapped[str | None] = mapped_column(String(32))  # morning | afternoon | evening
    contact_phone: Mapped[str | None] = mapped_column(String(32))  # given at the kiosk, if any
    contact_email: Mapped[str | None] = mapped_column(String(254))
    consent_at: Mapped[datetime | None]
    forward_now: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every change, for sync
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # A crisis referral's dashboard banner stays up until staff acknowledge it with a note.
    crisis_acknowledged_at: Mapped[datetime | None]
    crisis_acknowledged_by: Mapped[str | None]
    crisis_note: Mapped[str | None] = mapped_column(Text)
    member: Mapped[Member] = relationship()


class CrisisAlert(Base):
    """An anonymous crisis seen at a kiosk: place and time only, no answers, no identity."""

    __tablename__ = "crisis_alert"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosk.id"))
    trigger: Mapped[str] = mapped_column(String(32))
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)  # the kiosk's clock
    # The server's clock: what "recent" views sort and filter by, so a kiosk whose clock says
    # 1970 cannot hide an alert.
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    clock_suspect: Mapped[bool] = mapped_column(Boolean, default=False)
    # Raised from an item the server could not accept (the crisis was read from its answers).
    from_rejected_item: Mapped[bool] = mapped_column(Boolean, default=False)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None]
    note: Mapped[str | None] = mapped_column(Text)
    kiosk: Mapped[Kiosk] = relationship()


class InstrumentWindow(Base):
    """A period during which an instrument was enabled at a site (open while ``until`` is None).

    Items a kiosk queued offline are accepted when their instrument was enabled at the time
    they were taken, even if it has been disabled since; one never enabled is refused.
    """

    __tablename__ = "instrument_window"
    __table_args__ = (Index("ix_instrument_window_site_instrument", "site_id", "instrument_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    instrument_id: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime | None]



class IssuedToken(Base):
    """A signed QR token the server issued: what a revocation list names (no token text).

    Advocate links are revoked when the member is reassigned; a re-issued link revokes the
    ones before it only when the advocate changed (an old phone's link still works).
    """

    __tablename__ = "issued_token"
    __table_args__ = (Index("ix_issued_token_subject", "purpose", "subject"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[str] = mapped_column(String(36), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64))  # member or booking public id
    advocate_id: Mapped[int | None] = mapped_column(ForeignKey("advocate.id"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class SubmissionTally(Base):
    """De-identified counts kept when answers are deleted after the retention period.

    Per site, month, instrument and result band only: what employer reports need, with no
    member, kiosk session or answer. Reports still suppress small cells when they show it.
    """

    __tablename__ = "submission_tally"
    __table_args__ = (Index("uq_submission_tally_cell", "site_id", "month", "instrument_id",
                            "band", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM of taken_at, in UTC
    instrument_id: Mapped[str] = mapped_column(String(32))
    band: Mapped[str] = mapped_column(String(64))  # "not_scored" when skipped items
    count: Mapped[int] = mapped_column(Integer, default=0)
    # Distinct people (a member, or an anonymous kiosk session) counted once per site, month and
    # instrument, in the band of their latest answer: the unit employer reports publish. Counted
    # when a person's last row of that month and instrument is deleted, so never twice.
    members: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class UnmatchedClaim(Base):
    """A sign-in typed on an offline kiosk that matched no member, for staff to follow up.

    Its answers were filed as anonymous; the contact fallback the member left (a phone number
    or email) is how staff can still reach them. One open claim per site, id and birth date.
    """

    __tablename__ = "unmatched_claim"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosk.id"))
    typed_id: Mapped[str] = mapped_column(String(64))
    birth_date: Mapped[date] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    kiosk: Mapped[Kiosk] = relationship()

    def __repr__(self) -> str:
        state = "open" if self.resolved_at is None else "resolved"
        return f"<UnmatchedClaim {self.public_id} site={self.site_id} {state}>"
