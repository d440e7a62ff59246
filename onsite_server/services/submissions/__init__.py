"""Kiosk submissions: validate, re-score, store and triage each item on its own.

A batch runs in phases: a generous crisis reading and the validation and scoring of every
entry (no database), the reads that need no write lock (member references, on the request's
read session), then the writes. Each item's writes are undone on their own when they fail, so
one failure never rolls back the others: the first item to write runs directly in the
transaction (nothing earlier could be lost by rolling it back), every later one in its own
SAVEPOINT. The Submission INSERT (unique idempotency key) is the item's last statement: when a
replay races the first request, that INSERT fails, the item's referral and alert changes are
undone with it, and the item is answered with the stored first answer. Identified items also
lock the member row first (PostgreSQL), so one member's findings fold in one at a time.

A backlog (a batch of several kiosk sessions) writes its crises first, item by item, then its
ordinary items together in a few multi-row statements (``bulk``), falling back to the
item-by-item path for any that cannot go that way.

A crisis is never lost (DESIGN.md §3.6): whatever is wrong with an entry, its member
reference or its batch, a crisis its answers show (``shared.crisis``) is recorded as the
member's crisis referral when a reference to them verifies, otherwise as an anonymous alert
for staff on site; every answer says so in ``crisis`` and ``crisis_recorded``.
"""

from __future__ import annotations

from .batch import process_batch, readable_items
from .context import BatchContext, BatchSettings, Entry, ItemProblem, Prepared
from .item import prepare_item, store_item

__all__ = [
    "BatchContext",
    "BatchSettings",
    "Entry",
    "ItemProblem",
    "Prepared",
    "prepare_item",
    "process_batch",
    "readable_items",
    "store_item",
]
