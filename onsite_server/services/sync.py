"""The sync worker: claims outbox rows, forwards them to central as FHIR, records the outcome.

Each cycle first does the housekeeping (no-shows, stuck-outbox alerts), then drains what is
due. A row is claimed in its own short transaction: status ``sending`` with this worker's id
and a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the claim runs under the
write lock), so several workers never send one row at the same time, and a worker that dies
only delays its rows until the lease runs out. The lease is sized from the longest a request
to central may take and renewed before a request that could outlast it; each row's outcome
is recorded the moment it is known, so a slow central never makes one worker take over rows
another is still sending. The bundle is built from the database as it stands when sent, and
every entry is idempotent at central (conditional create, or a merge into central's copy), so
sending a row twice (a lost reply) changes nothing there. No transaction is held open while
waiting for central.

Order: crisis rows (priority 0) go before any other row. While a crisis row is due, waits on
central (its last try found central unavailable) or is being sent by another worker, no other
row is claimed, so after an outage every crisis reaches central before anything else. A crisis
retries on a short backoff (2 s doubling, capped at 30 s), which paces the tries while central
is away.

Consent decides what a referral row sends (``fhir.sharing``, docs/privacy.md): a row with
nothing it may send is recorded ``withheld``. The ServiceRequest and Task are central's work
as much as ours: once central holds them, the worker reads them, merges onsite's elements in
(``fhir.ownership``) and writes them back with ``If-Match``; on a 412 (an advocate changed one
in between) it reads again and retries, a few times, then leaves the row for a later cycle.

Failures: 400, 409, 412 (other than a lost If-Match race) and 422 (and a bundle that does not
validate) go to the dead-letter list (status ``dead``) with an alert, at once for a crisis row.
No answer, 5xx, 429 or 401 is central's trouble: the row waits on central with exponential
backoff and full jitter, the cycle stops there (the rest of the batch goes back untried), and
the first request central answers in a cycle (the directory pull before it, or a row) makes
every row waiting on it due again, spread over a few seconds, so a backlog drains at the
workers' pace rather than its retry timers'. Any other failure is the row's own and keeps its
timer. An alert is raised when a row has waited an hour.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from shared.backoff import full_jitter

from ..fhir import (
    SHARE_ALL,
    AppointmentFacts,
    Entries,
    FhirInvalid,
    Held,
    MemberFacts,
    MessageFacts,
    Owned,
    ReferralFacts,
    SubmissionFacts,
    Systems,
    add_keys,
    appointment,
    booking_entries,
    referral_entries,
    sharing,
    validate,
)
from ..models import (
    ACTIVE_BOOKING_STATUSES,
    Alert,
    Booking,
    Member,
    OutboxMessage,
    Referral,
    Submission,
    as_utc,
    utcnow,
)
from .bookings import expire_waitlist, mark_no_shows, send_reminders
from .central_keys import snapshot
from .retention import purge_claims, purge_expired, purge_history
from .scope import outbox_site
from .signing import KeyStore

log = logging.getLogger("onsite_server.sync")


class Sender(Protocol):
    """What the worker needs of the central client (a fake in tests)."""

    def transaction(self, bundle: Any) -> Any:
        """POST a transaction Bundle."""

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        """Run a FHIR search (the shared resources are read back before they are merged)."""


@dataclass(frozen=True)
class SyncSettings:
    """How the worker identifies things at central and paces its retries."""

    systems: Systems
    site: str
    keys: KeyStore
    worker_id: str
    ticket_grace: timedelta = timedelta(days=1)
    retention_days: int = 90
    batch: int = 20
    backoff_base: float = 5.0
    backoff_cap: float = 600.0
    # A crisis row retries soon and often: after an outage it must not sit out a long timer.
    crisis_backoff_base: float = 2.0
    crisis_backoff_cap: float = 30.0
    # Rows made due again when central answers are spread over this many seconds.
    revive_jitter: float = 5.0
    # The longest one request to central can take (the client's connect + read timeouts):
    # the lease is sized and renewed from it.
    request_timeout: float = 35.0
    # A crisis row waiting on central holds every other row back for at most this long (a
    # crisis central keeps refusing with 5xx must not stop the bookings for good).
    crisis_hold: timedelta = timedelta(minutes=15)
    stuck_after: timedelta = timedelta(hours=1)
    reminder_lead: timedelta = timedelta(hours=24)
    merge_tries: int = 3  # read, merge, write rounds for one row when central keeps changing

    @property
    def lease(self) -> timedelta:
        """How long a claim lasts: two requests' worth, renewed while the worker still sends."""
        return timedelta(seconds=2 * self.request_timeout + 10)

    @property
    def renew_before(self) -> timedelta:
        """Renew a lease before a request when less than one request's worth of it is left."""
        return timedelta(seconds=self.request_timeout + 5)


@dataclass
class SyncReport:
    """What one cycle did."""

    sent: int = 0
    withheld: int = 0
    retried: int = 0
    dead: int = 0
    no_shows: int = 0
    waitlist_expired: int = 0
    reminders: int = 0
    purged: int = 0
    revived: int = 0
    alerts: list[str] = field(default_factory=list)
    # Central did not answer (or answered 5xx/429): the cycle stopped there.
    central_unavailable: bool = False
    # When the worker has something to do again (None: nothing pending); the loop wakes then.
    next_due: datetime | None = None


_CRISIS = 0  # OutboxMessage.priority of a crisis row (services.referrals.OUTBOX_PRIORITY)
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


def crisis_ahead(session: Session, settings: SyncSettings, now: datetime) -> bool:
    """Tell whether a crisis row must reach central before any other row is sent.

    A crisis row is ahead while it is due, while it waits on central (its last try found
    central unavailable; for at most ``crisis_hold`` after it was queued), or while another
    worker sends it under a live lease. Its own short backoff then paces the tries, and the
    first request central answers is a crisis.
    """
    hold_since = now - settings.crisis_hold
    ahead = (OutboxMessage.priority == _CRISIS) & (
        ((OutboxMessage.status == "pending")
         & ((OutboxMessage.next_attempt_at <= now)
            | (OutboxMessage.waiting_on_central & (OutboxMessage.created_at > hold_since))))
        | ((OutboxMessage.status == "sending") & (OutboxMessage.lease_until >= now)
           & (OutboxMessage.claimed_by != settings.worker_id)))
    return session.scalars(select(OutboxMessage.id).where(ahead).limit(1)).first() is not None


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


def _facts(session: Session, row: OutboxMessage, site: str | None = None
           ) -> tuple[MemberFacts, ReferralFacts, list[SubmissionFacts]]:
    referral = session.get(Referral, row.referral_id) if row.referral_id else None
    if referral is None:
        raise FhirInvalid(f"outbox row {row.key}: its referral is gone")
    member = session.get(Member, referral.member_id)
    assert member is not None  # a referral's member is a foreign key
    proposal = referral.proposal or {}
    facts = ReferralFacts(
        public_id=referral.public_id, version=referral.version, status=referral.status,
        priority=referral.priority, programs=tuple(referral.programs or ()),
        reasons=tuple(proposal.get("reasons", [])),
        crisis_triggers=tuple(g.get("trigger", "") for g in proposal.get("crisis", [])),
        consent=referral.consent, contact_method=referral.contact_method,
        contact_time=referral.contact_time,
        advocate_id=member.advocate.public_id if member.advocate else None,
        authored_at=referral.created_at, site=site,
        contact_phone=referral.contact_phone or member.phone,
        contact_email=referral.contact_email or member.email,
        forwarded=session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.referral_id == referral.id,
            OutboxMessage.status == "sent")).first() is not None)
    subs = [SubmissionFacts(key=s.idempotency_key, instrument_id=s.instrument_id,
                            version=s.instrument_version, answers=dict(s.answers),
                            skipped=tuple(s.skipped or ()), result=s.result,
                            taken_at=s.taken_at, devices=tuple(s.devices or ()))
            for s in session.scalars(select(Submission).where(
                Submission.referral_id == referral.id).order_by(Submission.taken_at,
                                                                Submission.id))]
    return MemberFacts(member_id=member.member_id, public_id=member.public_id), facts, subs


def _appointment_facts(booking: Booking) -> AppointmentFacts:
    return AppointmentFacts(
        public_id=booking.public_id, status=booking.status, start=booking.slot.start_at,
        end=booking.slot.end_at, event_title=booking.event.title, event_kind=booking.event.kind,
        location=booking.event.location, created_at=booking.created_at)


def _booking_entries(session: Session, row: OutboxMessage, settings: SyncSettings) -> Entries:
    booking = session.get(Booking, row.booking_id) if row.booking_id else None
    if booking is None:
        raise FhirInvalid(f"outbox row {row.key}: its booking is gone")
    member = MemberFacts(member_id=booking.member.member_id,
                         public_id=booking.member.public_id)
    message = None
    if row.kind == "message":
        payload = row.payload
        message = MessageFacts(key=row.key, kind=str(payload["kind"]),
                               language=str(payload["language"]),
                               category=str(payload["category"]), topic=str(payload["topic"]),
                               text=str(payload["text"]))
    return booking_entries(member, _appointment_facts(booking), message, settings.systems)


def _referral_entries(session: Session, row: OutboxMessage, settings: SyncSettings) -> Entries:
    member, referral, submissions = _facts(session, row, settings.site)
    entries = referral_entries(member, referral, submissions, settings.systems)
    if sharing(referral) != SHARE_ALL:
        return entries  # only what consent allows, not the member's bookings
    first = entries.items[0]  # the Patient comes first
    subject = first.full_url if isinstance(first, Owned) else first["fullUrl"]
    member_id = session.scalars(select(Referral.member_id).where(
        Referral.id == row.referral_id)).one()
    # The member's current bookings travel with the referral, so the advocate sees them.
    for booking in session.scalars(select(Booking).where(
            Booking.member_id == member_id,
            Booking.status.in_(ACTIVE_BOOKING_STATUSES)).order_by(Booking.id)):
        entries.update(appointment(_appointment_facts(booking), subject, settings.systems),
                       settings.systems("booking"), booking.public_id)
    return entries


KeySnapshot = tuple[dict[str, Any], list[str]]


def key_snapshot(session: Session, settings: SyncSettings, now: datetime) -> KeySnapshot:
    """Return the site's public keys (JWKS, with statuses and retirements) and the revoked
    token ids, as sent with a bundle."""
    return snapshot(session, settings.keys, settings.ticket_grace, now)


def build_entries(session: Session, row: OutboxMessage, settings: SyncSettings) -> Entries:
    """Return the entries one outbox row sends, as the data stands now (keys not included)."""
    if row.kind in ("booking", "message"):
        return _booking_entries(session, row, settings)
    return _referral_entries(session, row, settings)


def with_keys(bundle: dict[str, Any], settings: SyncSettings, keys: KeySnapshot) -> None:
    """Add the site's public keys and revoked token ids to a Bundle (they go with each one)."""
    extra = Entries()
    add_keys(extra, settings.site, *keys)
    bundle["entry"].extend(extra.bundle()["entry"])


def build_bundle(session: Session, row: OutboxMessage, settings: SyncSettings,
                 now: datetime, *, check: bool = True, keys: KeySnapshot | None = None,
                 held: Held | None = None) -> dict[str, Any]:
    """Build and validate the transaction Bundle for one outbox row, as the data stands now.

    ``held`` is central's copy of the shared resources (none: they are created). An empty
    Bundle (no entries) means consent lets the row send nothing. ``check=False`` skips the
    validation, for the benchmark that times it on its own; ``keys`` is a ``key_snapshot``
    taken once for many rows (it costs two queries and a read of the key files).
    """
    bundle = build_entries(session, row, settings).bundle(held)
    if bundle["entry"]:
        with_keys(bundle, settings, keys if keys is not None else
                  key_snapshot(session, settings, now))
    if check:
        validate(bundle)
    return bundle


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
        lease = _Lease(transaction, settings, ids, claimed_at + settings.lease, now)
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
                    rest and min(_priorities(session, rest)) != _CRISIS
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


def _priorities(session: Session, ids: list[int]) -> list[int]:
    return list(session.scalars(select(OutboxMessage.priority).where(
        OutboxMessage.id.in_(ids))))


class LeaseLost(Exception):
    """Another worker took the row over (our lease ran out): this worker must not send it."""


class _Lease:
    """This worker's claim on the rest of its batch, renewed before a request needs it."""

    def __init__(self, transaction: Callable[..., Any], settings: SyncSettings,
                 ids: list[int], until: datetime, now: Callable[[], datetime]) -> None:
        self.transaction = transaction
        self.settings = settings
        self.ids = ids
        self.until = until
        self.now = now

    def keep(self, session: Session, rest: list[int], moment: datetime) -> None:
        """Carry on with rest, renewing its lease in the caller's transaction if it runs short.

        Rows another worker took over meanwhile (this one stalled past its lease) are dropped
        from the batch: that worker sends them.
        """
        self.ids = rest
        if rest and self.until - moment < self.settings.renew_before:
            self.ids = renew(session, self.settings, rest, moment)
            self.until = moment + self.settings.lease

    def before_request(self) -> None:
        """Make sure the lease outlasts the next request; LeaseLost if the row is gone."""
        moment = self.now()
        if self.until - moment >= self.settings.renew_before:
            return
        with self.transaction() as session:
            kept = renew(session, self.settings, self.ids, moment)
        self.until = moment + self.settings.lease
        current, self.ids = self.ids[0], kept
        if current not in kept:  # another worker sends it now
            self.ids = [current, *kept]  # the loop moves past it as for any row
            raise LeaseLost(f"outbox row {current} was taken over")

    def guard(self, sender: Sender) -> Sender:
        """Wrap the sender so every request to central first checks the lease."""
        return _LeasedSender(sender, self)


class _LeasedSender:
    def __init__(self, sender: Sender, lease: _Lease) -> None:
        self.sender = sender
        self.lease = lease

    def transaction(self, bundle: Any) -> Any:
        self.lease.before_request()
        return self.sender.transaction(bundle)

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        self.lease.before_request()
        return self.sender.search(resource_type, params)


def _read_held(sender: Sender, entries: Entries) -> dict[str, dict[str, Any]]:
    """Read central's copies of a row's shared resources (with their versions)."""
    held: dict[str, dict[str, Any]] = {}
    for item in entries.owned:
        found = sender.search(item.kind, {"identifier": f"{item.system}|{item.value}"})
        if found:
            held[item.full_url] = found[0]
    return held


def _forward(transaction: Callable[..., Any], sender: Sender, settings: SyncSettings,
             row_id: int, now: Callable[[], datetime],
             keys: KeySnapshot | None = None) -> tuple[str, str | None]:
    """Build and send one row; return its outcome and the error.

    Outcomes: "sent", "withheld", "dead", "gone" (the row was deleted), "lost" (another worker
    took it over), "unavailable" (central did not answer, or answered 5xx/429/401) and
    "retry" (a failure of this row's own).

    Shared resources are created the first time; once central may hold them (a version was
    sent before, or a create found one) they are read, merged and written with If-Match, and
    a lost race (412, or a create that found one) reads again, ``merge_tries`` times at most.
    """
    try:
        with transaction(write=False) as session:
            row = session.get(OutboxMessage, row_id)
            if row is None:
                return "gone", None
            entries = build_entries(session, row, settings)
            read_first = row.kind == "referral" and session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.referral_id == row.referral_id,
                                               OutboxMessage.status == "sent")).first() is not None
            if keys is None:
                keys = key_snapshot(session, settings, now())
    except FhirInvalid as exc:
        return "dead", f"invalid FHIR: {exc}"
    if not entries.items:
        return "withheld", None
    read_first = read_first or any(not item.create for item in entries.owned)
    error = "central kept changing the referral while it was merged"
    try:
        held = _read_held(sender, entries) if read_first and entries.owned else {}
        for _ in range(max(1, settings.merge_tries)):
            bundle = entries.bundle(held)
            if not bundle["entry"]:
                return "withheld", None  # nothing of it at central to withdraw
            with_keys(bundle, settings, keys)
            try:
                validate(bundle)
            except FhirInvalid as exc:
                return "dead", f"invalid FHIR: {exc}"
            try:
                answer = sender.transaction(bundle)
            except Exception as exc:
                if getattr(exc, "status", None) == 412 and any(
                        "ifMatch" in e["request"] for e in bundle["entry"]):
                    held = _read_held(sender, entries)  # an advocate was quicker: merge again
                    continue
                raise
            if not entries.created_instead(bundle, answer):
                return "sent", None
            held = _read_held(sender, entries)  # created meanwhile: merge ours into it
    except LeaseLost:
        return "lost", None  # the worker that took it over sends it and records it
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
        retryable = bool(getattr(exc, "retryable", True))
        status = getattr(exc, "status", None)
        log.warning("outbox row %s: %s (%s)", row_id, type(exc).__name__,
                    status if status is not None else "no answer")
        if not retryable:
            return "dead", str(exc)[:500]
        # A request central did not answer, or answered 5xx or 429 (the client's errors carry
        # ``retryable``): central's trouble, not the row's. Anything else is the row's.
        central = hasattr(exc, "retryable") and (status is None or status >= 500
                                                 or status in (401, 429))
        return ("unavailable" if central else "retry"), str(exc)[:500]
    return "retry", error


def pending_summary(session: Session) -> dict[str, int]:
    """Count outbox rows per status (for the dashboard and the CLI)."""
    from sqlalchemy import func

    rows = session.execute(select(OutboxMessage.status, func.count())
                           .group_by(OutboxMessage.status)).tuples().all()
    return {status: int(n) for status, n in rows}



# Task status at central -> our referral status; our statuses only ever move forward.
FROM_TASK: dict[str, str] = {
    "requested": "sent", "received": "acknowledged", "accepted": "acknowledged",
    "ready": "acknowledged", "in-progress": "contacted", "on-hold": "contacted",
    "completed": "closed", "cancelled": "closed", "failed": "closed",
}
_ORDER = ("new", "sent", "acknowledged", "contacted", "closed")


def merge_status(ours: str, theirs: str) -> str:
    """Return the further of two referral statuses: a status never moves back."""
    return max(ours, theirs, key=_ORDER.index)


class Searcher(Protocol):
    """What the status pull needs of the central client."""

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        """Run a FHIR search."""


def pull_statuses(transaction: Callable[[], Any], client: Searcher, settings: SyncSettings,
                  *, chunk: int = 50) -> int:
    """Read the Tasks of forwarded referrals back from central; return how many moved.

    One search per chunk of referrals (``identifier=system|a,system|b``), so a site with many
    open referrals costs a few requests per cycle.
    """
    system = settings.systems("referral-task")
    with transaction() as session:
        open_ids = list(session.scalars(select(Referral.public_id).where(
            Referral.status.in_(("sent", "acknowledged", "contacted")))))
    moved = 0
    for start in range(0, len(open_ids), chunk):
        part = open_ids[start:start + chunk]
        tasks = client.search("Task", {"identifier": ",".join(f"{system}|{p}" for p in part),
                                       "_count": str(len(part))})
        found: dict[str, str] = {}
        for resource in tasks:
            for ident in resource.get("identifier", []):
                if ident.get("system") == system and resource.get("status") in FROM_TASK:
                    found[str(ident.get("value"))] = FROM_TASK[str(resource["status"])]
        if not found:
            continue
        with transaction() as session:
            for referral in session.scalars(select(Referral).where(
                    Referral.public_id.in_(list(found)))):
                merged = merge_status(referral.status, found[referral.public_id])
                if merged != referral.status:
                    log.info("referral %s: %s -> %s (from central)", referral.public_id,
                             referral.status, merged)
                    referral.status = merged
                    moved += 1
    return moved
