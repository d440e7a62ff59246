"""The outbox as a queue: claims with leases, crisis first, and rows made due again."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from ...models import OutboxMessage, as_utc
from .settings import CRISIS as _CRISIS
from .settings import SyncSettings

_OUTBOX = cast(Table, OutboxMessage.__table__)
# One statement run for many rows (each its own jittered time): a Core executemany.
_REVIVE = _OUTBOX.update().where(_OUTBOX.c.id == bindparam("row_id")).values(
    next_attempt_at=bindparam("due"))


def _claimable(now: datetime, due_by: datetime) -> ColumnElement[bool]:
    """The condition of a row a worker may claim now (see ``claim``)."""
    retry_due = ((OutboxMessage.attempts == 0) | (OutboxMessage.next_attempt_at <= due_by)
                 | OutboxMessage.waiting_on_central)
    return (((OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now)
             & retry_due)
            | ((OutboxMessage.status == "sending") & (OutboxMessage.lease_until < now)))


# Built once: building this select each call cost more than running it (it runs once a row).
_C = _OUTBOX.c
_CRISIS_AHEAD = select(_C.id).where((_C.priority == _CRISIS) & (
    ((_C.status == "pending")
     & ((_C.next_attempt_at <= bindparam("now"))
        | (_C.waiting_on_central & (_C.created_at > bindparam("hold_since")))))
    | ((_C.status == "sending") & (_C.lease_until >= bindparam("now"))
       & (_C.claimed_by != bindparam("worker"))))).limit(1)


def crisis_ahead(session: Session, settings: SyncSettings, now: datetime) -> bool:
    """Tell whether a crisis row must reach central before any other row is sent.

    A crisis row is ahead while it is due, while it waits on central (its last try found
    central unavailable; for at most ``crisis_hold`` after it was queued), or while another
    worker sends it under a live lease. Its own short backoff then paces the tries, and the
    first request central answers is a crisis.
    """
    return session.execute(_CRISIS_AHEAD, {
        "now": now, "hold_since": now - settings.crisis_hold,
        "worker": settings.worker_id}).first() is not None


def claim(session: Session, settings: SyncSettings, now: datetime,
          due_by: datetime | None = None) -> list[int]:
    """Claim up to a batch of due rows (crisis first); the caller commits at once.

    Crisis rows are claimed on their own; other rows only while no crisis row is ahead of
    them (``crisis_ahead``), so after an outage every crisis reaches central before anything
    else. ``due_by`` (default ``now``) is when a row that failed for its own sake must have
    been due: a cycle passes its start, so a row it retried is not sent again in the same cycle
    however short the backoff. A row waiting on central is exempt: it failed in an earlier
    cycle (a failure for central's sake ends the cycle), or central answered since.
    """
    due_by = now if due_by is None else due_by
    claimable = _claimable(now, due_by)
    order = (OutboxMessage.priority, OutboxMessage.next_attempt_at, OutboxMessage.id)
    ids = list(session.scalars(
        select(OutboxMessage.id).where(claimable, OutboxMessage.priority == _CRISIS)
        .order_by(*order).limit(settings.batch).with_for_update(skip_locked=True)))
    if not ids and not crisis_ahead(session, settings, now):
        ids = list(session.scalars(
            select(OutboxMessage.id).where(claimable, OutboxMessage.priority != _CRISIS)
            .order_by(*order).limit(settings.batch).with_for_update(skip_locked=True)))
    if ids:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(
            status="sending", claimed_by=settings.worker_id, lease_until=now + settings.lease))
    return ids


def renew(session: Session, settings: SyncSettings, ids: list[int], now: datetime
          ) -> list[int]:
    """Extend this worker's lease on the given rows; return those still its own, in order."""
    if not ids:
        return []
    kept = set(session.scalars(_OUTBOX.update().where(
        _OUTBOX.c.id.in_(ids), _OUTBOX.c.status == "sending",
        _OUTBOX.c.claimed_by == settings.worker_id).values(
            lease_until=now + settings.lease).returning(_OUTBOX.c.id)))
    return [row_id for row_id in ids if row_id in kept]


def release(session: Session, settings: SyncSettings, ids: list[int]) -> None:
    """Give rows this worker claimed but did not try back to the queue, untouched."""
    if ids:
        session.execute(update(OutboxMessage).where(
            OutboxMessage.id.in_(ids), OutboxMessage.status == "sending",
            OutboxMessage.claimed_by == settings.worker_id).values(
                status="pending", claimed_by=None, lease_until=None))


def revive(session: Session, settings: SyncSettings, now: datetime,
           rng: random.Random | None = None) -> int:
    """Make the rows waiting on central due again, now that it answered; return how many.

    Crisis rows are due at once; the others at a random moment within ``revive_jitter``, so
    the backlog drains at the pace of the workers, not of the rows' retry timers.
    """
    waiting = session.execute(select(OutboxMessage.id, OutboxMessage.priority).where(
        OutboxMessage.status == "pending", OutboxMessage.waiting_on_central,
        OutboxMessage.next_attempt_at > now)).tuples().all()
    if not waiting:
        return 0
    pick = rng or random
    session.execute(_REVIVE, [
            {"row_id": row_id, "due": now if priority == _CRISIS else
             now + timedelta(seconds=pick.uniform(0, settings.revive_jitter))}
            for row_id, priority in waiting])
    return len(waiting)


def next_due(session: Session, settings: SyncSettings, now: datetime) -> datetime | None:
    """Return when a pending row next becomes due (crisis rows only while one is ahead)."""
    if session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.priority == _CRISIS, OutboxMessage.status == "sending",
            OutboxMessage.claimed_by != settings.worker_id,
            OutboxMessage.lease_until >= now).limit(1)).first() is not None:
        return now + timedelta(seconds=1)  # another worker sends a crisis: look again soon
    pending = select(func.min(OutboxMessage.next_attempt_at)).where(
        OutboxMessage.status == "pending")
    if crisis_ahead(session, settings, now):
        pending = pending.where(OutboxMessage.priority == _CRISIS)
    due = session.scalar(pending)
    return None if due is None else as_utc(due)



def pending_summary(session: Session) -> dict[str, int]:
    """Count outbox rows per status (for the dashboard and the CLI)."""
    from sqlalchemy import func

    rows = session.execute(select(OutboxMessage.status, func.count())
                           .group_by(OutboxMessage.status)).tuples().all()
    return {status: int(n) for status, n in rows}


