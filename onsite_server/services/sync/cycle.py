"""One cycle of the worker: housekeeping, then every due row forwarded and recorded."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.backoff import full_jitter

from ...models import Alert, OutboxMessage, Referral, as_utc, utcnow
from ..bookings import expire_waitlist, mark_no_shows, send_reminders
from ..retention import purge_claims, purge_expired, purge_history
from ..scope import outbox_site
from .bundles import key_snapshot
from .forward import forward_row as _forward
from .lease import Lease
from .queue import claim, crisis_ahead, next_due, priorities, release, revive
from .settings import CRISIS as _CRISIS
from .settings import Sender, SyncReport, SyncSettings, log


def _alert(session: Session, kind: str, message: str, row: OutboxMessage | None = None) -> bool:
    """Raise an alert (a dashboard banner and a log line) unless the same one is still open.

    An alert about an outbox row belongs to the row's site, so only that site's admins (and
    operators) see and clear it.
    """
    open_alert = session.scalars(select(Alert.id).where(
        Alert.kind == kind, Alert.message == message, Alert.cleared_at.is_(None))).first()
    if open_alert is not None:
        return False
    log.warning("alert %s: %s", kind, message)
    site_id = None if row is None else session.scalar(
        select(outbox_site()).where(OutboxMessage.id == row.id))
    session.add(Alert(kind=kind, message=message, site_id=site_id))
    return True


def _finish(session: Session, row_id: int, settings: SyncSettings, now: datetime,
            outcome: str, error: str | None, report: SyncReport,
            rng: random.Random | None) -> None:
    row = session.get(OutboxMessage, row_id)
    if row is None or row.status != "sending" or row.claimed_by != settings.worker_id:
        return  # our lease ran out and another worker took the row over: its outcome counts
    row.claimed_by = None
    row.lease_until = None
    row.waiting_on_central = False
    if outcome == "withheld":
        # Consent lets it send nothing (docs/privacy.md): done, and the referral not sent.
        row.status, row.last_error = "withheld", None
        report.withheld += 1
        return
    if outcome == "sent":
        row.status, row.sent_at, row.last_error = "sent", now, None
        referral = session.get(Referral, row.referral_id) if row.referral_id else None
        if referral is not None and referral.status == "new":
            referral.status = "sent"
        report.sent += 1
        return
    row.attempts += 1
    row.last_error = (error or "")[:2000]
    if outcome == "dead":
        row.status = "dead"
        report.dead += 1
        kind = "crisis_dead_letter" if row.priority == 0 else "dead_letter"
        text = (f"Outbox {row.key} was refused by central and needs an admin: {error}"
                if row.priority else
                f"CRISIS referral {row.key} was refused by central: act now, call the "
                f"member's advocate ({error})")
        if _alert(session, kind, text, row):
            report.alerts.append(kind)
        return
    row.status = "pending"
    row.waiting_on_central = outcome == "unavailable"
    base, cap = ((settings.crisis_backoff_base, settings.crisis_backoff_cap)
                 if row.priority == _CRISIS else (settings.backoff_base, settings.backoff_cap))
    row.next_attempt_at = now + timedelta(seconds=full_jitter(row.attempts, base, cap, rng))
    report.retried += 1


def housekeeping(session: Session, settings: SyncSettings, now: datetime,
                 report: SyncReport) -> None:
    """The periodic jobs of every cycle: no-shows, waitlists, reminders, stuck rows, retention."""
    report.no_shows += mark_no_shows(session, now)
    report.waitlist_expired += expire_waitlist(session, now)
    report.reminders += send_reminders(session, settings.reminder_lead, now)
    report.purged += purge_expired(session, days=settings.retention_days, now=now)
    report.purged += purge_claims(session, days=settings.retention_days, now=now)
    report.purged += purge_history(session, days=settings.retention_days, now=now)
    stuck = session.scalars(select(OutboxMessage).where(
        OutboxMessage.status.in_(("pending", "sending")),
        OutboxMessage.created_at < now - settings.stuck_after, OutboxMessage.attempts > 0))
    for row in stuck:
        # A stable text: an open alert with the same text is not raised again.
        if _alert(session, "outbox_stuck",
                  f"Outbox {row.key} has not reached central for over an hour; its last "
                  "error is in the outbox list", row):
            report.alerts.append("outbox_stuck")


def run_cycle(transaction: Callable[..., Any], sender: Sender, settings: SyncSettings, *,
              now: Callable[[], datetime] = utcnow, rng: random.Random | None = None,
              max_rows: int = 10_000, central_answered: bool = False) -> SyncReport:
    """Do the housekeeping, then forward everything due; return what happened.

    ``central_answered`` says central has just answered another request of this worker's
    (the directory pull): the rows waiting on central are made due at once, not after the
    first row goes.

    ``transaction`` opens a committing session context (``Database.transaction``; called
    with ``write=False`` to read). Bundles are built in read-only transactions, so building
    never holds SQLite's write lock against the kiosks. Each row's outcome is recorded as soon
    as it is known, in a short write transaction that also renews the lease on the rest of
    the batch, so a slow central never lets another worker take over rows this one is still
    sending. The first row central takes in a cycle makes the rows waiting on central due
    again (``revive``). A failure that is central's (no answer, 5xx, 429) ends the cycle:
    the rest of the batch goes back to the queue untried, and the next try is paced by the
    rows' backoff (short for a crisis), which ``report.next_due`` tells the loop. A worker
    that dies leaves its rows to the lease, and they are sent again, which central's
    conditional creates and updates make harmless.
    """
    report = SyncReport()
    started = now()
    with transaction() as session:
        housekeeping(session, settings, started, report)
        if central_answered:
            report.revived += revive(session, settings, started, rng)
    handled = 0
    revived = central_answered
    failed_row = 0
    while handled < max_rows and not report.central_unavailable:
        with transaction() as session:
            claimed_at = now()
            ids = claim(session, settings, claimed_at, due_by=started)
            keys = key_snapshot(session, settings, now()) if ids else None
        if not ids:
            break
        lease = Lease(transaction, settings, ids, claimed_at + settings.lease, now)
        while lease.ids:
            row_id = lease.ids[0]
            handled += 1
            outcome, error = _forward(transaction, lease.guard(sender), settings, row_id,
                                      now, keys)
            rest = lease.ids[1:]  # a renewal while sending drops rows another worker took
            with transaction() as session:
                moment = now()
                _finish(session, row_id, settings, moment, outcome, error, report, rng)
                if outcome == "sent" and not revived:
                    revived = True
                    report.revived += revive(session, settings, moment, rng)
                stop = outcome == "unavailable" or bool(
                    # A crisis became due (central answered, or a kiosk queued one): it goes
                    # before the rest of this batch.
                    rest and min(priorities(session, rest)) != _CRISIS
                    and crisis_ahead(session, settings, moment))
                if stop:
                    release(session, settings, rest)
                else:
                    lease.keep(session, rest, moment)
            if outcome == "unavailable":
                report.central_unavailable = True
                failed_row = row_id
            if stop:
                break
    with transaction(write=False) as session:
        if report.central_unavailable:
            # Central is away: the next try waits for the failed row's backoff (the rows
            # put back untried are due, and would otherwise be tried at once).
            due = session.scalar(select(OutboxMessage.next_attempt_at).where(
                OutboxMessage.id == failed_row))
            report.next_due = None if due is None else as_utc(due)
        else:
            report.next_due = next_due(session, settings, now())
    return report

