"""What the sync worker is given and what a cycle reports: settings, the sender, the report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ...fhir import Systems
from ..signing import KeyStore

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
    # Rows central took share one commit for at most this many seconds after the first of
    # them (0: each its own commit). A row that fails, the first row central takes in a cycle
    # and a batch's last row are recorded at once; a request slower than this finds the row
    # before it recorded. A worker that dies loses at most this much of its records, and
    # sends those rows again, which central's conditional creates make harmless.
    record_within: float = 0.25

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
    # Central asked us to wait (Retry-After) until then, as far as our own cap allows: the
    # worker asks nothing of central before, beyond rows due by their own timers.
    hold_until: datetime | None = None


CRISIS = 0  # OutboxMessage.priority of a crisis row (services.referrals.OUTBOX_PRIORITY)
