"""Retention: answers are deleted a while after they are no longer needed onsite.

A member's answers stay onsite until central has them (their referral was forwarded and no
upload of it is pending) and then for ``RETENTION_DAYS`` (90 by default); answers that never
go to central (anonymous, or identified with nothing to refer) stay for the same period after
they were received. Before a row is deleted it is counted into ``submission_tally`` (site,
month, instrument, band): the de-identified counts employer reports need. Referrals, the
audit log and crisis alerts are kept; they hold no answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import Kiosk, OutboxMessage, Referral, Submission, SubmissionTally

NOT_SCORED = "not_scored"


def _purgeable(cutoff: datetime) -> object:
    waiting = exists().where(OutboxMessage.referral_id == Submission.referral_id,
                             OutboxMessage.status.in_(("pending", "sending", "dead")))
    forwarded = exists().where(Referral.id == Submission.referral_id, Referral.status != "new")
    return (Submission.received_at < cutoff) & (
        Submission.referral_id.is_(None) | (forwarded & ~waiting))


def purge_expired(session: Session, *, days: int, now: datetime, limit: int = 1000) -> int:
    """Tally and delete up to ``limit`` expired submissions; return how many went."""
    rows = session.execute(
        select(Submission.id, Kiosk.site_id, Submission.taken_at, Submission.instrument_id,
               Submission.result)
        .join(Kiosk, Kiosk.id == Submission.kiosk_id)
        .where(_purgeable(now - timedelta(days=days)))  # type: ignore[arg-type]
        .order_by(Submission.id).limit(limit).with_for_update(skip_locked=True, of=Submission)
    ).all()
    if not rows:
        return 0
    cells: dict[tuple[int, str, str, str], int] = {}
    for _id, site_id, taken_at, instrument_id, result in rows:
        band = str((result or {}).get("band") or NOT_SCORED)
        cell = (site_id, taken_at.strftime("%Y-%m"), instrument_id, band)
        cells[cell] = cells.get(cell, 0) + 1
    for (site_id, month, instrument_id, band), n in sorted(cells.items()):
        _add(session, site_id, month, instrument_id, band, n)
    session.execute(delete(Submission).where(Submission.id.in_([r[0] for r in rows])))
    return len(rows)


def _add(session: Session, site_id: int, month: str, instrument_id: str, band: str,
         n: int) -> None:
    where = (SubmissionTally.site_id == site_id, SubmissionTally.month == month,
             SubmissionTally.instrument_id == instrument_id, SubmissionTally.band == band)
    if session.execute(update(SubmissionTally).where(*where)
                       .values(count=SubmissionTally.count + n)).rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.add(SubmissionTally(site_id=site_id, month=month,
                                        instrument_id=instrument_id, band=band, count=n))
    except IntegrityError:
        # Another worker created the cell in the meantime: add to it instead.
        session.execute(update(SubmissionTally).where(*where)
                        .values(count=SubmissionTally.count + n))
