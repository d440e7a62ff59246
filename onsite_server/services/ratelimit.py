"""A sliding-window rate limiter whose memory is the audit log, so all workers share it.

Counting rows in the database (instead of a per-process dict) is what makes the limit hold
across several gunicorn workers and restarts. The caller must serialise concurrent checks for
one key (the identify service locks the kiosk row) so count-then-insert cannot overshoot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditLog, utcnow


@dataclass(frozen=True)
class Decision:
    """Whether an attempt is admitted, and if not, how many seconds until one would be."""

    allowed: bool
    retry_after: int = 0


def check(session: Session, *, actor: str, action: str, limit: int, window_seconds: int = 60,
          now: datetime | None = None) -> Decision:
    """Decide whether actor may make another `action` attempt within the window."""
    now = now or utcnow()
    if limit <= 0:
        return Decision(False, window_seconds)
    recent = session.scalars(
        select(AuditLog.at)
        .where(AuditLog.actor == actor, AuditLog.action == action,
               AuditLog.at > now - timedelta(seconds=window_seconds))
        .order_by(AuditLog.at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return Decision(True)
    # The next attempt is admitted when the limit-th most recent one leaves the window.
    frees_at = recent[-1] + timedelta(seconds=window_seconds)
    return Decision(False, max(1, math.ceil((frees_at - now).total_seconds())))


def record(session: Session, *, actor: str, action: str, subject: str | None = None,
           detail: dict[str, Any] | None = None, now: datetime | None = None) -> None:
    """Record one admitted attempt (it counts against the limit once committed)."""
    session.add(AuditLog(at=now or utcnow(), actor=actor, action=action, subject=subject,
                         detail=detail or {}))
