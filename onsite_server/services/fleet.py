"""The kiosk fleet and sync health, for the coordinators' fleet page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Alert, Kiosk, OutboxMessage, utcnow
from . import audit
from .errors import N_, ServiceError
from .sync import pending_summary

# A kiosk that sends its heartbeat every minute or so is stale after this long without one.
STALE_AFTER = timedelta(minutes=5)


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


def sync_health(session: Session, limit: int = 100) -> SyncHealth:
    """Outbox counts, the dead letters (newest first) and the oldest row still waiting."""
    dead = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status == "dead")
                                .order_by(OutboxMessage.created_at.desc()).limit(limit)))
    oldest = session.scalar(select(OutboxMessage.created_at)
                            .where(OutboxMessage.status.in_(("pending", "sending")))
                            .order_by(OutboxMessage.created_at).limit(1))
    return SyncHealth(pending_summary(session), dead, oldest)


def retry_dead(session: Session, message_id: int, *, actor: str) -> OutboxMessage:
    """Put a dead letter back in the queue, due now (after the cause was fixed)."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.status != "dead":
        raise ServiceError("not_found", "Not Found",
                           [{"field": "message", "message": N_("no such dead letter")}])
    row.status = "pending"
    row.next_attempt_at = utcnow()
    row.claimed_by = None
    row.lease_until = None
    audit.record(session, actor, "outbox.retried", f"outbox:{row.key}",
                 detail={"attempts": row.attempts})
    return row


def clear_alert(session: Session, alert_id: int, *, actor: str) -> Alert:
    """Mark an operational alert as dealt with."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.cleared_at is not None:
        raise ServiceError("not_found", "Not Found",
                           [{"field": "alert", "message": N_("no such open alert")}])
    alert.cleared_at = utcnow()
    audit.record(session, actor, "alert.cleared", f"alert:{alert.id}",
                 detail={"kind": alert.kind})
    return alert
