"""The kiosk fleet, and sync health (the outbox, dead letters, alerts) within a site scope.

Sync health, dead letters and operational alerts are read and changed only within a
``Scope`` (services/scope.py): an admin's own site, or the whole server for an operator. A
row of another site is "not found", exactly like a row that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..models import Alert, Kiosk, OutboxMessage, utcnow
from . import audit
from .errors import N_
from .scope import Scope, not_found, outbox_site

# A kiosk that sends its heartbeat every minute or so is stale after this long without one.
STALE_AFTER = timedelta(minutes=5)


# One UPDATE built once: a heartbeat changed the kiosk's mapped object, and the unit of
# work's flush of that one object (history of five attributes, the UPDATE built for them)
# cost more than the rest of the request's own work.
_KIOSKS = cast(Table, Kiosk.__table__)
_HEARTBEAT = (
    update(_KIOSKS).where(_KIOSKS.c.id == bindparam("kiosk_id"))
    .values(app_version=bindparam("new_app_version"), outbox_depth=bindparam("new_depth"),
            last_sync_at=bindparam("new_last_sync"), free_disk_bytes=bindparam("new_free"),
            last_heartbeat_at=bindparam("new_heartbeat"))
)


def record_heartbeat(session: Session, kiosk: Kiosk, *, app_version: str, outbox_depth: int,
                     last_sync_at: datetime | None, free_disk_bytes: int,
                     now: datetime) -> None:
    """Store a kiosk's heartbeat on its row (one UPDATE; the caller commits)."""
    session.connection().execute(_HEARTBEAT, {
        "kiosk_id": kiosk.id, "new_app_version": app_version, "new_depth": outbox_depth,
        "new_last_sync": last_sync_at, "new_free": free_disk_bytes, "new_heartbeat": now})
    # The loaded object says what the row now holds, as written (nothing left to flush).
    for key, value in (("app_version", app_version), ("outbox_depth", outbox_depth),
                       ("last_sync_at", last_sync_at), ("free_disk_bytes", free_disk_bytes),
                       ("last_heartbeat_at", now)):
        set_committed_value(kiosk, key, value)


@dataclass(frozen=True)
class KioskRow:
    """One kiosk as the fleet list shows it."""

    kiosk: Kiosk
    stale: bool


def fleet(session: Session, site_id: int, now: datetime | None = None) -> list[KioskRow]:
    """The site's paired kiosks (revoked ones last), with stale heartbeats flagged."""
    now = now or utcnow()
    kiosks = session.scalars(select(Kiosk).where(Kiosk.site_id == site_id,
                                                 Kiosk.token_hash.is_not(None))
                             .order_by(Kiosk.revoked_at.is_not(None), Kiosk.label, Kiosk.id))
    return [KioskRow(k, k.revoked_at is None and (k.last_heartbeat_at is None
                                                  or now - k.last_heartbeat_at > STALE_AFTER))
            for k in kiosks]


@dataclass(frozen=True)
class SyncHealth:
    """The server's outbox towards central: counts per status, and the dead-letter list."""

    counts: dict[str, int]
    dead: list[OutboxMessage]
    oldest_pending: datetime | None
    # Rows still waiting whose last try failed (oldest first), with why: what the stuck
    # alert points to, and what names a refused token, a TLS fault or a redirect.
    failing: list[OutboxMessage] = field(default_factory=list)


def sync_health(session: Session, scope: Scope, limit: int = 100) -> SyncHealth:
    """The scope's outbox counts, dead letters (newest first), oldest row still waiting, and
    the rows waiting after a failed try (oldest first)."""
    in_scope = scope.where(outbox_site())
    failing = list(session.scalars(select(OutboxMessage).where(
        OutboxMessage.status.in_(("pending", "sending")), OutboxMessage.attempts > 0,
        OutboxMessage.last_error.is_not(None), in_scope)
        .order_by(OutboxMessage.created_at, OutboxMessage.id).limit(limit)))
    dead = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status == "dead",
                                                            in_scope)
                                .order_by(OutboxMessage.created_at.desc()).limit(limit)))
    oldest = session.scalar(select(OutboxMessage.created_at)
                            .where(OutboxMessage.status.in_(("pending", "sending")), in_scope)
                            .order_by(OutboxMessage.created_at).limit(1))
    counts = session.execute(select(OutboxMessage.status, func.count()).where(in_scope)
                             .group_by(OutboxMessage.status)).tuples().all()
    return SyncHealth({status: int(n) for status, n in counts}, dead, oldest, failing)


def get_dead_letter(session: Session, scope: Scope, message_id: int) -> OutboxMessage:
    """A dead letter of the scope (another site's, or one no longer dead: not found)."""
    row = session.scalars(select(OutboxMessage).where(
        OutboxMessage.id == message_id, OutboxMessage.status == "dead",
        scope.where(outbox_site()))).first()
    if row is None:
        raise not_found("message", N_("no such dead letter"))
    return row


def retry_dead(session: Session, scope: Scope, message_id: int, *,
               actor: str) -> OutboxMessage:
    """Put a dead letter of the scope back in the queue, due now (after the cause was fixed)."""
    row = get_dead_letter(session, scope, message_id)
    row.status = "pending"
    row.next_attempt_at = utcnow()
    row.claimed_by = None
    row.lease_until = None
    audit.record(session, actor, "outbox.retried", f"outbox:{row.key}",
                 detail={"attempts": row.attempts})
    return row


def open_alerts(session: Session, scope: Scope, limit: int = 10) -> list[Alert]:
    """The scope's open operational alerts, newest first (server-wide ones: operators)."""
    return list(session.scalars(select(Alert).where(Alert.cleared_at.is_(None),
                                                    scope.where(Alert.site_id))
                                .order_by(Alert.raised_at.desc(), Alert.id.desc())
                                .limit(limit)))


def clear_alert(session: Session, scope: Scope, alert_id: int, *, actor: str) -> Alert:
    """Mark an open operational alert of the scope as dealt with."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.cleared_at is not None or not scope.covers(alert.site_id):
        raise not_found("alert", N_("no such open alert"))
    alert.cleared_at = utcnow()
    audit.record(session, actor, "alert.cleared", f"alert:{alert.id}",
                 detail={"kind": alert.kind})
    return alert
