"""The audit log: who viewed or changed what (every view of an individual's health data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
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


# Counting every entry of a site that has kept its log for years would cost a scan of them all
# on every page; past this many the page says "more than".
COUNT_CAP = 10_000


@dataclass(frozen=True)
class AuditPage:
    """One page of entries, newest first, with cursors to the pages on either side."""

    rows: list[AuditLog]
    total: int  # entries that match, counted up to COUNT_CAP + 1
    newer: int | None  # the id to pass as ``after`` for the page before, if there is one
    older: int | None  # the id to pass as ``before`` for the page after, if there is one

    @property
    def capped(self) -> bool:
        """Tell whether there are more entries than were counted."""
        return self.total > COUNT_CAP


def _filtered(scope: Scope, *, actor: str | None, action: str | None,
              since: datetime | None) -> Select[tuple[AuditLog]]:
    """The scope's entries, narrowed to an actor, an action prefix and a start time if given."""
    query = select(AuditLog).where(scope.where(AuditLog.site_id))
    if actor:
        query = query.where(AuditLog.actor == actor)
    if action:
        query = query.where(AuditLog.action.startswith(action))
    if since is not None:
        query = query.where(AuditLog.at >= since)
    return query


def page(session: Session, scope: Scope, *, before: int | None = None,
         after: int | None = None, oldest: bool = False, limit: int = 50,
         actor: str | None = None, action: str | None = None,
         since: datetime | None = None) -> AuditPage:
    """One page of the scope's entries, newest first: the newest, the oldest, or the page
    just older than entry ``before`` or just newer than entry ``after``.

    Keyset pages (by time, then id) cost the same on the last page of a log of millions as
    on the first, where an offset would read and skip everything before it.
    """
    limit = max(1, min(limit, 500))
    filtered = _filtered(scope, actor=actor, action=action, since=since)
    query = filtered
    key = tuple_(AuditLog.at, AuditLog.id)
    cursor = before if before is not None else after
    mark = session.execute(select(AuditLog.at, AuditLog.id).where(
        AuditLog.id == cursor)).one_or_none() if cursor is not None else None
    ascending = oldest or (after is not None and mark is not None)
    if mark is not None and before is not None:
        query = query.where(key < tuple_(*mark))
    elif mark is not None:
        query = query.where(key > tuple_(*mark))
    order = (AuditLog.at.asc(), AuditLog.id.asc()) if ascending else (
        AuditLog.at.desc(), AuditLog.id.desc())
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if ascending:
        rows.reverse()
    # Whether there is anything beyond each end of this page.
    newer_exists = more if ascending else mark is not None and before is not None
    older_exists = (more if not ascending else (after is not None and mark is not None))
    total = int(session.scalar(select(func.count()).select_from(
        filtered.with_only_columns(AuditLog.id).limit(COUNT_CAP + 1).subquery())) or 0)
    return AuditPage(rows=rows, total=total,
                     newer=rows[0].id if rows and newer_exists else None,
                     older=rows[-1].id if rows and older_exists else None)
