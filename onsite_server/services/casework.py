"""The onsite advocate's casework: their members' referrals, history, and status changes.

A status moves only forward (``sync.merge_status``), bumps the referral's version and queues
it for central (``referrals.upsert_outbox``), where the Task's status follows; each change
and each view of a member's results is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from ..models import Member, Referral, Submission
from . import audit, crisis
from .errors import N_, ServiceError, required_text
from .referrals import upsert_outbox
from .sync import merge_status

# What an advocate may set from the dashboard (new/sent belong to the forwarder).
ADVOCATE_STATUSES = ("acknowledged", "contacted", "closed")
_PRIORITY_ORDER = case({"crisis": 0, "urgent": 1, "soon": 2, "routine": 3},
                       value=Referral.priority, else_=4)


@dataclass(frozen=True)
class CaseRow:
    """One referral in the advocate's list."""

    referral: Referral
    member: Member


def referrals_for_advocate(session: Session, advocate_id: int, employer_id: int, *,
                           include_closed: bool = False) -> list[CaseRow]:
    """The advocate's members' referrals at this employer: crisis and urgent first."""
    query = (select(Referral, Member).join(Member, Member.id == Referral.member_id)
             .where(Member.advocate_id == advocate_id, Member.employer_id == employer_id))
    if not include_closed:
        query = query.where(Referral.status != "closed")
    query = query.order_by(_PRIORITY_ORDER, Referral.updated_at.desc(), Referral.id.desc())
    return [CaseRow(referral, member) for referral, member in session.execute(query).all()]


def member_history(session: Session, member: Member) -> dict[str, Any]:
    """The member's results across visits (newest first) and all their referrals."""
    submissions = list(session.scalars(select(Submission).where(Submission.member_id == member.id)
                                       .order_by(Submission.taken_at.desc(), Submission.id)))
    referrals = list(session.scalars(select(Referral).where(Referral.member_id == member.id)
                                     .order_by(Referral.created_at.desc())))
    visits: dict[str, list[Submission]] = {}
    for sub in submissions:
        visits.setdefault(sub.taken_at.date().isoformat(), []).append(sub)
    return {"visits": visits, "referrals": referrals}


def record_view(session: Session, referral: Referral, *, actor: str) -> None:
    """Audit a view of a member's referral and results (individual health data)."""
    audit.record(session, actor, "referral.viewed", f"referral:{referral.public_id}",
                 detail={"member": referral.member.public_id})


def acknowledge_referral(session: Session, referral: Referral, *, actor: str,
                         note: str) -> None:
    """Acknowledge a member's crisis referral from the crisis page: the banner goes, and the
    referral moves to acknowledged (unless further on already), so nobody is asked twice."""
    set_status(session, referral, "acknowledged", actor=actor, note=crisis.required_note(note))


def set_status(session: Session, referral: Referral, status: str, *, actor: str,
               note: str) -> Referral:
    """Move a referral forward (acknowledged, contacted, closed) with a note; queue for central."""
    if status not in ADVOCATE_STATUSES:
        raise ServiceError("invalid", "Invalid request",
                           [{"field": "status", "message": N_(
                               "must be one of %(choices)s",
                               choices=", ".join(ADVOCATE_STATUSES))}])
    text = required_text(note, "note")
    before = referral.status
    after = merge_status(before, status)
    if after != before:
        referral.status = after
        referral.version += 1
        upsert_outbox(session, referral, referral.member)
    audit.record(session, actor, "referral.status", f"referral:{referral.public_id}",
                 detail={"from": before, "to": after, "asked": status}, note=text)
    # Acknowledging (or contacting, or closing) a crisis referral is its acknowledgement: the
    # banner goes with this one step, not a second one on the crisis page.
    crisis.record_referral_acknowledged(session, referral, actor=actor, note=text,
                                        status=after)
    return referral


def notes(session: Session, referral: Referral) -> list[Any]:
    """The notes written on this referral (status changes, crisis acknowledgement), oldest first."""
    from ..models import AuditLog

    return list(session.scalars(select(AuditLog).where(
        AuditLog.subject == f"referral:{referral.public_id}", AuditLog.note.is_not(None))
        .order_by(AuditLog.at)))
