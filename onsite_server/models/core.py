"""Organisation, devices, people and the audit trail."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, new_uuid, utcnow


class Employer(Base):
    """A customer company; members and sites belong to one."""

    __tablename__ = "employer"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sites: Mapped[list[Site]] = relationship(back_populates="employer")


class Site(Base):
    """One workplace location with its own kiosks and events."""

    __tablename__ = "site"
    id: Mapped[int] = mapped_column(primary_key=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str]
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    employer: Mapped[Employer] = relationship(back_populates="sites")
    kiosks: Mapped[list[Kiosk]] = relationship(back_populates="site")


class Kiosk(Base):
    """A paired device; only a hash of its token is kept."""

    __tablename__ = "kiosk"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    label: Mapped[str] = mapped_column(default="kiosk")
    place: Mapped[str | None]
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    paired_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    app_version: Mapped[str | None] = mapped_column(String(64))
    outbox_depth: Mapped[int | None]
    last_sync_at: Mapped[datetime | None]
    free_disk_bytes: Mapped[int | None] = mapped_column(BigInteger)
    last_heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    site: Mapped[Site] = relationship(back_populates="kiosks")


class PairingCode(Base):
    """A short-lived, single-use code a kiosk trades for its device token."""

    __tablename__ = "pairing_code"
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(default="kiosk")
    place: Mapped[str | None]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosk.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Advocate(Base):
    """A personal health advocate: the member's single point of contact."""

    __tablename__ = "advocate"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True, default=new_uuid)
    name: Mapped[str]
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None]
    languages: Mapped[list[Any]] = mapped_column(default=list)
    programs: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Member(Base):
    """An employee on the roster; the kiosk never holds this table."""

    __tablename__ = "member"
    __table_args__ = (
        UniqueConstraint("employer_id", "employee_id", name="uq_member_employer_employee"),
        Index("ix_member_badge", "employer_id", "badge_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"))
    member_id: Mapped[str] = mapped_column(String(64))  # the central system's id
    employee_id: Mapped[str] = mapped_column(String(64))
    badge_id: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    language: Mapped[str] = mapped_column(String(8), default="en")
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None]
    # Indexed: the advocate's list starts from their members, not from the whole roster.
    advocate_id: Mapped[int | None] = mapped_column(ForeignKey("advocate.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    advocate: Mapped[Advocate | None] = relationship()


class User(Base):
    """A dashboard log-in: admin, coordinator or advocate."""

    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    role: Mapped[str] = mapped_column(String(16))  # admin | coordinator | advocate
    password_hash: Mapped[str]
    advocate_id: Mapped[int | None] = mapped_column(ForeignKey("advocate.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Second factor (dashboard/auth.py): base32 TOTP secret, and the last time step accepted,
    # so a code seen over someone's shoulder cannot be used again.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # SHA-256 of each unused one-time recovery code (random, high-entropy: no slow hash needed).
    recovery_codes: Mapped[list[Any]] = mapped_column(default=list)
    # Bumped on password reset, disabling and log-out everywhere: older session cookies die.
    session_epoch: Mapped[int] = mapped_column(default=0)
    last_login_at: Mapped[datetime | None]


class UserToken(Base):
    """A one-time link (invitation or password reset) shown to an admin; only its hash is kept."""

    __tablename__ = "user_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # invite | reset
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class UserSession(Base):
    """One dashboard log-in on one browser, so that logging out ends it on the server too.

    The session cookie carries a random id; only its SHA-256 is kept. A row that is ended, or
    missing, refuses the cookie even though its signature is good.
    """

    __tablename__ = "user_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(index=True)  # retention deletes by it
    ended_reason: Mapped[str | None] = mapped_column(String(32))  # logout | expired | ended

    def __repr__(self) -> str:
        return f"<UserSession {self.id} user={self.user_id} ended={self.ended_reason}>"


class AuditLog(Base):
    """Every view or change of an individual's health data, and security events."""

    __tablename__ = "audit_log"
    # A site's pages by time (services/audit.py's keyset cursors), at either end of years.
    __table_args__ = (Index("ix_audit_log_site_at", "site_id", "at", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str]  # "user:3", "kiosk:<public id>", "cli"
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None]  # "member:<public id>", "referral:12"
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str | None] = mapped_column(Text)
    # The site the entry belongs to (models/site_of.py: its subject's, its event's or its
    # actor's), filled in as it is written; None for a server-wide entry (operators only).
    # No index of its own: ix_audit_log_site_at starts with it (migration 0024).
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
