"""One row to central: build, validate, send, and merge again when central moved."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...fhir import Entries, FhirInvalid, validate
from ...models import OutboxMessage
from .bundles import KeySnapshot, build_entries, key_snapshot, read_referral_rows, with_keys
from .lease import LeaseLost
from .settings import Sender, SyncSettings, log


def _read_held(sender: Sender, entries: Entries) -> dict[str, dict[str, Any]]:
    """Read central's copies of a row's shared resources (with their versions)."""
    held: dict[str, dict[str, Any]] = {}
    for item in entries.owned:
        found = sender.search(item.kind, {"identifier": f"{item.system}|{item.value}"})
        if found:
            held[item.full_url] = found[0]
    return held


Outcome = tuple[str, str | None]  # what happened to a row, and the error to record


@dataclass(frozen=True)
class Prepared:
    """What a row sends, read from the database: its entries, and whether to read first."""

    entries: Entries
    read_first: bool  # central may hold the shared resources: read, merge, write
    keys: KeySnapshot
    # The first bundle, built and validated, when it does not depend on central's copies
    # (nothing to read first); None: built when sent.
    bundle: dict[str, Any] | None = None
    # The referral's version it was built from (None: not a referral row): a row prepared
    # ahead is built again when the referral changed before it is sent.
    version: int | None = None


def prepare(transaction: Callable[..., Any], settings: SyncSettings, row_id: int,
            now: Callable[[], datetime], keys: KeySnapshot | None = None
            ) -> Prepared | Outcome:
    """Read what one row sends, in a read-only transaction; or the outcome when it sends
    nothing ("gone": the row was deleted; "dead": it cannot be made valid FHIR)."""
    return prepare_many(transaction, settings, [row_id], now, keys)[row_id]


def prepare_many(transaction: Callable[..., Any], settings: SyncSettings,
                 row_ids: Sequence[int], now: Callable[[], datetime],
                 keys: KeySnapshot | None = None) -> dict[int, Prepared | Outcome]:
    """Read what each row sends, in one read-only transaction (``prepare``, for many rows).

    Referral rows are read set-based (``read_referral_rows``: the same few statements for
    one row or fifty); booking and message rows one by one. Each first bundle is built and
    validated after the transaction.
    """
    read: dict[int, tuple[Entries, bool, int | None] | Outcome] = {}
    with transaction(write=False) as session:
        built = read_referral_rows(session, row_ids, settings)
        for row_id in row_ids:
            done = built.get(row_id)
            if isinstance(done, FhirInvalid):
                read[row_id] = "dead", f"invalid FHIR: {done}"
            elif done is not None:
                read[row_id] = done.entries, done.forwarded, done.version
            else:  # a booking or message row, or one that is gone
                row = session.get(OutboxMessage, row_id)
                try:
                    read[row_id] = ("gone", None) if row is None else (
                        build_entries(session, row, settings), False, None)
                except FhirInvalid as exc:
                    read[row_id] = "dead", f"invalid FHIR: {exc}"
        if keys is None and row_ids:
            keys = key_snapshot(session, settings, now())
    if keys is None:
        return {}  # no rows: a snapshot is taken above whenever there is one
    key_entries = _key_entries(settings, keys)
    return {row_id: found if isinstance(found[0], str) else _first_bundle(
                keys, key_entries, *found)
            for row_id, found in read.items()}


# The last snapshot's key entries, by what they were built from: the keys change seldom, and
# a worker (or its preparing child) prepares many chunks of rows with the same snapshot.
_KEYS_CHECKED: tuple[str, list[dict[str, Any]] | str] | None = None


def _key_entries(settings: SyncSettings, keys: KeySnapshot) -> list[dict[str, Any]] | str:
    """Return the site's key entries, the same in every bundle of a snapshot, built and
    validated once for many rows, and again only when the snapshot changes (or the error
    that makes every bundle invalid)."""
    global _KEYS_CHECKED
    source = json.dumps([settings.site, keys], sort_keys=True, default=str)
    # Read once: the worker and its preparing thread may replace it between two reads.
    checked = _KEYS_CHECKED
    if checked is not None and checked[0] == source:
        return checked[1]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    with_keys(bundle, settings, keys)
    try:
        validate(bundle)
        found: list[dict[str, Any]] | str = list(bundle["entry"])
    except FhirInvalid as exc:
        found = f"invalid FHIR: {exc}"
    _KEYS_CHECKED = source, found
    return found


def _first_bundle(keys: KeySnapshot, key_entries: list[dict[str, Any]] | str,
                  entries: Entries, read_first: bool, version: int | None
                  ) -> Prepared | Outcome:
    """Build and validate a row's first bundle, when it does not depend on central's copies.

    The row's own entries are validated here; the key entries at its end were validated once
    (``_key_entries``), and are shared, read-only, by the bundles of the snapshot.
    """
    read_first = read_first or any(not item.create for item in entries.owned)
    bundle = None if read_first or not entries.items else entries.bundle({})
    if bundle is not None and bundle["entry"]:
        if isinstance(key_entries, str):
            return "dead", key_entries
        try:
            validate(bundle)
        except FhirInvalid as exc:
            return "dead", f"invalid FHIR: {exc}"
        bundle["entry"].extend(key_entries)
    return Prepared(entries, read_first, keys,
                    bundle if bundle is not None and bundle["entry"] else None, version)


def _lost_race(exc: Exception, bundle: dict[str, Any]) -> bool:
    """Say whether a refusal is a lost If-Match race (an advocate wrote in between)."""
    return getattr(exc, "status", None) == 412 and any(
        "ifMatch" in e["request"] for e in bundle["entry"])


def _merge_rounds(sender: Sender, settings: SyncSettings, prepared: Prepared) -> Outcome:
    """Send a row's bundle, reading and merging again after each lost race.

    A failure to reach central propagates (``failure`` classifies it).
    """
    entries = prepared.entries
    held = _read_held(sender, entries) if prepared.read_first and entries.owned else {}
    ready = prepared.bundle  # built and validated already (nothing was read first)
    for _ in range(max(1, settings.merge_tries)):
        bundle = ready if ready is not None else entries.bundle(held)
        ready = None
        if not bundle["entry"]:
            return "withheld", None  # nothing of it at central to withdraw
        if bundle is not prepared.bundle:
            with_keys(bundle, settings, prepared.keys)
            try:
                validate(bundle)
            except FhirInvalid as exc:
                return "dead", f"invalid FHIR: {exc}"
        try:
            answer = sender.transaction(bundle)
        except Exception as exc:
            if _lost_race(exc, bundle):
                held = _read_held(sender, entries)  # an advocate was quicker: merge again
                continue
            raise
        if not entries.created_instead(bundle, answer):
            return "sent", None
        held = _read_held(sender, entries)  # created meanwhile: merge ours into it
    return "retry", "central kept changing the referral while it was merged"


def failure(row_id: int, exc: Exception) -> Outcome:
    """Classify a failed request: "dead" (refused for good), "unavailable" or "retry"."""
    retryable = bool(getattr(exc, "retryable", True))
    status = getattr(exc, "status", None)
    log.warning("outbox row %s: %s (%s)", row_id, type(exc).__name__,
                status if status is not None else "no answer")
    if not retryable:
        return "dead", str(exc)[:500]
    # A request central did not answer, or answered 5xx, 429, 401 or a redirect not followed
    # (the client's errors carry ``retryable``): central's trouble, not the row's. Anything
    # else is the row's.
    central = hasattr(exc, "retryable") and (status is None or status >= 500
                                             or status in (401, 429) or 300 <= status < 400)
    return ("unavailable" if central else "retry"), str(exc)[:500]


def send(sender: Sender, settings: SyncSettings, row_id: int, prepared: Prepared) -> Outcome:
    """Send a prepared row to central; return its outcome and the error."""
    return send_row(sender, settings, row_id, prepared)[0]


def send_row(sender: Sender, settings: SyncSettings, row_id: int, prepared: Prepared
             ) -> tuple[Outcome, float | None]:
    """Send a prepared row to central; return its outcome and the error, and the seconds
    central asked us to wait before the next try (its Retry-After; None: it did not say)."""
    if not prepared.entries.items:
        return ("withheld", None), None
    try:
        return _merge_rounds(sender, settings, prepared), None
    except LeaseLost:
        return ("lost", None), None  # the worker that took it over sends and records it
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
        wait = getattr(exc, "retry_after", None)
        return failure(row_id, exc), wait if isinstance(wait, (int, float)) else None


def forward_row(transaction: Callable[..., Any], sender: Sender, settings: SyncSettings,
                row_id: int, now: Callable[[], datetime],
                keys: KeySnapshot | None = None) -> Outcome:
    """Build and send one row; return its outcome and the error.

    Outcomes: "sent", "withheld", "dead", "gone" (the row was deleted), "lost" (another worker
    took it over), "unavailable" (central did not answer, or answered 5xx/429/401) and
    "retry" (a failure of this row's own).

    Shared resources are created the first time; once central may hold them (a version was
    sent before, or a create found one) they are read, merged and written with If-Match, and
    a lost race (412, or a create that found one) reads again, ``merge_tries`` times at most.
    """
    prepared = prepare(transaction, settings, row_id, now, keys)
    if isinstance(prepared, tuple):
        return prepared
    return send(sender, settings, row_id, prepared)
