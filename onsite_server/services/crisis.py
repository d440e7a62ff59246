"""Staff acknowledging crises: anonymous kiosk alerts and members' crisis referrals."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..models import CrisisAlert, Referral, utcnow
from . import audit
from .errors import N_, ServiceError


def _note(note: str) -> str:
    text = note.strip()
    if not text:
        raise ServiceError("invalid", "Invalid request",
                           [{"field": "note", "message": N_("is required")}])
    return text


def acknowledge_alert(session: Session, alert: CrisisAlert, *, actor: str, note: str) -> None:
    """Record that staff responded to an anonymous alert (its banner goes away)."""
    text = _note(note)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = actor
        alert.note = text
    audit.record(session, actor, "crisis.alert_acknowledged", f"crisis_alert:{alert.id}",
                 note=text)


def acknowledge_referral(session: Session, referral: Referral, *, actor: str,
                         note: str) -> None:
    """Record that staff responded to a member's crisis referral (its banner goes away)."""
    text = _note(note)
    if referral.crisis_acknowledged_at is None:
        referral.crisis_acknowledged_at = utcnow()
        referral.crisis_acknowledged_by = actor
        referral.crisis_note = text
    audit.record(session, actor, "crisis.referral_acknowledged",
                 f"referral:{referral.public_id}", note=text)


def audit_view(session: Session, referral: Referral, *, actor: str) -> None:
    """Record that someone looked at a member's referral (individual health data)."""
    audit.record(session, actor, "referral.viewed", f"referral:{referral.public_id}",
                 detail={"priority": referral.priority})
