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
waiting for central. One request is in flight at a time; the next referral row's bundle is
built and validated on a second thread while a row is sent and recorded (``cycle._Batch``),
and built again if its referral changed before it goes.

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

from .bundles import KeySnapshot, build_bundle, build_entries, key_snapshot, with_keys
from .cycle import housekeeping, run_cycle
from .forward import forward_row
from .lease import Lease, LeaseLost
from .queue import claim, crisis_ahead, next_due, pending_summary, release, renew, revive
from .settings import CRISIS, Sender, SyncReport, SyncSettings
from .statuses import FROM_TASK, Searcher, merge_status, pull_statuses

__all__ = [
    "CRISIS", "FROM_TASK", "KeySnapshot", "Lease", "LeaseLost", "Searcher", "Sender",
    "SyncReport", "SyncSettings", "build_bundle", "build_entries", "claim", "crisis_ahead",
    "forward_row", "housekeeping", "key_snapshot", "merge_status", "next_due",
    "pending_summary", "pull_statuses", "release", "renew", "revive", "run_cycle",
    "with_keys",
]
