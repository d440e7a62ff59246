"""A backlog batch written set-based: a few multi-row statements for its ordinary items.

A kiosk back online after an outage drains its outbox in batches of many visits. Running the
single-item pipeline for each of them (a SAVEPOINT, a SELECT of its session, triage, the
member's fold, two INSERTs) made the drain ≈ 20× a bulk insert of the same rows
(docs/BENCHMARKS.md). Here the batch's ordinary items (accepted on their checks, no crisis,
a key no earlier entry of the batch carried) are written together, in one SAVEPOINT:

1. one SELECT finds which of their keys are already stored (those are answered as replays or
   conflicts, exactly as ``store_item`` answers them);
2. one SELECT reads the stored items of all their kiosk sessions; each item is triaged with
   its session as ``store_item`` would (earlier items of the batch included), triage results
   shared between items whose sessions look alike;
3. each member's referral is folded once, with the proposals of all their items in order
   (``referrals.fold_all``): one version, one outbox repoint, one audit row;
4. one multi-row INSERT of the submissions, one audit row listing the batch's items.

The INSERT still claims every key: if a concurrent request stored one of them meanwhile, the
INSERT fails, the SAVEPOINT (folds included) is rolled back and ``process_batch`` stores these
items one by one, each answered on its own. Crises never come here: ``process_batch`` records
them first, item by item, through ``services.crisis.record``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect, Table, bindparam, select
from sqlalchemy.exc import IntegrityError

from shared import triage as triage_mod

from ...models import Member, Referral, Submission, utcnow
from ..clock import note_suspect
from ..members import lock_member
from ..pairing import kiosk_actor
from ..referrals import fold_all, open_referrals
from ..statements import INSERT_AUDIT
from .context import BatchContext, Entry, Prepared
from .item import (
    _SESSION_FACTS,
    _SUBMISSIONS,
    _core,
    _replay_or_conflict,
    audit_detail,
    item_answer,
    note_mismatch,
    session_view,
    submission_row,
)
from .triaged import triage_session

_STORED = select(Submission).where(
    Submission.idempotency_key.in_(bindparam("keys", expanding=True)))
# The stored items of several kiosk sessions at once: _SESSION_FACTS's columns and order.
_SESSIONS_FACTS = select(*_SESSION_FACTS.selected_columns, _SUBMISSIONS.c.session_id).where(
    _SUBMISSIONS.c.session_id.in_(bindparam("sessions", expanding=True))).order_by(
    _SUBMISSIONS.c.taken_at, _SUBMISSIONS.c.id)


class _Compiled(NamedTuple):
    sql: str
    order: tuple[str, ...]  # the parameters' names, in the statement's order
    positional: bool
    processors: dict[str, Callable[[Any], Any] | None]


class DriverInsert:
    """A table's multi-row INSERT, compiled once per dialect and run through the driver.

    SQLAlchemy's ``execute(insert, rows)`` builds and processes each row's parameters on every
    call: for a 250-item backlog batch of submissions, about half of the INSERT's cost, more
    than the database's own work (docs/BENCHMARKS.md, issue 20 P6, session 11). Here the
    statement is compiled once per dialect, and each row becomes the driver's parameters
    through the columns' own bind processors (the same JSON text, the same stored times),
    a value common to every row of the call (``same``), or one seen before for a column
    (``None``, an empty list), processed once. The rows go in one ``executemany``.
    """

    def __init__(self, table: Table) -> None:
        self.table = table
        self.names = tuple(c.key for c in table.c if not c.primary_key)
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.table.insert().compile(dialect=dialect, column_keys=list(self.names))
            order = tuple(compiled.positiontup or self.names)
            processors: dict[str, Callable[[Any], Any] | None] = {
                name: self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in order}
            found = _Compiled(compiled.string, order, bool(compiled.positiontup), processors)
            self._compiled[dialect.name] = found
        return found

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]],
            same: Mapping[str, Any]) -> None:
        """Insert the rows; ``same`` holds the values every row has (given in no row)."""
        sql, order, positional, processors = self._for(conn.dialect)
        fixed: dict[str, Any] = {}
        varying: list[tuple[str, Callable[[Any], Any] | None, dict[Any, Any]]] = []
        for name in order:
            process = processors[name]
            if name in same:
                fixed[name] = process(same[name]) if process is not None else same[name]
            else:
                # The processed form of None and of an empty list, per column, made once.
                varying.append((name, process, {}))
        params: list[Any] = []
        for row in rows:
            values = dict(fixed)
            for name, process, seen in varying:
                value = row[name]
                if process is None:
                    values[name] = value
                    continue
                if value is None or value == []:
                    key = repr(value)
                    if key not in seen:
                        seen[key] = process(value)
                    values[name] = seen[key]
                else:
                    values[name] = process(value)
            params.append(tuple(values[name] for name in order) if positional else values)
        conn.exec_driver_sql(sql, params)


_INSERT_SUBMISSIONS = DriverInsert(_SUBMISSIONS)

def bulk_candidates(entries: Sequence[Entry]) -> list[Entry]:
    """Return the entries the set-based path may write: checked, crisis-free, keys new here.

    An entry repeating the key of an earlier entry of the batch is left to the item-by-item
    path, which runs after the set-based write and answers it as the first one's replay (or
    conflict), or stores it when the first was refused.
    """
    seen: set[str] = set()
    picked = []
    for e in entries:
        if e.prepared is None:
            continue
        key = e.prepared.item.idempotency_key
        if (key not in seen and e.answer is None and e.prepared.problem is None
                and not e.triggers and not e.prepared.crisis):
            picked.append(e)
        seen.add(key)
    return picked


def is_backlog(candidates: Sequence[Entry]) -> bool:
    """Tell whether a batch is worth the set-based path: items of more than one kiosk session.

    A live visit arrives as one session's few items, answered item by item as always (each
    with its own audit row and referral version); a drained backlog holds many visits.
    """
    sessions = {e.prepared.item.session_id for e in candidates if e.prepared is not None}
    return len(sessions) > 1


def store_bulk(ctx: BatchContext, entries: Sequence[Entry]) -> dict[int, dict[str, Any]] | None:
    """Write the entries set-based; return their answers by index, or None to go item by item.

    None means the multi-row INSERT found a key taken by a concurrent request: everything this
    call wrote was rolled back with its SAVEPOINT.
    """
    answers, fresh = _answer_stored(ctx, entries)
    if not fresh:
        return answers
    views, folds, members = _triage_fresh(ctx, fresh)
    now = utcnow()
    try:
        with ctx.session.begin_nested():
            audit_rows: list[dict[str, Any]] = []
            referrals = _fold_members(ctx, folds, members, audit_rows)
            _insert(ctx, fresh, views, referrals, now, answers, audit_rows)
    except IntegrityError:
        return None
    ctx.wrote = True
    _note_written(ctx, fresh, now)
    return answers


def _answer_stored(ctx: BatchContext, entries: Sequence[Entry]
                   ) -> tuple[dict[int, dict[str, Any]], list[Entry]]:
    """Step 1: answer the entries whose keys are stored already; return the rest, in order."""
    answers: dict[int, dict[str, Any]] = {}
    keys = [_key(e) for e in entries]
    stored = {s.idempotency_key: s for s in ctx.session.scalars(_STORED, {"keys": keys})}
    fresh = []
    for entry in entries:
        p = _prep(entry)
        existing = stored.get(p.item.idempotency_key)
        if existing is not None:
            answers[entry.index] = _replay_or_conflict(existing, p.digest, p.prefix)
        else:
            fresh.append(entry)
    return answers, fresh


def _triage_fresh(ctx: BatchContext, fresh: Sequence[Entry]
                  ) -> tuple[dict[int, triage_mod.ReferralProposal],
                             dict[int, list[triage_mod.ReferralProposal]], dict[int, Member]]:
    """Step 2: triage each entry with its session as ``store_item`` would.

    Returns the triage by entry index, each member's proposals in batch order, and the members.
    """
    session, kiosk = ctx.session, ctx.kiosk
    by_session: dict[str, list[Sequence[Any]]] = defaultdict(list)
    sessions = sorted({_prep(e).item.session_id for e in fresh})
    for row in _core(session).execute(_SESSIONS_FACTS, {"sessions": sessions}):
        by_session[row[-1]].append(tuple(row[:-1]))
    earlier: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    views: dict[int, triage_mod.ReferralProposal] = {}
    folds: dict[int, list[triage_mod.ReferralProposal]] = defaultdict(list)
    members: dict[int, Member] = {}
    for entry in fresh:
        p = _prep(entry)
        item, member = p.item, p.member
        results, skipped = session_view(by_session[item.session_id], kiosk, member, item,
                                        p.triage_result, earlier[item.session_id])
        view = triage_session(results, identified=member is not None, skipped=skipped)
        views[entry.index] = view
        # Later items of the same session see this one, as they would once it is stored.
        earlier[item.session_id].append((
            item.instrument_id, item.instrument_version,
            p.result.as_dict() if p.result else None, list(item.skipped), False, item.taken_at,
            member.id if member else None, kiosk.id))
        if member is not None:
            members[member.id] = member
            folds[member.id].append(view)
    return views, folds, members


def _fold_members(ctx: BatchContext, folds: dict[int, list[triage_mod.ReferralProposal]],
                  members: dict[int, Member], audit_rows: list[dict[str, Any]]
                  ) -> dict[int, Referral | None]:
    """Step 3: fold each member's proposals into their referral once; return them by member.

    Each changed referral's ``referral.updated`` audit row is added to ``audit_rows``: they go
    in with the batch's own row, in one statement (``_insert``).
    """
    session, kiosk = ctx.session, ctx.kiosk
    actor = kiosk_actor(kiosk)
    # Member order, as _lock_members_in_order: two batches never wait on each other in
    # opposite orders.
    for member_id in sorted(folds):
        lock_member(session, member_id)
    found = open_referrals(session, sorted(folds))
    return {member_id: fold_all(session, members[member_id], folds[member_id], actor=actor,
                                cause="submission", found=found, site_id=kiosk.site_id,
                                audit_rows=audit_rows)
            for member_id in sorted(folds)}


def _insert(ctx: BatchContext, fresh: Sequence[Entry],
            views: dict[int, triage_mod.ReferralProposal], referrals: dict[int, Referral | None],
            now: datetime, answers: dict[int, dict[str, Any]],
            audit_rows: list[dict[str, Any]]) -> None:
    """Step 4: one multi-row INSERT of the submissions and one audit row listing them.

    The members' ``referral.updated`` rows (``audit_rows``) go in first, in the same
    statement. Fills ``answers``; raises IntegrityError when a key was taken meanwhile.
    """
    kiosk = ctx.kiosk
    rows, listed = [], []
    for entry in fresh:
        p = _prep(entry)
        member = p.member
        referral = referrals.get(member.id) if member else None
        suspect = ctx.settings.clock.suspect(p.item.taken_at, now)
        answer = item_answer(p, views[entry.index], referral, False)
        row = submission_row(kiosk, p, member, answer, referral,
                             received_at=now, clock_suspect=suspect)
        del row["received_at"], row["kiosk_id"]  # the same in every row: processed once
        rows.append(row)
        listed.append({**audit_detail(p),
                       "subject": f"member:{member.public_id}" if member else None})
        answers[entry.index] = answer
    # The INSERT claims every key at once; a taken one raises here, in the SAVEPOINT.
    # In batch order, as item by item: ids break ties between a session's items taken
    # at the same instant.
    _INSERT_SUBMISSIONS.run(_core(ctx.session), rows,
                            {"received_at": now, "kiosk_id": kiosk.id})
    # A Core INSERT passes by the ORM listener that fills in an entry's site; by its
    # rule (models/site_of.py) an entry its kiosk wrote is the kiosk's site's.
    _core(ctx.session).execute(INSERT_AUDIT, [*audit_rows, {
        "at": utcnow(), "note": None, "actor": kiosk_actor(kiosk),
        "action": "submission.batch_received", "subject": None,
        "site_id": kiosk.site_id,
        "detail": {"count": len(listed), "items": listed}}])


def _note_written(ctx: BatchContext, fresh: Sequence[Entry], now: datetime) -> None:
    """Step 5, after the write: log suspect clocks and instrument mismatches, as item by item."""
    for entry in fresh:
        p = _prep(entry)
        if ctx.settings.clock.suspect(p.item.taken_at, now):
            note_suspect(ctx.kiosk.public_id, f"submission {p.item.idempotency_key}",
                         p.item.taken_at, now)
        note_mismatch(ctx.kiosk, p)


def _prep(entry: Entry) -> Prepared:
    assert entry.prepared is not None
    return entry.prepared


def _key(entry: Entry) -> str:
    return str(_prep(entry).item.idempotency_key)
