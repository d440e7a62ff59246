"""One cycle of the worker: housekeeping, then every due row forwarded and recorded."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from shared.backoff import full_jitter

from ...models import Alert, OutboxMessage, Referral, as_utc, utcnow
from ..bookings import expire_waitlist, mark_no_shows, send_reminders
from ..retention import purge_claims, purge_expired, purge_history
from ..scope import outbox_site
from .bundles import KeySnapshot, key_snapshot
from .forward import Outcome, Prepared, prepare, prepare_many, send_row
from .lease import Lease
from .queue import claim, crisis_ahead, next_due, release, revive
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


_OUTBOX = cast(Table, OutboxMessage.__table__)
# Rows the preparer reads at once, at most. A chunk comes back whole, so the worker waits for
# all of a chunk to have its first row; and it is what the worker takes over (``_wait``).
# Four rows cost the five statements of a chunk little more a row than sixteen (they are
# built once), and kept the worker from waiting on the child's larger chunks.
_AHEAD_CHUNK = 4
_REFERRAL = cast(Table, Referral.__table__)
# A row done ("sent" or "withheld") is recorded by one UPDATE that also checks the row is
# still this worker's, without loading it: this runs once a row, on the hot path.
_DONE = _OUTBOX.update().where(
    _OUTBOX.c.id == bindparam("row_id"), _OUTBOX.c.status == "sending",
    _OUTBOX.c.claimed_by == bindparam("worker")).values(
        status=bindparam("done"), last_error=None, claimed_by=None, lease_until=None,
        waiting_on_central=False).returning(_OUTBOX.c.referral_id)
_SENT = _DONE.values(sent_at=bindparam("when"))
_VERSION = select(_REFERRAL.c.version).where(_REFERRAL.c.id == bindparam("referral"))
_REFERRAL_SENT = _REFERRAL.update().where(
    _REFERRAL.c.id == bindparam("referral"), _REFERRAL.c.status == "new").values(status="sent")


def _done(session: Session, row_id: int, settings: SyncSettings, now: datetime,
          outcome: str, report: SyncReport) -> None:
    """Record a row sent, or withheld (consent lets it send nothing, docs/privacy.md)."""
    params = {"row_id": row_id, "worker": settings.worker_id, "done": outcome}
    if outcome == "withheld":
        if session.execute(_DONE, params).first() is not None:
            report.withheld += 1  # done, and the referral not sent
        return
    mine = session.execute(_SENT, {**params, "when": now}).first()
    if mine is None:
        return  # our lease ran out and another worker took the row over: its outcome counts
    if mine.referral_id is not None:
        session.execute(_REFERRAL_SENT, {"referral": mine.referral_id})
    report.sent += 1


def _finish(session: Session, row_id: int, settings: SyncSettings, now: datetime,
            outcome: str, error: str | None, report: SyncReport,
            rng: random.Random | None, wait: float | None = None) -> None:
    if outcome in ("sent", "withheld"):
        _done(session, row_id, settings, now, outcome, report)
        return
    row = session.get(OutboxMessage, row_id)
    if row is None or row.status != "sending" or row.claimed_by != settings.worker_id:
        return  # our lease ran out and another worker took the row over: its outcome counts
    row.claimed_by = None
    row.lease_until = None
    row.waiting_on_central = False
    row.attempts += 1
    row.last_error = (error or "")[:2000]
    if outcome == "dead":
        row.status = "dead"
        report.dead += 1
        kind = "crisis_dead_letter" if row.priority == 0 else "dead_letter"
        # A bundle our own validation refused never left: say so, not "refused by central".
        why = ("cannot be sent: it is not valid FHIR, so it never left this server"
               if (error or "").startswith("invalid FHIR") else "was refused by central")
        text = (f"Outbox {row.key} {why}, and needs an admin: {error}" if row.priority else
                f"CRISIS referral {row.key} {why}: act now, call the member's advocate "
                f"({error})")
        if _alert(session, kind, text, row):
            report.alerts.append(kind)
        return
    row.status = "pending"
    row.waiting_on_central = outcome == "unavailable"
    base, cap = ((settings.crisis_backoff_base, settings.crisis_backoff_cap)
                 if row.priority == _CRISIS else (settings.backoff_base, settings.backoff_cap))
    delay = full_jitter(row.attempts, base, cap, rng)
    if wait is not None:
        # Central said when to come back (Retry-After): not sooner, and never later than our
        # own cap (a crisis's is short), however far off central's date is.
        delay = max(delay, min(wait, cap))
        report.hold_until = now + timedelta(seconds=delay)
    row.next_attempt_at = now + timedelta(seconds=delay)
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


class Preparer(Protocol):
    """Where a batch's rows are prepared ahead: a thread of the worker, or a child process
    (``onsite_server.sync_preparer.ProcessPreparer``)."""

    def submit(self, transaction: Callable[..., Any], settings: SyncSettings,
               row_ids: Sequence[int], now: Callable[[], datetime],
               keys: KeySnapshot) -> Future[dict[int, Prepared | Outcome]]:
        """Start preparing the rows (``prepare_many``); the future holds what each sends."""


@dataclass
class _ThreadPreparer:
    pool: ThreadPoolExecutor

    def submit(self, transaction: Callable[..., Any], settings: SyncSettings,
               row_ids: Sequence[int], now: Callable[[], datetime],
               keys: KeySnapshot) -> Future[dict[int, Prepared | Outcome]]:
        return self.pool.submit(prepare_many, transaction, settings, row_ids, now, keys)


def run_cycle(transaction: Callable[..., Any], sender: Sender, settings: SyncSettings, *,
              now: Callable[[], datetime] = utcnow, rng: random.Random | None = None,
              max_rows: int = 10_000, central_answered: bool = False,
              preparer: Preparer | None = None) -> SyncReport:
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

    ``preparer`` is where later rows are prepared while one is sent (default: a thread of this
    process; the worker passes a ``ProcessPreparer``, so that building and validation run on
    the other core).
    """
    report = SyncReport()
    started = now()
    with transaction() as session:
        housekeeping(session, settings, started, report)
        if central_answered:
            report.revived += revive(session, settings, started, rng)
    progress = _Progress(revived=central_answered)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-prepare") as pool:
        ahead = preparer if preparer is not None else _ThreadPreparer(pool)
        while progress.handled < max_rows and not report.central_unavailable:
            with transaction() as session:
                claimed_at = now()
                ids = claim(session, settings, claimed_at, due_by=started)
                keys = key_snapshot(session, settings, now()) if ids else None
                claimed = session.execute(select(
                    OutboxMessage.id, OutboxMessage.referral_id, OutboxMessage.priority).where(
                        OutboxMessage.id.in_(ids))).tuples().all() if ids else []
            referrals = {row_id: referral for row_id, referral, _ in claimed}
            # A batch is all crisis rows or none (``claim``), and a claimed row's priority does
            # not change while it is claimed: read it once, not once a row.
            crisis_batch = any(priority == _CRISIS for _, _, priority in claimed)
            if not ids or keys is None:
                break
            batch = _Batch(transaction, sender, settings, now, rng, report, progress, ahead,
                           Lease(transaction, settings, ids, claimed_at + settings.lease, now),
                           keys, referrals, crisis_batch)
            batch.drain()
    with transaction(write=False) as session:
        if report.central_unavailable:
            # Central is away: the next try waits for the failed row's backoff (the rows
            # put back untried are due, and would otherwise be tried at once).
            due = session.scalar(select(OutboxMessage.next_attempt_at).where(
                OutboxMessage.id == progress.failed_row))
            report.next_due = None if due is None else as_utc(due)
        else:
            report.next_due = next_due(session, settings, now())
    return report


@dataclass
class _Progress:
    """What a cycle carries from one batch to the next."""

    handled: int = 0
    revived: bool = False  # rows waiting on central were made due again in this cycle
    failed_row: int = 0  # the row central did not take, when it ended the cycle


@dataclass
class _Batch:
    """One claimed batch, sent row by row in claim order, each outcome recorded before the
    next row is sent.

    While a row is sent and recorded, the batch's later referral rows are read (set-based, a
    chunk at a time: ``prepare_many``), built and validated by the preparer (a thread, or a
    child process), so the database reads and the validation overlap the wait for central and
    for the commit; while the next row is not ready, the worker prepares the chunks the
    preparer has not started itself (``_wait``). Only
    one request is in flight at a time: the order, the crisis checks and the per-row records
    are those of a strictly serial worker. The crisis check runs in the transaction that
    records each row, after later rows were prepared and just before the next is sent: a
    crisis queued meanwhile stops the batch, and what was prepared ahead is dropped (the rows
    go back to the queue). A row of the same referral as an earlier row of the batch is not
    prepared ahead: what it sends depends on whether that row reached central (an update, a
    withdrawal). A row prepared ahead whose referral changed before it is sent (consent
    withdrawn, a crisis found) is built again, so it never sends more, or older, than the
    database holds when it goes. Booking and message rows are built just before they are sent.
    """

    transaction: Callable[..., Any]
    sender: Sender
    settings: SyncSettings
    now: Callable[[], datetime]
    rng: random.Random | None
    report: SyncReport
    progress: _Progress
    preparer: Preparer
    lease: Lease
    keys: KeySnapshot
    referrals: dict[int, int | None]  # row id -> its referral (None: a booking or message)
    crisis_batch: bool
    # Rows being prepared ahead -> the preparing thread's task that reads them, a chunk of
    # the batch at once.
    ahead: dict[int, Future[dict[int, Prepared | Outcome]]] = field(default_factory=dict)
    # The chunks handed to the preparer, in order: the worker takes the last ones not started
    # yet and prepares them itself while it would otherwise wait (``_wait``).
    chunks: list[tuple[list[int], Future[dict[int, Prepared | Outcome]]]] = field(
        default_factory=list)
    # The referral's version of the next row, read as the row before it was recorded (None:
    # not read, the batch stopped).
    ahead_version: int | None = None
    # Rows central took whose outcome is not committed yet (row, outcome, when): recorded
    # together, within ``settings.record_within`` of the first (``_record``).
    unrecorded: list[tuple[int, str, datetime]] = field(default_factory=list)

    def _plan_ahead(self) -> None:
        """Hand the rows that can be prepared ahead to the preparing thread, in chunks.

        A referral row is prepared ahead unless an earlier row of the batch is of the same
        referral: what it sends depends on whether that row reached central. The chunks are of
        2, then 4 rows (``_AHEAD_CHUNK``), so the second row is ready soon.
        """
        ids = self.lease.ids
        seen = {self.referrals.get(ids[0])} if ids else set()
        eligible: list[int] = []
        for row_id in ids[1:]:
            referral = self.referrals.get(row_id)
            if referral is not None and referral not in seen:
                eligible.append(row_id)
            seen.add(referral)
        start, size = 0, 2
        while start < len(eligible):
            if not self._submit(eligible[start:start + size]):
                return
            start, size = start + size, min(size * 2, _AHEAD_CHUNK)

    def _submit(self, chunk: list[int]) -> bool:
        """Hand a chunk of rows to the preparer; say whether it took them."""
        try:
            task = self.preparer.submit(self.transaction, self.settings, chunk, self.now,
                                        self.keys)
        except Exception as exc:  # noqa: BLE001 - e.g. the preparing process died
            log.warning("preparing rows ahead failed (%s); they are built as they go",
                        type(exc).__name__)
            return False
        self.ahead.update(dict.fromkeys(chunk, task))
        self.chunks.append((chunk, task))
        return True

    def _prepared(self, row_id: int) -> Prepared | Outcome:
        """Return the row's prepared bundle: the one built ahead, if still current, or one
        built now."""
        self._wait(row_id)
        task = self.ahead.pop(row_id, None)
        version, self.ahead_version = self.ahead_version, None
        if task is not None:
            try:
                ready = task.result().get(row_id)
            except Exception as exc:  # noqa: BLE001 - built here instead, as it stands now
                log.warning("outbox row %s: preparing it ahead failed (%s)", row_id,
                            type(exc).__name__)
                ready = None
            if isinstance(ready, Prepared) and ready.version is not None \
                    and ready.version == version:
                return ready
        return prepare(self.transaction, self.settings, row_id, self.now, self.keys)

    def _wait(self, row_id: int) -> None:
        """Until the row's chunk is ready, prepare here what the preparer has not started.

        The preparing process alone would read, build and validate every row, about twice the
        work of sending and recording it, so the worker would spend most of a batch waiting
        for it. Instead, while the row is not ready, the worker takes the last chunk the
        preparer has not started (cancelled there, so each row is prepared once) and
        prepares it itself as ``prepare_many`` does in the child. The
        rows still go in claim order, and a row prepared here is checked against its
        referral's version before it goes, as one from the child.
        """
        while row_id in self.ahead and not self.ahead[row_id].done() and self.chunks:
            rows, last = self.chunks.pop()
            if not last.cancel():
                return  # started or done, and so is every chunk before it: wait for it
            mine: Future[dict[int, Prepared | Outcome]] = Future()
            try:
                mine.set_result(prepare_many(self.transaction, self.settings, rows, self.now,
                                             self.keys))
            except Exception as exc:  # noqa: BLE001 - the rows are built as they go instead
                mine.set_exception(exc)
            for taken in rows:
                if taken in self.ahead:
                    self.ahead[taken] = mine

    def drain(self) -> None:
        """Send, and record, every row of the batch still this worker's, until one stops it."""
        self._plan_ahead()
        try:
            while self.lease.ids:
                row_id = self.lease.ids[0]
                self.progress.handled += 1
                prepared = self._prepared(row_id)
                started = self.now()
                (outcome, error), wait = ((prepared, None) if isinstance(prepared, tuple)
                                          else send_row(self.lease.guard(self.sender),
                                                        self.settings, row_id, prepared))
                if self._record(row_id, outcome, error, started, wait):
                    break
        finally:
            for task in set(self.ahead.values()):
                task.cancel()  # what was not prepared yet is not (the rows go back)
            if self.unrecorded:  # a stop records them; anything else that ended the batch
                with self.transaction() as session:
                    self._write_unrecorded(session)

    def _may_wait(self, rest: list[int], started: datetime, moment: datetime) -> bool:
        """Tell whether the rows central took may wait for a later commit (``record_within``).

        Only while central answers within the window (a slow central finds each row recorded
        before the next goes, as issue 16 asks), and not the first row central takes in a
        cycle (it makes the rows waiting on central due again), not a batch's last row, not
        once the first unrecorded row is older than the window or the lease needs renewing,
        and not when the next row is of a referral with a row unrecorded: building it reads
        whether that row reached central.
        """
        window = self.settings.record_within
        first = self.unrecorded[0][2]
        waiting = {self.referrals.get(row_id) for row_id, _, _ in self.unrecorded} - {None}
        return bool(
            rest and self.progress.revived
            and (moment - started).total_seconds() < window
            and (moment - first).total_seconds() < window
            and self.lease.until - moment >= self.settings.renew_before
            and self.referrals.get(rest[0]) not in waiting)

    def _write_unrecorded(self, session: Session) -> None:
        """Record the rows central took and whose outcome is not committed yet."""
        for row_id, outcome, moment in self.unrecorded:
            # A row another worker took over meanwhile is not recorded (``_done`` checks).
            _done(session, row_id, self.settings, moment, outcome, self.report)
            if outcome == "sent" and not self.progress.revived:
                self.progress.revived = True
                self.report.revived += revive(session, self.settings, moment, self.rng)
        self.unrecorded.clear()
        self.lease.done = []

    def _read_version(self, session: Session) -> None:
        """Read the referral's version of the next row when it was prepared ahead."""
        following = self.lease.ids[0] if self.lease.ids else None
        if following in self.ahead:
            self.ahead_version = session.scalar(_VERSION, {
                "referral": self.referrals.get(following)})

    def _record(self, row_id: int, outcome: str, error: str | None,
                started: datetime, wait: float | None = None) -> bool:
        """Record one row's outcome (renewing the rest's lease); say whether to stop."""
        rest = self.lease.ids[1:]  # a renewal while sending drops rows another worker took
        moment = self.now()
        if outcome in ("sent", "withheld"):
            self.unrecorded.append((row_id, outcome, moment))
            if self._may_wait(rest, started, moment):
                # Its commit waits for the next rows' (``record_within``); the crisis check
                # and the next row's version are read as for any row. The lease renewed
                # before a request covers the row until it is recorded.
                with self.transaction(write=False) as session:
                    if self.crisis_batch or not crisis_ahead(session, self.settings, moment):
                        self.lease.ids = rest
                        self.lease.done = [r for r, _, _ in self.unrecorded]
                        self._read_version(session)
                        return False
        with self.transaction() as session:
            moment = self.now()
            self._write_unrecorded(session)
            if outcome not in ("sent", "withheld"):
                _finish(session, row_id, self.settings, moment, outcome, error, self.report,
                        self.rng, wait)
            stop = outcome == "unavailable" or bool(
                # A crisis became due (central answered, or a kiosk queued one): it goes
                # before the rest of this batch, whatever was prepared of it.
                rest and not self.crisis_batch
                and crisis_ahead(session, self.settings, moment))
            if stop:
                release(session, self.settings, rest)
            else:
                self.lease.keep(session, rest, moment)
                self._read_version(session)
        if outcome == "unavailable":
            self.report.central_unavailable = True
            self.progress.failed_row = row_id
        return stop
