"""A batch in phases: checks and scoring, member references, writes; crises settled last."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from sqlalchemy.orm import Session

from shared.crisis import triggers_in_raw

from ...jsonguard import REPEATED, readings, repeated_paths
from ...models import Kiosk, Site
from ..crisis.record import record_refused, settle
from ..instruments import sync_windows, was_offered
from ..members import lock_member
from .bulk import bulk_candidates, is_backlog, store_bulk
from .context import (
    BatchContext,
    BatchSettings,
    Entry,
    ItemProblem,
    _raw_key,
    _rejected,
)
from .identity import _crisis_member, _member, match_offline_first
from .item import prepare_item, store_item


def process_batch(
    session_factory: Callable[[], Session], kiosk: Kiosk, items: Sequence[object], *,
    settings: BatchSettings, read_session_factory: Callable[[], Session] | None = None,
    refuse: str | None = None, shared_transaction: bool = False, text_checked: bool = False,
    keys_repeated: bool = False,
) -> list[dict[str, Any]]:
    """Answer every entry of a batch, in order: {key, status, result | problem, crisis...}.

    Validation and scoring of every item (pure work) run first, then the member references
    are resolved on ``read_session_factory`` (default: the write session), and the writes
    come last, so SQLite's write lock is held only for them. The batch must be the request's
    only writer: its first item may write without a SAVEPOINT (see the module docstring).
    ``refuse`` refuses every entry with that reason (an invalid envelope) while still
    recording the crises they show. ``shared_transaction`` says the caller's transaction
    already holds other work (demo data, a CLI), so every item gets its own SAVEPOINT.
    ``text_checked`` says the body's text holds no control character (no item is walked for
    one; ``shared.schemas.common.may_hold_control_characters``). ``keys_repeated`` says an
    object of the body named a key twice (``jsonguard.loads``): such an entry is refused naming
    the key, and its crisis is read from every value sent. ``kiosk`` is only read.
    """
    ctx = BatchContext(session_factory=session_factory,
                       read_session_factory=read_session_factory or session_factory,
                       kiosk=kiosk, settings=settings, wrote=shared_transaction)
    entries = [Entry(index, raw, triggers_in_raw(raw)) for index, raw in enumerate(items)]
    repeated = _repeated_keys(entries) if keys_repeated else {}
    for entry in entries:
        # The key as sent is read only for a refusal (an accepted item's is validated).
        if entry.index in repeated:
            entry.answer = _rejected(_raw_key(entry.raw), repeated[entry.index])
        elif refuse is not None:
            entry.answer = _rejected(_raw_key(entry.raw), [{
                "field": f"items.{entry.index}", "message": f"was not read: {refuse}"}])
        elif entry.index >= settings.max_batch:
            entry.answer = _rejected(_raw_key(entry.raw), [{
                "field": f"items.{entry.index}",
                "message": f"is beyond this server's limit of {settings.max_batch} items per "
                           "request; send it again in a later request"}])
        elif not isinstance(entry.raw, dict):
            entry.answer = _rejected(None, [{"field": f"items.{entry.index}",
                                             "message": "must be a JSON object"}])
        else:
            prepared = prepare_item(kiosk, entry.index, entry.raw, text_checked=text_checked)
            if isinstance(prepared, dict):
                entry.answer = prepared
            else:
                entry.prepared = prepared
    match_offline_first(ctx, entries)
    for entry in entries:
        p = entry.prepared
        if p is not None and p.problem is None:
            try:
                p.member, p.late = _member(ctx, p.item)
            except ItemProblem as exc:
                p.problem = exc
        if entry.triggers:
            entry.crisis_member = _crisis_member(ctx, entry)
    _check_offered(ctx, entries)
    _lock_members_in_order(ctx, entries)
    candidates = bulk_candidates(entries)
    if refuse is None and is_backlog(candidates):
        return _store_backlog(ctx, entries, candidates)
    answers = []
    for entry in entries:
        answer = entry.answer
        if answer is None:
            assert entry.prepared is not None
            answer = store_item(ctx, entry.prepared)
        answers.append(_settle_crisis(ctx, entry, answer))
    return answers


# Readings of one entry that names keys twice, at most: far more than an item's answers hold.
MAX_READINGS = 256


def _repeated_keys(entries: Sequence[Entry]) -> dict[int, list[dict[str, str]]]:
    """The errors of each entry that names a key twice, by index; widen its crisis reading.

    Which value counts differs between readers (a proxy, a log, another parser), so the entry
    is refused; but a crisis in any of its values is one, and is recorded.
    """
    found: dict[int, list[dict[str, str]]] = {}
    for entry in entries:
        paths = list(repeated_paths(entry.raw, f"items.{entry.index}"))
        if not paths:
            continue
        found[entry.index] = [{"field": path, "message": REPEATED} for path in paths[:20]]
        # Bounded: each reading copies the objects above the key, and a hostile entry may
        # repeat keys in a long list.
        seen = dict.fromkeys(trigger for reading in islice(readings(entry.raw), MAX_READINGS)
                             for trigger in triggers_in_raw(reading))
        entry.triggers = tuple(seen)
    return found


def _store_backlog(ctx: BatchContext, entries: Sequence[Entry], candidates: Sequence[Entry]
                   ) -> list[dict[str, Any]]:
    """Answer a backlog batch: crises first, then the ordinary items set-based, then the rest.

    Every entry that shows a crisis is stored (or refused) and its crisis recorded before
    anything else of the batch is written, item by item, through the one crisis module. The
    candidates (``bulk.bulk_candidates``) are then written together; when that fails on a key
    a concurrent request took, and for every other entry (a refusal, a key repeated in the
    batch), each item is answered on its own as in any batch.
    """
    answers: dict[int, dict[str, Any]] = {}
    for entry in entries:
        if entry.triggers or (entry.prepared is not None and entry.prepared.crisis):
            answers[entry.index] = _settle_crisis(ctx, entry, _answer_alone(ctx, entry))
    answers.update(store_bulk(ctx, candidates) or {})
    for entry in entries:
        if entry.index not in answers:
            answers[entry.index] = _settle_crisis(ctx, entry, _answer_alone(ctx, entry))
    return [answers[entry.index] for entry in entries]


def _answer_alone(ctx: BatchContext, entry: Entry) -> dict[str, Any]:
    """Return the entry's answer from the item-by-item path (its refusal, when it has one)."""
    if entry.answer is not None:
        return entry.answer
    assert entry.prepared is not None
    return store_item(ctx, entry.prepared)


def readable_items(body: object) -> list[object]:
    """Return what can be read as items from a body whose envelope is invalid."""
    if isinstance(body, list):
        return list(body)
    if not isinstance(body, dict):
        return []
    items = body.get("items")
    if isinstance(items, list):
        return list(items)
    if isinstance(items, dict):
        return [items]
    # A bare item sent without its envelope.
    return [body] if "answers" in body else []


def _lock_members_in_order(ctx: BatchContext, entries: Sequence[Entry]) -> None:
    """Take the batch's member row locks in id order before any item writes (PostgreSQL).

    Each item locks its member as it goes; two batches naming the same members in opposite
    orders would otherwise deadlock. The locks count as written: an item failing later must
    roll back to its own SAVEPOINT, not the transaction, or the ordered locks would go with it
    and the rest of the batch would lock in item order again. SQLite needs none: its writer
    already holds the database.
    """
    ids: set[int] = set()
    for entry in entries:
        p = entry.prepared
        if p is not None and p.problem is None and p.member is not None:
            ids.add(p.member.id)
        if entry.crisis_member is not None:
            ids.add(entry.crisis_member.id)
    if len(ids) < 2 or ctx.read_session.get_bind().dialect.name == "sqlite":
        return
    for member_id in sorted(ids):
        lock_member(ctx.session, member_id)
    ctx.wrote = True


def _check_offered(ctx: BatchContext, entries: Sequence[Entry]) -> None:
    """Refuse items of an instrument the site did not offer when they were taken.

    The common case (offered now) needs no query. Otherwise the site's windows are brought up
    to date and searched: an instrument disabled after the item was taken is still accepted.
    """
    pending = [e.prepared for e in entries if e.prepared is not None
               and e.prepared.problem is None
               and e.prepared.item.instrument_id not in ctx.settings.offered]
    if not pending:
        return
    session = ctx.session
    site = session.get(Site, ctx.kiosk.site_id)
    assert site is not None  # a kiosk row always references its site (foreign key)
    sync_windows(session, site, ctx.settings.offered)
    ctx.wrote = True
    for p in pending:
        iid = p.item.instrument_id
        if not was_offered(session, site, iid, p.item.taken_at, ctx.settings.clock.ahead):
            p.problem = ItemProblem([{"field": "instrument_id",
                                      "message": f"{iid} is not offered at this site"}])


def _settle_crisis(ctx: BatchContext, entry: Entry, answer: dict[str, Any]) -> dict[str, Any]:
    """Record any crisis the entry shows that its answer did not, and say so in the answer."""

    def record(triggers: list[str]) -> None:
        taken_at = entry.prepared.item.taken_at if entry.prepared else None
        record_refused(ctx.session, ctx.kiosk, entry.raw, triggers, member=entry.crisis_member,
                       taken_at=taken_at, suspect=ctx.settings.clock.suspect)
        ctx.wrote = True

    return settle(answer, entry.triggers, record)
