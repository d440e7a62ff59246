"""The audit log: who viewed or changed what (every view of an individual's health data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import AuditLog, utcnow
from .scope import Scope


def user_actor(user_id: int) -> str:
    """Return the audit actor string of a dashboard user."""
    return f"user:{user_id}"


def record(session: Session, actor: str, action: str, subject: str | None = None, *,
           detail: dict[str, Any] | None = None, note: str | None = None) -> AuditLog:
    """Add one audit entry to the caller's transaction."""
    entry = AuditLog(at=utcnow(), actor=actor, action=action, subject=subject,
                     detail=detail or {}, note=note)
    session.add(entry)
    return entry


def page(session: Session, scope: Scope, *, offset: int = 0, limit: int = 50,
         actor: str | None = None, action: str | None = None,
         since: datetime | None = None) -> tuple[list[AuditLog], int]:
    """Return one page of the scope's entries, newest first, with the total that matches."""
    query = select(AuditLog).where(scope.where(AuditLog.site_id))
    if actor:
        query = query.where(AuditLog.actor == actor)
    if action:
        query = query.where(AuditLog.action.startswith(action))
    if since is not None:
        query = query.where(AuditLog.at >= since)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(query.order_by(AuditLog.at.desc(), AuditLog.id.desc())
                           .offset(max(0, offset)).limit(max(1, min(limit, 500)))).all()
    return list(rows), total

