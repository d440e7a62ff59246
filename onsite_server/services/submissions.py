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

A crisis is never lost (DESIGN.md §3.6): whatever is wrong with an entry, its member
reference or its batch, a crisis its answers show (``shared.crisis``) is recorded as the
member's crisis referral when a reference to them verifies, otherwise as an anonymous alert
for staff on site; every answer says so in ``crisis`` and ``crisis_recorded``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import triage as triage_mod
from shared.assessments import ScoreResult, available_versions
from shared.assessments.items import NOT_SCORED_BAND, ItemErrors, score_item
from shared.crisis import triggers_in_raw
from shared.partial import crisis_flags
from shared.schemas.common import control_character_paths
from shared.schemas.submissions import KioskResult, OfflineIdentity, SubmissionItem

from ..models import AuditLog, Kiosk, Member, Site, Submission, utcnow
from . import claims
from .clock import ClockPolicy, note_suspect, parse_aware
from .errors import problem_document, validation_errors
from .idempotency import parse_uuid, request_hash
from .identify import id_variants, match_offline
from .instruments import sync_windows, was_offered
from .members import MemberRefError, lock_member, resolve_filed_ref
from .pairing import kiosk_actor
from .referrals import (
    alert_key,
    audit_crisis,
    content_key,
    fold,
    raise_anonymous_alert,
    result_from_dict,
    summary,
)

log = logging.getLogger("onsite_server.submissions")

_TRIGGERS = {t.trigger: t for t in triage_mod.CRISIS_TRIGGERS}

# Statements built once: constructing a select() per call costs more than running it on SQLite.
_FIND = select(Submission).where(Submission.idempotency_key == bindparam("key"))
# A kiosk session's earlier items, found by session_id alone; whose they are is checked in
# Python. With the member or kiosk in the WHERE clause too, SQLite (no statistics) picks the
# kiosk_id or member_id index and reads every submission that kiosk or member ever made, so
# each submission cost more as the table grew; a session has a handful of rows.
# Core (table) statements, run on the session's connection: no ORM compile and loading steps
# and no unit-of-work bookkeeping, for rows this request reads as plain values or never reads.
_SUBMISSIONS = cast(Table, Submission.__table__)
_SESSION_FACTS = select(
    _SUBMISSIONS.c.instrument_id, _SUBMISSIONS.c.instrument_version, _SUBMISSIONS.c.result,
    _SUBMISSIONS.c.skipped, _SUBMISSIONS.c.crisis, _SUBMISSIONS.c.taken_at,
    _SUBMISSIONS.c.member_id, _SUBMISSIONS.c.kiosk_id,
).where(_SUBMISSIONS.c.session_id == bindparam("session_id")).order_by(
    _SUBMISSIONS.c.taken_at, _SUBMISSIONS.c.id)
_INSERT_SUBMISSION = _SUBMISSIONS.insert()
_INSERT_AUDIT = cast(Table, AuditLog.__table__).insert()


class ItemProblem(Exception):
    """One item cannot be accepted; errors name fields relative to the item."""

    def __init__(self, errors: list[dict[str, str]], status: int = 422,
                 title: str = "Invalid item") -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors
        self.status = status
        self.title = title


@dataclass(frozen=True)
class BatchSettings:
    """The server settings a batch is checked against."""

    secret: str
    ref_max_age: int
    max_batch: int
    offered: tuple[str, ...]
    clock: ClockPolicy
    offline_per_day: int = 300

    @classmethod
    def from_config(cls, config: Mapping[str, Any], offered: Sequence[str]) -> BatchSettings:
        """Read the settings from the app config, with the site's offered instruments."""
        return cls(secret=str(config["SECRET_KEY"]),
                   ref_max_age=int(config["MEMBER_REF_TTL_SECONDS"]),
                   max_batch=int(config["MAX_BATCH"]), offered=tuple(offered),
                   clock=ClockPolicy.from_config(config),
                   offline_per_day=int(config.get("OFFLINE_IDENTIFY_PER_DAY", 300)))


@dataclass
class BatchContext:
    """What every item of one batch needs; the sessions are opened only when needed."""

    session_factory: Callable[[], Session]
    read_session_factory: Callable[[], Session]
    kiosk: Kiosk
    settings: BatchSettings
    members: dict[str, tuple[Member, str | None]] = field(default_factory=dict)
    # Offline-typed identities already matched in this batch: (spelling, birth date) -> member.
    offline: dict[tuple[str, str], Member | None] = field(default_factory=dict)
    # Whether anything is already in the transaction (writes or row locks): later items then
    # need a SAVEPOINT, since rolling the transaction back would undo that too.
    wrote: bool = False

    @property
    def session(self) -> Session:
        """The request's write session."""
        return self.session_factory()

    @property
    def read_session(self) -> Session:
        """The request's read session (the write session once that is open)."""
        return self.read_session_factory()


@dataclass
class Prepared:
    """One item after the checks and scoring that need no database."""

    prefix: str
    item: SubmissionItem
    digest: str
    result: ScoreResult | None = None
    triage_result: ScoreResult | None = None
    problem: ItemProblem | None = None
    member: Member | None = None
    late: str | None = None  # why a genuine member reference was honoured late, if it was
    diffs: list[str] = field(default_factory=list)
    crisis: list[triage_mod.CrisisGuidance] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Entry:
    """One entry of the batch as sent, with what the server made of it."""

    index: int
    raw: object
    triggers: tuple[str, ...]  # the generous reading (shared.crisis)
    prepared: Prepared | None = None
    answer: dict[str, Any] | None = None  # set when it is refused before the database
    crisis_member: Member | None = None  # who a crisis in it is filed for, when verified


def process_batch(
    session_factory: Callable[[], Session], kiosk: Kiosk, items: Sequence[object], *,
    settings: BatchSettings, read_session_factory: Callable[[], Session] | None = None,
    refuse: str | None = None, shared_transaction: bool = False,
) -> list[dict[str, Any]]:
    """Answer every entry of a batch, in order: {key, status, result | problem, crisis...}.

    Validation and scoring of every item (pure work) run first, then the member references
    are resolved on ``read_session_factory`` (default: the write session), and the writes
    come last, so SQLite's write lock is held only for them. The batch must be the request's
    only writer: its first item may write without a SAVEPOINT (see the module docstring).
    ``refuse`` refuses every entry with that reason (an invalid envelope) while still
    recording the crises they show. ``shared_transaction`` says the caller's transaction
    already holds other work (demo data, a CLI), so every item gets its own SAVEPOINT.
    ``kiosk`` is only read.
    """
    ctx = BatchContext(session_factory=session_factory,
                       read_session_factory=read_session_factory or session_factory,
                       kiosk=kiosk, settings=settings, wrote=shared_transaction)
    entries = [Entry(index, raw, triggers_in_raw(raw)) for index, raw in enumerate(items)]
    for entry in entries:
        key = _raw_key(entry.raw)
        if refuse is not None:
            entry.answer = _rejected(key, [{"field": f"items.{entry.index}", "message":
                                            f"was not read: {refuse}"}])
        elif entry.index >= settings.max_batch:
            entry.answer = _rejected(key, [{
                "field": f"items.{entry.index}",
                "message": f"is beyond this server's limit of {settings.max_batch} items per "
                           "request; send it again in a later request"}])
        elif not isinstance(entry.raw, dict):
            entry.answer = _rejected(None, [{"field": f"items.{entry.index}",
                                             "message": "must be a JSON object"}])
        else:
            prepared = prepare_item(kiosk, entry.index, entry.raw)
            if isinstance(prepared, dict):
                entry.answer = prepared
            else:
                entry.prepared = prepared
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
    answers = []
    for entry in entries:
        answer = entry.answer
        if answer is None:
            assert entry.prepared is not None
            answer = store_item(ctx, entry.prepared)
        answers.append(_settle_crisis(ctx, entry, answer))
    return answers


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


def crisis_summary(answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Return the crisis guidance and whether it was all recorded, over several answers."""
    seen: dict[str, Any] = {}
    recorded = True
    for answer in answers:
        for guidance in answer.get("crisis", []):
            seen.setdefault(guidance["trigger"], guidance)
        if answer.get("crisis") and not answer.get("crisis_recorded"):
            recorded = False
    return {"crisis": list(seen.values()), "crisis_recorded": bool(seen) and recorded}


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


def prepare_item(kiosk: Kiosk, index: int, raw: dict[str, Any]) -> Prepared | dict[str, Any]:
    """Validate and score one item; return its rejection answer when the body itself is bad."""
    prefix = f"items.{index}"
    key = _raw_key(raw)
    bad = list(control_character_paths(raw, prefix))
    if bad:
        return _rejected(key, [{"field": f, "message": "must not contain control characters"}
                               for f in bad[:20]])
    try:
        item = SubmissionItem.model_validate(raw)
    except ValidationError as exc:
        return _rejected(key, [{"field": f"{prefix}.{e['field']}", "message": e["message"]}
                               for e in validation_errors(exc)])
    who = item.who_problem()
    if who is not None:
        return _rejected(key, [{"field": f"{prefix}.member_ref", "message": who}])
    devices = item.devices_problem()
    if devices is not None:
        return _rejected(key, [{"field": f"{prefix}.{devices[0]}", "message": devices[1]}])
    digest = request_hash({"kiosk": kiosk.public_id, "item": item.model_dump(mode="json")})
    prepared = Prepared(prefix=prefix, item=item, digest=digest)
    try:
        prepared.result, prepared.triage_result = _score(item)
    except ItemProblem as exc:
        # Decided later: a replay of a stored key still gets its first answer.
        prepared.problem = exc
        return prepared
    prepared.diffs = _mismatch(item.kiosk_result, prepared.result)
    iid = item.instrument_id
    flags = prepared.triage_result.flags if prepared.triage_result else frozenset()
    prepared.crisis = [triage_mod.crisis_guidance(t.trigger) for t in triage_mod.CRISIS_TRIGGERS
                       if t.instrument == iid and t.flag in flags]
    notices = (triage_mod.skipped_item_notice(iid, link) for link in item.skipped)
    prepared.notices = list({n.code: n.as_dict() for n in notices if n is not None}.values())
    return prepared


def store_item(ctx: BatchContext, prepared: Prepared) -> dict[str, Any]:
    """Replay, reject or store one prepared (and member-resolved) item; undo it alone on error."""
    item, prefix, digest = prepared.item, prepared.prefix, prepared.digest
    exc = prepared.problem
    if exc is not None:
        # A replay answers as the first time did, even if its member_ref has since expired.
        # Only a read: it needs no write lock while the write session is not open yet.
        existing = _find(ctx.read_session, item.idempotency_key)
        if existing is not None:
            return _replay_or_conflict(existing, digest, prefix)
        return _rejected(item.idempotency_key, _prefixed(exc.errors, prefix), exc.status,
                         exc.title)
    session = ctx.session
    try:
        if ctx.wrote:
            with session.begin_nested():
                answer = _accept(ctx, prepared, prepared.member)
        else:
            # Nothing is written yet, so rolling the whole transaction back undoes exactly this
            # item: the SAVEPOINT and its RELEASE would be two statements for nothing.
            try:
                answer = _accept(ctx, prepared, prepared.member)
            except BaseException:
                session.rollback()
                raise
        ctx.wrote = True
        return answer
    except IntegrityError:
        # The key is taken: an earlier request (or a concurrent one that just committed) stored
        # it. Looking it up only here keeps the common, first-time path one query shorter.
        existing = _find(session, item.idempotency_key)
        if existing is None:
            raise
        return _replay_or_conflict(existing, digest, prefix)


# --------------------------------------------------------------------------- crisis


def _settle_crisis(ctx: BatchContext, entry: Entry, answer: dict[str, Any]) -> dict[str, Any]:
    """Record any crisis the entry shows that its answer did not, and say so in the answer."""
    seen = _answer_triggers(answer)
    recorded = set(seen) if answer["status"] in ("accepted", "replayed") else set()
    wanted = [t.trigger for t in triage_mod.CRISIS_TRIGGERS
              if t.trigger in entry.triggers or t.trigger in seen]
    missing = [t for t in wanted if t not in recorded]
    if missing:
        _record_crisis(ctx, entry, missing)
        recorded.update(missing)
    answer["crisis"] = [triage_mod.crisis_guidance(t).as_dict() for t in wanted]
    answer["crisis_recorded"] = bool(wanted) and all(t in recorded for t in wanted)
    return answer


def _answer_triggers(answer: Mapping[str, Any]) -> list[str]:
    """Return the triggers an answer (fresh or stored by an earlier version) reports."""
    found = [g["trigger"] for g in answer.get("crisis") or []]
    result = answer.get("result") or {}
    found += [g["trigger"] for g in result.get("crisis") or []]
    return list(dict.fromkeys(found))


def _crisis_member(ctx: BatchContext, entry: Entry) -> Member | None:
    """Return the member a crisis in this entry is filed for, when a reference verifies."""
    p = entry.prepared
    if p is not None and p.member is not None:
        return p.member
    typed = entry.raw.get("offline_identity") if isinstance(entry.raw, dict) else None
    if typed is not None:
        # A refused item typed offline: its crisis still goes to the member when the id matches.
        try:
            identity = OfflineIdentity.model_validate(typed)
        except ValidationError:
            return None
        return _match_offline(ctx, identity, _raw_key(entry.raw))
    ref = entry.raw.get("member_ref") if isinstance(entry.raw, dict) else None
    if not isinstance(ref, str) or not ref.strip():
        return None
    try:
        member, _late = _resolve(ctx, ref.strip())
    except MemberRefError:
        return None
    return member


def _record_crisis(ctx: BatchContext, entry: Entry, triggers: Sequence[str]) -> None:
    """Record crises read from an entry the server did not accept: referral, or staff alert."""
    session, kiosk = ctx.session, ctx.kiosk
    actor = kiosk_actor(kiosk)
    now = utcnow()
    taken_at = entry.prepared.item.taken_at if entry.prepared else _lenient_time(entry.raw, now)
    member = entry.crisis_member
    with session.begin_nested():
        if member is not None:
            lock_member(session, member.id)
            results = {}
            for trigger in triggers:
                t = _TRIGGERS[trigger]
                results[t.instrument] = ScoreResult(
                    instrument=t.instrument, version=_latest_version(t.instrument), total=None,
                    band=NOT_SCORED_BAND, flags=frozenset({t.flag}))
            view = triage_mod.triage(results, identified=True)
            referral = fold(session, member, view, actor=actor, cause="crisis_in_refused_item")
            audit_crisis(session, actor, triggers,
                         f"referral:{referral.public_id}" if referral else None)
        else:
            key = _raw_key(entry.raw) or content_key(kiosk, entry.raw)
            suspect = ctx.settings.clock.suspect(taken_at, now)
            for trigger in triggers:
                raise_anonymous_alert(session, kiosk, trigger, taken_at,
                                      key=alert_key(key, trigger), clock_suspect=suspect,
                                      from_rejected_item=True)
    ctx.wrote = True
    log.warning("kiosk %s: crisis (%s) recorded from an item the server refused (%s)",
                kiosk.public_id, ", ".join(triggers),
                "member's referral" if member is not None else "anonymous alert")


@lru_cache(maxsize=16)
def _latest_version(instrument_id: str) -> str:
    return available_versions(instrument_id)[-1]


def _raw_key(raw: object) -> str | None:
    """Return the entry's idempotency key when it is a well-formed UUID (lower case)."""
    return parse_uuid(raw.get("idempotency_key")) if isinstance(raw, dict) else None


def _lenient_time(raw: object, default: datetime) -> datetime:
    """Return the entry's taken_at when it is a usable aware timestamp, else ``default``."""
    found = parse_aware(raw.get("taken_at")) if isinstance(raw, dict) else None
    return found or default


def _prefixed(errors: list[dict[str, str]], prefix: str) -> list[dict[str, str]]:
    return [{"field": f"{prefix}.{e['field']}", "message": e["message"]} for e in errors]


def _rejected(key: str | None, errors: list[dict[str, str]], status: int = 422,
              title: str = "Invalid item") -> dict[str, Any]:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return {"key": key, "status": "rejected",
            "problem": problem_document(status, title, detail, errors)}


def _core(session: Session) -> Connection:
    """Return the session's connection for a Core statement, flushed as session.execute would.

    The flush (a no-op when nothing is pending) keeps the order of writes that autoflush gave:
    an item's ORM changes reach the database before its Submission INSERT, inside its SAVEPOINT.
    """
    session.flush()
    return session.connection()


def _find(session: Session, key: str) -> Submission | None:
    return session.scalars(_FIND, {"key": key}).first()


def _replay_or_conflict(existing: Submission, digest: str, prefix: str) -> dict[str, Any]:
    if existing.request_hash != digest:
        errors = [{"field": f"{prefix}.idempotency_key",
                   "message": "was already used with a different body"}]
        problem = problem_document(409, "Idempotency key reused",
                                   "This idempotency key was already used with a different "
                                   "item.", errors)
        return {"key": existing.idempotency_key, "status": "conflict", "problem": problem}
    answer = dict(existing.response)
    answer["status"] = "replayed"
    return answer


def _member(ctx: BatchContext, item: SubmissionItem) -> tuple[Member | None, str | None]:
    if item.offline_identity is not None:
        return _match_offline(ctx, item.offline_identity, item.idempotency_key), None
    if item.anonymous or item.member_ref is None:
        return None, None
    try:
        return _resolve(ctx, item.member_ref)
    except MemberRefError as exc:
        raise ItemProblem([{"field": "member_ref", "message": str(exc)}]) from exc


def _match_offline(ctx: BatchContext, typed: OfflineIdentity, key: str | None
                   ) -> Member | None:
    """Match an offline-typed identity once per batch; None files the item as anonymous.

    A replay of a stored key is not matched again: it will be answered with its first answer,
    and a second match would only spend the kiosk's cap.
    """
    if key is not None and _find(ctx.read_session, key) is not None:
        return None
    spelling = id_variants(typed.id)[-1]  # the upper-cased form: one cache entry per person
    cache_key = (spelling, typed.birth_date.isoformat())
    if cache_key not in ctx.offline:
        # The cap is counted and the attempt audited in the write transaction, so every
        # later item of the batch runs in its own SAVEPOINT (ctx.wrote).
        ctx.offline[cache_key] = match_offline(
            ctx.session, kiosk=ctx.kiosk, typed_id=typed.id, birth_date=typed.birth_date,
            secret=ctx.settings.secret, per_day=ctx.settings.offline_per_day,
            phone=typed.phone, email=typed.email)
        ctx.wrote = True
    elif ctx.offline[cache_key] is None and (typed.phone or typed.email):
        # A later item of the batch may carry the contact the first one did not.
        claims.note_unmatched(ctx.session, ctx.kiosk, typed_id=typed.id,
                              birth_date=typed.birth_date, phone=typed.phone, email=typed.email)
        ctx.wrote = True
    return ctx.offline[cache_key]


def _resolve(ctx: BatchContext, ref: str) -> tuple[Member, str | None]:
    cached = ctx.members.get(ref)
    if cached is not None:
        return cached
    found = resolve_filed_ref(ctx.read_session, ctx.settings.secret, ref, ctx.kiosk,
                              ctx.settings.ref_max_age)
    ctx.members[ref] = found
    return found


# --------------------------------------------------------------------------- scoring


def _score(item: SubmissionItem) -> tuple[ScoreResult | None, ScoreResult | None]:
    """Return (stored result, result for triage); the first is None when items were skipped."""
    try:
        return score_item(item.instrument_id, item.instrument_version, item.answers,
                          item.skipped)
    except ItemErrors as exc:
        raise ItemProblem(exc.errors) from exc


def _mismatch(kiosk: KioskResult | None, server: ScoreResult | None) -> list[str]:
    """Return the names of the fields where the kiosk's result differs from the server's."""
    if kiosk is None:
        return []
    if server is None:
        return ["result"]
    diffs = []
    if not _same_number(kiosk.total, server.total):
        diffs.append("total")
    if kiosk.band != server.band:
        diffs.append("band")
    if frozenset(kiosk.flags) != server.flags:
        diffs.append("flags")
    return diffs


def _same_number(a: float | int | None, b: float | int | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# --------------------------------------------------------------------------- storing


def _accept(ctx: BatchContext, prepared: Prepared, member: Member | None) -> dict[str, Any]:
    """Store one item and fold it in; the Submission INSERT comes last and claims the key.

    Everything runs inside the item's SAVEPOINT: if the key turns out to be taken (a replay
    racing us), the INSERT fails and every change made here is rolled back with it. Identified
    items lock the member row first, so concurrent items of one member fold one at a time.
    """
    session, kiosk = ctx.session, ctx.kiosk
    item, result, diffs, crisis = prepared.item, prepared.result, prepared.diffs, prepared.crisis
    iid = item.instrument_id
    triggers = [g.trigger for g in crisis]

    actor = kiosk_actor(kiosk)
    referral = None
    crisis_alert = False
    now = utcnow()
    clock_suspect = ctx.settings.clock.suspect(item.taken_at, now)
    if clock_suspect:
        note_suspect(kiosk.public_id, f"submission {item.idempotency_key}", item.taken_at, now)
    if member is not None:
        lock_member(session, member.id)
    results, skipped_ids = _session_facts(session, kiosk, member, item, prepared.triage_result)
    session_view = triage_mod.triage(results, identified=member is not None,
                                     skipped=skipped_ids)
    if member is not None:
        referral = fold(session, member, session_view, actor=actor, cause="submission")
        if triggers:
            subject = f"referral:{referral.public_id}" if referral else None
            audit_crisis(session, actor, triggers, subject)
    elif triggers:
        for trigger in triggers:
            raise_anonymous_alert(session, kiosk, trigger, item.taken_at,
                                  key=alert_key(item.idempotency_key, trigger),
                                  clock_suspect=clock_suspect)
        crisis_alert = True

    offline = item.offline_identity is not None
    outcome = {
        "instrument_id": iid,
        "instrument_version": item.instrument_version,
        "scored": result is not None,
        "score": result.as_dict() if result else None,
        "score_mismatch": bool(diffs),
        "crisis": [g.as_dict() for g in crisis],
        "notices": prepared.notices,
        "next_screeners": list(session_view.next_screeners),
        "referral": summary(referral) if referral else None,
        "crisis_alert": crisis_alert,
    }
    if offline:
        # One answer whether or not the typed id matched: nothing in it may tell the two apart
        # (the visit is over by now, so the kiosk has no use for these details anyway).
        outcome.update(next_screeners=[], referral=None, crisis_alert=False)
    answer = {"key": item.idempotency_key, "status": "accepted", "result": outcome,
              "crisis": outcome["crisis"], "crisis_recorded": bool(crisis)}
    # The Submission INSERT claims the key; a taken key raises here, inside the savepoint.
    _core(session).execute(_INSERT_SUBMISSION, dict(
        received_at=now, clock_suspect=clock_suspect, idempotency_key=item.idempotency_key,
        request_hash=prepared.digest, kiosk_id=kiosk.id,
        member_id=member.id if member else None, session_id=item.session_id,
        instrument_id=iid, instrument_version=item.instrument_version,
        answers=dict(item.answers), skipped=list(item.skipped),
        devices=[device.model_dump(mode="json") for device in item.devices],
        kiosk_result=item.kiosk_result.model_dump(mode="json") if item.kiosk_result else None,
        result=result.as_dict() if result else None, score_mismatch=bool(diffs),
        crisis=bool(crisis), taken_at=item.taken_at, response=answer,
        referral_id=referral.id if referral else None,
    ))
    if diffs:
        # Names of the differing fields only: scores are health data and stay out of logs.
        log.warning("kiosk %s score mismatch on submission %s (%s %s): %s differ; "
                    "the server's result is kept", kiosk.public_id, item.idempotency_key,
                    iid, item.instrument_version, ", ".join(diffs))
    _core(session).execute(_INSERT_AUDIT, dict(
        at=utcnow(), note=None, actor=actor, action="submission.received",
        subject=f"member:{member.public_id}" if member else None,
        detail={"key": item.idempotency_key, "instrument": iid,
                "version": item.instrument_version, "scored": result is not None,
                "score_mismatch": bool(diffs),
                # A genuine reference honoured after it expired or its kiosk was re-paired.
                **({"late": prepared.late} if prepared.late else {})},
    ))
    return answer


def _session_facts(
    session: Session, kiosk: Kiosk, member: Member | None, item: SubmissionItem,
    current: ScoreResult | None,
) -> tuple[dict[str, ScoreResult], dict[str, list[str]]]:
    """Return (results, skipped) of the item's kiosk session, the latest attempt per instrument.

    Earlier items come from the database; the current one (not stored yet) is placed by its
    taken_at like the others, so a late upload does not override a newer attempt.
    """
    rows = _core(session).execute(_SESSION_FACTS, {"session_id": item.session_id})
    attempts: list[tuple[Any, int, str, ScoreResult | None, list[str]]] = []
    for iid, version, stored, skipped_ids, crisis, taken_at, member_id, kiosk_id in rows:
        # The member's items of this session; anonymous ones only from this same kiosk.
        if member is not None:
            if member_id != member.id:
                continue
        elif member_id is not None or kiosk_id != kiosk.id:
            continue
        attempts.append((taken_at, len(attempts), iid,
                         _stored_result(iid, version, stored, crisis), list(skipped_ids or [])))
    attempts.append((item.taken_at, len(attempts), item.instrument_id, current,
                     list(item.skipped)))
    attempts.sort(key=lambda a: (a[0], a[1]))
    results: dict[str, ScoreResult] = {}
    skipped: dict[str, list[str]] = {}
    for _, _, iid, res, skipped_ids in attempts:
        results.pop(iid, None)
        skipped.pop(iid, None)
        if res is not None:
            results[iid] = res
        if skipped_ids:
            skipped[iid] = skipped_ids
    return results, skipped


def _stored_result(iid: str, version: str, stored: Mapping[str, Any] | None,
                   crisis: bool) -> ScoreResult | None:
    if stored:
        return result_from_dict(stored)
    if crisis:
        # An unscored instrument whose answered items alone showed a crisis (see the probe).
        return ScoreResult(instrument=iid, version=version, total=None, band=NOT_SCORED_BAND,
                           flags=crisis_flags(iid))
    return None
