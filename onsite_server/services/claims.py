"""Unmatched claims: sign-ins typed on an offline kiosk that matched no member.

The kiosk answers the member the same whether or not their id matches (it learns nothing of the
roster), and their answers are filed as anonymous. So that nobody is lost silently, each miss is
kept here, with the phone number or email the member left as a fallback, for staff at the site
to follow up on the dashboard ("Unmatched sign-ins"), and then mark as followed up.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditLog, Kiosk, UnmatchedClaim
from ..models.base import utcnow
from .errors import ServiceError


def note_unmatched(session: Session, kiosk: Kiosk, *, typed_id: str, birth_date: date,
                   phone: str | None = None, email: str | None = None,
                   now: datetime | None = None) -> UnmatchedClaim:
    """Record (or refresh) the open claim for this id and birth date at the kiosk's site.

    A later item of the same visit (or a second visit) adds the contact it carries; a contact
    already kept is replaced only by a new one, never by nothing.
    """
    now = now or utcnow()
    typed = typed_id.strip().upper()
    claim = session.scalars(select(UnmatchedClaim).where(
        UnmatchedClaim.site_id == kiosk.site_id, UnmatchedClaim.typed_id == typed,
        UnmatchedClaim.birth_date == birth_date, UnmatchedClaim.resolved_at.is_(None))).first()
    if claim is None:
        claim = UnmatchedClaim(site_id=kiosk.site_id, kiosk_id=kiosk.id, typed_id=typed,
                               birth_date=birth_date, first_seen_at=now, last_seen_at=now)
        session.add(claim)
        session.flush()
        session.add(AuditLog(actor=f"kiosk:{kiosk.public_id}", action="claim.unmatched",
                             subject=f"claim:{claim.public_id}", detail={}))
    claim.last_seen_at = now
    claim.kiosk_id = kiosk.id
    if phone:
        claim.phone = phone
    if email:
        claim.email = email
    return claim


def open_claims(session: Session, site_id: int) -> list[UnmatchedClaim]:
    """The site's claims no one has followed up yet, newest first."""
    return list(session.scalars(select(UnmatchedClaim).where(
        UnmatchedClaim.site_id == site_id, UnmatchedClaim.resolved_at.is_(None))
        .order_by(UnmatchedClaim.last_seen_at.desc(), UnmatchedClaim.id.desc())))


def find_claim(session: Session, site_id: int, public_id: str) -> UnmatchedClaim:
    """Return the site's claim with this public id, or raise not_found naming the field."""
    claim = session.scalars(select(UnmatchedClaim).where(
        UnmatchedClaim.public_id == public_id.lower(),
        UnmatchedClaim.site_id == site_id)).first()
    if claim is None:
        raise ServiceError("not_found", "Not found",
                           [{"field": "claim_id", "message": "no such claim at this site"}])
    return claim


def resolve_claim(session: Session, claim: UnmatchedClaim, *, actor: str,
                  now: datetime | None = None) -> UnmatchedClaim:
    """Mark a claim as followed up (it leaves the open list; the audit log keeps who did it)."""
    if claim.resolved_at is None:
        claim.resolved_at = now or utcnow()
        claim.resolved_by = actor
        session.add(AuditLog(actor=actor, action="claim.resolved",
                             subject=f"claim:{claim.public_id}", detail={}))
    return claim
