"""A sliding-window rate limiter whose memory is the audit log, so all workers share it.

Counting rows in the database (instead of a per-process dict) is what makes the limit hold
across several gunicorn workers and restarts. The caller must serialise concurrent checks for
one key (the identify service locks the kiosk row; pairing uses ``serialize``) so
count-then-insert cannot overshoot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from ..models import AuditLog, utcnow


@dataclass(frozen=True)
class Decision:
    """Whether an attempt is admitted, and if not, how many seconds until one would be."""

    allowed: bool
    retry_after: int = 0


def check(session: Session, *, actor: str | None, action: str, limit: int,
          window_seconds: int = 60, now: datetime | None = None) -> Decision:
    """Decide whether actor (None: all actors together) may make another `action` attempt."""
    now = now or utcnow()
    if remaining(session, actor=actor, action=action, limit=limit,
                 window_seconds=window_seconds, now=now):
        return Decision(True)
    if limit <= 0:
        return Decision(False, window_seconds)
    # The next attempt is admitted when the limit-th most recent one leaves the window.
    query = _recent(actor, action, window_seconds, now)
    oldest = session.scalars(query.order_by(AuditLog.at.desc()).offset(limit - 1).limit(1)).one()
    frees_at = oldest + timedelta(seconds=window_seconds)
    return Decision(False, max(1, math.ceil((frees_at - now).total_seconds())))


def remaining(session: Session, *, actor: str | None, action: str, limit: int,
              window_seconds: int = 60, now: datetime | None = None) -> int:
    """Return how many more `action` attempts actor may make now (0 at the limit)."""
    if limit <= 0:
        return 0
    query = _recent(actor, action, window_seconds, now or utcnow())
    # Counted in the database, bounded by the limit: loading every attempt's timestamp cost
    # each check up to `limit` rows (a kiosk's offline-id cap is 300 a day).
    seen = session.scalar(select(func.count()).select_from(query.limit(limit).subquery()))
    return max(0, limit - int(seen or 0))


def _recent(actor: str | None, action: str, window_seconds: int, now: datetime) -> Select[Any]:
    query = select(AuditLog.at).where(AuditLog.action == action,
                                      AuditLog.at > now - timedelta(seconds=window_seconds))
    if actor is not None:
        query = query.where(AuditLog.actor == actor)
    return query


def serialize(session: Session, key: str) -> None:
    """Make concurrent checks for key wait for each other until this transaction ends.

    For limits with no row to lock (identify locks its kiosk row instead). On PostgreSQL a
    transaction-scoped advisory lock; SQLite needs none, as a write transaction already holds
    the database's only write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def record(session: Session, *, actor: str, action: str, subject: str | None = None,
           detail: dict[str, Any] | None = None, now: datetime | None = None) -> None:
    """Record one admitted attempt (it counts against the limit once committed)."""
    session.add(AuditLog(at=now or utcnow(), actor=actor, action=action, subject=subject,
                         detail=detail or {}))
