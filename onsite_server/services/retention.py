"""Retention: answers are deleted a while after they are no longer needed onsite.

A member's answers stay onsite until central has them (their referral was forwarded and no
upload of it is pending) and then for ``RETENTION_DAYS`` (90 by default); answers that never
go to central (anonymous, identified with nothing to refer, or withheld because the member did
not consent) stay for the same period after they were received. Before a row is deleted it
is counted into ``submission_tally`` (site, month, instrument, band): the de-identified counts
employer reports need. Referrals, the audit log and crisis alerts are kept; they hold no
answers (the audit log is the record of who saw what, kept for as long as the law asks).

What else piles up with every visit goes after the same period (``purge_history``): outbox
rows central has (their payload names the member and the contact they gave; an open referral
keeps its latest), the replayable
answers of keyed kiosk requests, and ended dashboard log-ins. So these tables hold about one
period of traffic, however many years a site runs.

Each cell counts rows (``count``) and distinct people (``members``, what reports publish): a
person (a member, else an anonymous kiosk session) is counted once per site, month and
instrument, in the band of their latest answer. A person's rows of one site, month and
instrument are deleted together, once all of them have expired, so the tally sees that latest
answer and counts the person once (services/reports counts the rows still here by the same
rule, so a report reads the same before and after a purge). A row can therefore stay until the
last of its group expires: at most until the end of its month plus the period, or until
central has the member's referral.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, delete, exists, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from ..models import (
    IdempotentRequest,
    Kiosk,
    OutboxMessage,
    Referral,
    Submission,
    SubmissionTally,
    UnmatchedClaim,
    UserSession,
)

NOT_SCORED = "not_scored"


def _purgeable(cutoff: datetime) -> object:
    waiting = exists().where(OutboxMessage.referral_id == Submission.referral_id,
                             OutboxMessage.status.in_(("pending", "sending", "dead")))
    forwarded = exists().where(Referral.id == Submission.referral_id, Referral.status != "new")
    # Withheld for want of consent (docs/privacy.md): they never go, so only the period counts.
    withheld = exists().where(OutboxMessage.referral_id == Submission.referral_id,
                              OutboxMessage.status == "withheld")
    return (Submission.received_at < cutoff) & (
        Submission.referral_id.is_(None) | ((forwarded | withheld) & ~waiting))


def purge_expired(session: Session, *, days: int, now: datetime, limit: int = 1000,
                  max_pages: int = 20) -> int:
    """Tally and delete expired submissions, about ``limit`` at a time; return how many went.

    A person's rows of one site, month and instrument go together, so the tally sees their
    latest answer: rows are held while another row of theirs must stay, and a batch takes in
    the rest of a group the limit cut off.
    """
    cutoff = now - timedelta(days=days)
    # Pages in (received_at, id) order: an index range over the expired rows only, where
    # paging by id alone read every row the site keeps on every cycle (bench/history.py).
    key = tuple_(Submission.received_at, Submission.id)
    after: tuple[datetime, int] | None = None
    for _page in range(max_pages):
        query = (select(*_COLUMNS, Submission.received_at)
                 .join(Kiosk, Kiosk.id == Submission.kiosk_id)
                 .where(_purgeable(cutoff))  # type: ignore[arg-type]
                 .order_by(Submission.received_at, Submission.id).limit(limit)
                 .with_for_update(skip_locked=True, of=Submission))
        if after is not None:
            query = query.where(key > tuple_(literal(after[0]), literal(after[1])))
        rows = session.execute(query).all()
        if not rows:
            return 0
        after = (rows[-1][7], rows[-1][0])
        batch = _whole_groups(session, rows, cutoff)
        if batch:
            return _tally_and_delete(session, batch)
    return 0  # every row seen is held for now (their groups are not all expired)


def purge_claims(session: Session, *, days: int, now: datetime) -> int:
    """Delete unmatched sign-in claims not seen for the retention period; return how many.

    A claim holds what someone typed at a kiosk (an id, a birth date, a phone or email) and
    never matched a member: staff follow it up within days, and past the period it is kept
    no longer than the answers it came with.
    """
    cutoff = now - timedelta(days=days)
    result = session.execute(delete(UnmatchedClaim).where(UnmatchedClaim.last_seen_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def purge_history(session: Session, *, days: int, now: datetime, limit: int = 1000) -> int:
    """Delete sent outbox rows, request replays and ended log-ins older than the period.

    At most ``limit`` rows of each table a call (the oldest first, by an indexed range), so a
    backlog is worked off over a few cycles without one long write; return how many went.
    """
    cutoff = now - timedelta(days=days)
    newer = aliased(OutboxMessage)
    # An open referral keeps its latest sent row: that row is how the sync knows central holds
    # the referral (a withdrawn consent must then cancel it there, and updates merge).
    superseded = exists().where(newer.referral_id == OutboxMessage.referral_id,
                                newer.status == "sent", newer.id > OutboxMessage.id)
    closed = exists().where(Referral.id == OutboxMessage.referral_id, Referral.status == "closed")
    gone = 0
    for model, where in (
        (OutboxMessage, (OutboxMessage.status == "sent") & (OutboxMessage.sent_at < cutoff)
         & (OutboxMessage.referral_id.is_(None) | closed | superseded)),
        # A kiosk that replays a key after this long gets the operation run afresh, which the
        # operations keyed this way answer as a no-op or a conflict (cancel, reschedule,
        # consent), or raise the alert once more (a crisis: the safe side); bookings and
        # submissions keep their keys on their own rows.
        (IdempotentRequest, IdempotentRequest.created_at < cutoff),
        (UserSession, UserSession.ended_at < cutoff),
    ):
        ids = select(model.id).where(where).order_by(model.id).limit(limit)
        result = session.execute(delete(model).where(
            model.id.in_(ids.scalar_subquery())))
        gone += int(getattr(result, "rowcount", 0) or 0)
    return gone


_COLUMNS = (Submission.id, Kiosk.site_id, Submission.taken_at, Submission.instrument_id,
            Submission.result, Submission.member_id, Submission.session_id)


def person_key(row_id: int, member_id: int | None, session_id: str | None) -> str:
    """Who a submission counts as in reports: its member, else its kiosk session, else itself."""
    if member_id is not None:
        return f"m{member_id}"
    return f"s{session_id}" if session_id else f"r{row_id}"


def _group(row: Row[Any]) -> tuple[int, str, str, str]:
    """(site, month, instrument, person): the unit a person is counted once in."""
    id_, site_id, taken_at, instrument_id, _result, member_id, session_id = row[:7]
    return site_id, taken_at.strftime("%Y-%m"), instrument_id, person_key(id_, member_id,
                                                                          session_id)


def _whole_groups(session: Session, rows: Sequence[Row[Any]],
                  cutoff: datetime) -> list[Row[Any]]:
    """The rows whose groups are wholly expired, with the group rows the limit left out."""
    members = {r[5] for r in rows if r[5] is not None}
    sessions = {r[6] for r in rows if r[5] is None and r[6]}
    if not members and not sessions:
        return list(rows)
    expired = case((_purgeable(cutoff), True), else_=False)  # type: ignore[arg-type]
    relatives = session.execute(
        select(*_COLUMNS, expired).join(Kiosk, Kiosk.id == Submission.kiosk_id)
        .where(Submission.member_id.in_(members)
               | (Submission.member_id.is_(None) & Submission.session_id.in_(sessions)))
    ).all()
    wanted = {_group(r) for r in rows}
    held = {_group(r) for r in relatives if not r[7]} & wanted
    out: dict[int, Row[Any]] = {r[0]: r for r in rows if _group(r) not in held}
    for r in relatives:
        if r[7] and r[0] not in out and _group(r) in wanted - held:
            out[r[0]] = r
    return sorted(out.values(), key=lambda r: r[0])


def _tally_and_delete(session: Session, rows: Sequence[Row[Any]]) -> int:
    """Count rows and people into the tallies, then delete the rows."""
    cells: dict[tuple[int, str, str, str], list[int]] = {}
    latest: dict[tuple[int, str, str, str], tuple[datetime, int, str]] = {}
    for row in rows:
        id_, site_id, taken_at, instrument_id, result = row[:5]
        band = str((result or {}).get("band") or NOT_SCORED)
        month = taken_at.strftime("%Y-%m")
        cells.setdefault((site_id, month, instrument_id, band), [0, 0])[0] += 1
        group = _group(row)
        if group not in latest or (taken_at, id_) > latest[group][:2]:
            latest[group] = (taken_at, id_, band)
    for (site_id, month, instrument_id, _who), (_at, _id, band) in latest.items():
        cells.setdefault((site_id, month, instrument_id, band), [0, 0])[1] += 1
    for (site_id, month, instrument_id, band), (n, people) in sorted(cells.items()):
        _add(session, site_id, month, instrument_id, band, n, people)
    session.execute(delete(Submission).where(Submission.id.in_([r[0] for r in rows])))
    return len(rows)


def _add(session: Session, site_id: int, month: str, instrument_id: str, band: str,
         n: int, people: int) -> None:
    where = (SubmissionTally.site_id == site_id, SubmissionTally.month == month,
             SubmissionTally.instrument_id == instrument_id, SubmissionTally.band == band)
    grow = {"count": SubmissionTally.count + n, "members": SubmissionTally.members + people}
    if session.execute(update(SubmissionTally).where(*where)
                       .values(**grow)).rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.add(SubmissionTally(site_id=site_id, month=month, instrument_id=instrument_id,
                                        band=band, count=n, members=people))
    except IntegrityError:
        # Another worker created the cell in the meantime: add to it instead.
        session.execute(update(SubmissionTally).where(*where).values(**grow))
