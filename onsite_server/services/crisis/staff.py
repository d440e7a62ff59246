"""Staff acknowledging crises: anonymous kiosk alerts and members' crisis referrals.

A crisis is shown with when it was raised, never with when its row was last edited: the
answer's time (the kiosk's clock, as sent) and the server's receive time, from which its
waiting time is counted. A member's crisis referral is acknowledged once, wherever staff do it:
on the crisis page, or by moving the referral to acknowledged (or further) with a note on the
advocate's page. Either way the banner goes, the referral's status moves forward, and the
audit log says who acknowledged it and when.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...models import AuditLog, CrisisAlert, Referral, Submission, User, utcnow
from .. import audit
from ..errors import required_text


@dataclass(frozen=True)
class Raised:
    """When a crisis was raised: the answer's time (kiosk clock) and the server's receive time."""

    taken_at: datetime | None  # None when no stored answer holds it (a refused item)
    received_at: datetime


def required_note(note: str) -> str:
    """Return a staff note stripped, or refuse a blank one naming the field."""
    return required_text(note, "note")


def acknowledge_alert(session: Session, alert: CrisisAlert, *, actor: str, note: str) -> None:
    """Record that staff responded to an anonymous alert (its banner goes away)."""
    text = required_note(note)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = actor
        alert.note = text
    audit.record(session, actor, "crisis.alert_acknowledged", f"crisis_alert:{alert.id}",
                 note=text)


def record_referral_acknowledged(session: Session, referral: Referral, *, actor: str,
                                 note: str, status: str) -> bool:
    """Mark a crisis referral acknowledged (once) as part of a status change; audit who and when.

    Called by ``casework.set_status`` for every status an advocate sets (acknowledged and
    beyond); returns whether this acknowledged it now. The note itself is audited with the
    status change, so it is not written twice.
    """
    if referral.priority != "crisis" or referral.crisis_acknowledged_at is not None:
        return False
    referral.crisis_acknowledged_at = utcnow()
    referral.crisis_acknowledged_by = actor
    referral.crisis_note = note
    audit.record(session, actor, "crisis.referral_acknowledged",
                 f"referral:{referral.public_id}", detail={"status": status})
    return True


def raised_times(session: Session, referrals: Sequence[Referral]) -> dict[int, Raised]:
    """When each crisis referral's crisis was first raised, from what the kiosk sent.

    The answer's time and the receive time are those of the earliest crisis answer stored for
    the referral; a crisis read from an item the server refused has no stored answer, so its
    receive time is that of its ``crisis.raised`` audit entry. The referral's own times are
    never used for this: they move whenever it is edited.
    """
    if not referrals:
        return {}
    ids = [r.id for r in referrals]
    by_subject = {f"referral:{r.public_id}": r.id for r in referrals}
    out: dict[int, Raised] = {}
    answers = session.execute(
        select(Submission.referral_id, func.min(Submission.taken_at),
               func.min(Submission.received_at))
        .where(Submission.referral_id.in_(ids), Submission.crisis.is_(True))
        .group_by(Submission.referral_id)).all()
    for referral_id, taken_at, received_at in answers:
        out[int(referral_id)] = Raised(taken_at, received_at)
    # A referral's crisis is audited after the referral was made: bounding by time lets the
    # indexed audit_log.at narrow a log that only grows (this runs on every page's banner).
    since = min(r.created_at for r in referrals) - timedelta(minutes=1)
    audited = session.execute(
        select(AuditLog.subject, func.min(AuditLog.at))
        .where(AuditLog.at >= since, AuditLog.action == "crisis.raised",
               AuditLog.subject.in_(list(by_subject)))
        .group_by(AuditLog.subject)).all()
    for subject, at in audited:
        referral_id = by_subject[str(subject)]
        known = out.get(referral_id)
        if known is None or at < known.received_at:
            out[referral_id] = Raised(known.taken_at if known else None, at)
    for referral in referrals:
        # Neither left (answers deleted after retention, audit pruned): its creation is the
        # earliest time the server can vouch for.
        out.setdefault(referral.id, Raised(None, referral.created_at))
    return out


def actor_names(session: Session, actors: Iterable[str | None]) -> dict[str, str]:
    """Names for audit actors ("user:3" -> the user's name); others are shown as they are."""
    wanted = {a for a in actors if a}
    ids = {int(a.split(":", 1)[1]) for a in wanted
           if a.startswith("user:") and a.split(":", 1)[1].isdigit()}
    names = {f"user:{uid}": name for uid, name in session.execute(
        select(User.id, User.name).where(User.id.in_(ids)))} if ids else {}
    return {a: names.get(a, a) for a in wanted}


def audit_view(session: Session, referral: Referral, *, actor: str) -> None:
    """Record that someone looked at a member's referral (individual health data)."""
    audit.record(session, actor, "referral.viewed", f"referral:{referral.public_id}",
                 detail={"priority": referral.priority})


def waiting_since(session: Session) -> list[datetime]:
    """When each crisis still waiting for an acknowledgement reached the server (every site).

    For doctor and /metrics: anonymous alerts by their receive time, open crisis referrals by
    when their crisis was raised (``raised_times``), never by the referral's last edit.
    """
    times = list(session.scalars(select(CrisisAlert.received_at)
                                 .where(CrisisAlert.acknowledged_at.is_(None))))
    referrals = list(session.scalars(select(Referral).where(
        Referral.priority == "crisis", Referral.crisis_acknowledged_at.is_(None),
        Referral.status != "closed")))
    raised = raised_times(session, referrals)
    times += [raised[r.id].received_at if r.id in raised else r.created_at for r in referrals]
    return times
