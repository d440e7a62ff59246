"""Typed SQLAlchemy 2.0 models of the onsite server."""

# site_of registers the listener that fills in each audit entry's site (it reads the models).
from . import site_of  # noqa: F401
from .base import Base, as_utc, new_uuid, utcnow
from .clinical import (
    REFERRAL_STATUSES,
    CrisisAlert,
    InstrumentWindow,
    IssuedToken,
    Referral,
    Submission,
    SubmissionTally,
    UnmatchedClaim,
)
from .core import (
    Advocate,
    AuditLog,
    Employer,
    Kiosk,
    Member,
    PairingCode,
    Site,
    User,
    UserSession,
    UserToken,
)
from .events import (
    ACTIVE_BOOKING_STATUSES,
    BOOKING_STATUSES,
    EVENT_KINDS,
    Booking,
    Event,
    IdempotentRequest,
    Slot,
)
from .outbox import OUTBOX_STATUSES, Alert, OutboxMessage

__all__ = [
    "ACTIVE_BOOKING_STATUSES", "BOOKING_STATUSES", "EVENT_KINDS", "OUTBOX_STATUSES",
    "REFERRAL_STATUSES", "Advocate", "Alert", "AuditLog", "Base", "Booking",
    "CrisisAlert", "Employer", "Event", "IdempotentRequest", "InstrumentWindow", "IssuedToken",
    "Kiosk",
    "Member", "OutboxMessage",
    "PairingCode", "Referral", "Site", "Slot", "Submission", "SubmissionTally",
    "UnmatchedClaim", "User", "UserSession", "UserToken",
    "as_utc", "new_uuid", "utcnow",
]
