"""Kiosk submissions: validate, re-score, store and triage each item on its own.

A batch runs in three phases: validation and scoring (no database), the reads that need no
write lock (member references, on the request's read session), then the writes. Each item's
writes are undone on their own when they fail, so one failure never rolls back the others:
the first item to write runs directly in the transaction (nothing earlier could be lost by
rolling it back), every later one in its own SAVEPOINT. The Submission INSERT (unique
idempotency key) is the item's last statement: when a replay races the first request, that
INSERT fails, the item's referral and alert changes are undone with it, and the item is
answered with the stored first answer. Identified items also lock the member row first
(PostgreSQL), so one member's findings fold in one at a time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import triage as triage_mod
from shared.assessments import ScoreResult, ScoringError, available_versions, load_definition
from shared.assessments import score as score_answers
from shared.partial import crisis_flags, crisis_in_partial
from shared.schemas.submissions import KioskResult, SubmissionItem

from ..errors import ApiProblem, validation_errors
from ..models import AuditLog, Kiosk, Member, Submission, utcnow
from .idempotency import request_hash
from .members import MemberRefError, lock_member, resolve_member_ref
from .pairing import kiosk_actor
from .referrals import (
    alert_key,
    audit_crisis,
    fold,
    raise_anonymous_alert,
    result_from_dict,
    summary,
)

log = logging.getLogger("onsite_server.submissions")

NOT_SCORED_BAND = "not_scored"

# Statements built once: constructing a select() per call costs more than running it on SQLite.
_FIND = select(Submission).where(Submission.idempotency_key == bindparam("key"))
_FACTS = select(Submission.instrument_id, Submission.instrument_version, Submission.result,
                Submission.skipped, Submission.crisis, Submission.taken_at).order_by(
    Submission.taken_at, Submission.id)
_MEMBER_FACTS = _FACTS.where(Submission.session_id == bindparam("session_id"),
                             Submission.member_id == bindparam("member_id"))
_ANONYMOUS_FACTS = _FACTS.where(Submission.session_id == bindparam("session_id"),
                                Submission.member_id.is_(None),
                                Submission.kiosk_id == bindparam("kiosk_id"))
# Core (table) INSERTs: no unit-of-work bookkeeping for rows this request never reads back.
_INSERT_SUBMISSION = cast(Table, Submission.__table__).insert()
_INSERT_AUDIT = cast(Table, AuditLog.__table__).insert()


class ItemProblem(Exception):
    """One item cannot be accepted; errors name fields relative to the item."""

    def __init__(self, errors: list[dict[str, str]], status: int = 422,
                 title: str = "Invalid item") -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors
        self.status = status
        self.title = title


@dataclass
class BatchContext:
    """What every item of one batch needs; the sessions are opened only when needed."""

    session_factory: Callable[[], Session]
    read_session_factory: Callable[[], Session]
    kiosk: Kiosk
    secret: str
    ref_max_age: int
    members: dict[str, Member] = field(default_factory=dict)
    # Whether an item's writes are already in the transaction: later items need a SAVEPOINT.
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
    diffs: list[str] = field(default_factory=list)
    crisis: list[triage_mod.CrisisGuidance] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)


def process_batch(
    session_factory: Callable[[], Session], kiosk: Kiosk, items: list[dict[str, Any]], *,
    secret: str, ref_max_age: int,
    read_session_factory: Callable[[], Session] | None = None,
) -> list[dict[str, Any]]:
    """Answer every item of a batch, in order: {key, status, result | problem}.

    Validation and scoring of every item (pure work) run first, then the member references
    are resolved on ``read_session_factory`` (default: the write session), and the writes
    come last, so SQLite's write lock is held only for them. The batch must be the request's
    only writer: its first item writes without a SAVEPOINT (see the module docstring).
    ``kiosk`` is only read.
    """
    ctx = BatchContext(session_factory=session_factory,
                       read_session_factory=read_session_factory or session_factory,
                       kiosk=kiosk, secret=secret, ref_max_age=ref_max_age)
    prepared = [prepare_item(kiosk, index, raw) for index, raw in enumerate(items)]
    for p in prepared:
        if isinstance(p, Prepared) and p.problem is None:
            try:
                p.member = _member(ctx, p.item)
            except ItemProblem as exc:
                p.problem = exc
    _lock_members_in_order(ctx, prepared)
    return [p if isinstance(p, dict) else store_item(ctx, p) for p in prepared]


def _lock_members_in_order(ctx: BatchContext, prepared: list[Prepared | dict[str, Any]]) -> None:
    """Take the batch's member row locks in id order before any item writes (PostgreSQL).

    Each item locks its member as it goes; two batches naming the same members in opposite
    orders would otherwise deadlock. SQLite needs none: its writer already holds the database.
    """
    ids = sorted({p.member.id for p in prepared
                  if isinstance(p, Prepared) and p.problem is None and p.member is not None})
    if len(ids) < 2 or ctx.read_session.get_bind().dialect.name == "sqlite":
        return
    for member_id in ids:
        lock_member(ctx.session, member_id)


def prepare_item(kiosk: Kiosk, index: int, raw: dict[str, Any]) -> Prepared | dict[str, Any]:
    """Validate and score one item; return its rejection answer when the body itself is bad."""
    prefix = f"items.{index}"
    raw_key = raw.get("idempotency_key")
    key = raw_key if isinstance(raw_key, str) and len(raw_key) <= 64 else None
    try:
        item = SubmissionItem.model_validate(raw)
    except ValidationError as exc:
        return _rejected(key, [{"field": f"{prefix}.{e['field']}", "message": e["message"]}
                               for e in validation_errors(exc)])
    who = item.who_problem()
    if who is not None:
        return _rejected(key, [{"field": f"{prefix}.member_ref", "message": who}])
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
        rejected = _rejected(item.idempotency_key, _prefixed(exc.errors, prefix), exc.status,
                             exc.title)
        if prepared.crisis:
            # The answers were scored but the member could not be identified (an expired or
            # foreign reference): the crisis must not vanish with the item, so staff on site
            # are alerted as for an anonymous member and the kiosk still gets the guidance.
            rejected["crisis"] = [g.as_dict() for g in prepared.crisis]
            rejected["crisis_alert"] = _alert_unidentified(ctx, prepared)
        return rejected
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


def _alert_unidentified(ctx: BatchContext, prepared: Prepared) -> bool:
    """Raise the anonymous crisis alerts of an item whose member could not be resolved."""
    session, item = ctx.session, prepared.item
    with session.begin_nested():
        for guidance in prepared.crisis:
            raise_anonymous_alert(session, ctx.kiosk, guidance.trigger, item.taken_at,
                                  key=alert_key(item.idempotency_key, guidance.trigger))
    ctx.wrote = True
    return True


def _prefixed(errors: list[dict[str, str]], prefix: str) -> list[dict[str, str]]:
    return [{"field": f"{prefix}.{e['field']}", "message": e["message"]} for e in errors]


def _rejected(key: str | None, errors: list[dict[str, str]], status: int = 422,
              title: str = "Invalid item") -> dict[str, Any]:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return {"key": key, "status": "rejected",
            "problem": ApiProblem(status, title, detail, errors=errors).to_dict()}


def _find(session: Session, key: str) -> Submission | None:
    return session.scalars(_FIND, {"key": key}).first()


def _replay_or_conflict(existing: Submission, digest: str, prefix: str) -> dict[str, Any]:
    if existing.request_hash != digest:
        errors = [{"field": f"{prefix}.idempotency_key",
                   "message": "was already used with a different body"}]
        problem = ApiProblem(409, "Idempotency key reused",
                             "This idempotency key was already used with a different item.",
                             errors=errors)
        return {"key": existing.idempotency_key, "status": "conflict",
                "problem": problem.to_dict()}
    answer = dict(existing.response)
    answer["status"] = "replayed"
    return answer


def _member(ctx: BatchContext, item: SubmissionItem) -> Member | None:
    if item.anonymous or item.member_ref is None:
        return None
    cached = ctx.members.get(item.member_ref)
    if cached is not None:
        return cached
    try:
        member = resolve_member_ref(ctx.read_session, ctx.secret, item.member_ref, ctx.kiosk,
                                    ctx.ref_max_age)
    except MemberRefError as exc:
        raise ItemProblem([{"field": "member_ref", "message": str(exc)}]) from exc
    ctx.members[item.member_ref] = member
    return member


# --------------------------------------------------------------------------- scoring


def _score(item: SubmissionItem) -> tuple[ScoreResult | None, ScoreResult | None]:
    """Return (stored result, result for triage); the first is None when items were skipped."""
    _check_version(item.instrument_id, item.instrument_version)
    if not item.skipped:
        try:
            result = score_answers(item.instrument_id, item.answers, item.instrument_version)
        except ScoringError as exc:
            raise ItemProblem([{"field": _scoring_field(exc.field), "message": exc.message}]
                              ) from exc
        return result, result
    items = _items(item.instrument_id, item.instrument_version)
    _check_partial(items, item.answers, item.skipped)
    return None, _crisis_probe(item)


@lru_cache(maxsize=128)
def _versions(instrument_id: str) -> tuple[str, ...] | str:
    """Return an instrument's versions, or the reason it is unknown (cached per process)."""
    try:
        return tuple(available_versions(instrument_id))
    except ScoringError as exc:
        return exc.message


def _check_version(instrument_id: str, version: str) -> None:
    versions = _versions(instrument_id)
    if isinstance(versions, str):
        raise ItemProblem([{"field": "instrument_id", "message": versions}])
    if version not in versions:
        raise ItemProblem([{"field": "instrument_version",
                            "message": f"{instrument_id} has no version {version} "
                                       f"(this server has {', '.join(versions)})"}])


def _scoring_field(name: str) -> str:
    if name in ("instrument_id", "answers"):
        return name
    return f"answers.{name}"


@lru_cache(maxsize=128)
def _items(instrument_id: str, version: str) -> dict[str, dict[str, Any]]:
    """Return the definition's items by linkId (cached: definitions never change at runtime)."""
    definition = load_definition(instrument_id, version)
    return {str(it["linkId"]): it for it in definition["items"]}


def _check_partial(items: Mapping[str, Mapping[str, Any]], answers: Mapping[str, object],
                   skipped: list[str]) -> None:
    """Validate the answered items of an instrument with skipped items (it is not scored)."""
    errors: list[dict[str, str]] = []
    skipped_set = set(skipped)
    for i, link_id in enumerate(skipped):
        if link_id not in items:
            errors.append({"field": f"skipped.{i}", "message": "is not a question of this "
                                                                "instrument"})
    for link_id, value in answers.items():
        spec = items.get(link_id)
        if spec is None:
            errors.append({"field": f"answers.{link_id}",
                           "message": "is not a question of this instrument"})
        elif link_id in skipped_set:
            errors.append({"field": f"answers.{link_id}", "message": "is also marked skipped"})
        else:
            message = _value_problem(spec, value)
            if message:
                errors.append({"field": f"answers.{link_id}", "message": message})
    for link_id, spec in items.items():
        if spec.get("required") and link_id not in answers and link_id not in skipped_set:
            errors.append({"field": f"answers.{link_id}", "message": "is missing (answer it or "
                                                                     "list it in skipped)"})
    if errors:
        raise ItemProblem(errors)


def _value_problem(spec: Mapping[str, Any], value: object) -> str | None:
    kind = spec.get("type")
    if kind == "choice":
        allowed = [opt["value"] for opt in spec.get("options", [])]
        if isinstance(value, bool) or value not in allowed:
            return f"must be one of {', '.join(str(v) for v in allowed)}"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if kind == "integer" and not isinstance(value, int):
            return "must be a whole number"
        lo, hi = spec.get("min"), spec.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            return f"must be from {lo} to {hi}"
        return None
    return None if isinstance(value, str) else "must be text"


def _crisis_probe(item: SubmissionItem) -> ScoreResult | None:
    """Find a crisis in a partly answered instrument (see shared.partial)."""
    found = crisis_in_partial(item.instrument_id, item.answers, item.skipped,
                              item.instrument_version)
    if not found:
        return None
    return ScoreResult(instrument=item.instrument_id, version=item.instrument_version,
                       total=None, band=NOT_SCORED_BAND, flags=found)


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
                                  key=alert_key(item.idempotency_key, trigger))
        crisis_alert = True

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
    answer = {"key": item.idempotency_key, "status": "accepted", "result": outcome}
    # The Submission INSERT claims the key; a taken key raises here, inside the savepoint.
    session.execute(_INSERT_SUBMISSION, dict(
        received_at=utcnow(), idempotency_key=item.idempotency_key,
        request_hash=prepared.digest, kiosk_id=kiosk.id,
        member_id=member.id if member else None, session_id=item.session_id,
        instrument_id=iid, instrument_version=item.instrument_version,
        answers=dict(item.answers), skipped=list(item.skipped),
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
    session.execute(_INSERT_AUDIT, dict(
        at=utcnow(), note=None, actor=actor, action="submission.received",
        subject=f"member:{member.public_id}" if member else None,
        detail={"key": item.idempotency_key, "instrument": iid,
                "version": item.instrument_version, "scored": result is not None,
                "score_mismatch": bool(diffs)},
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
    if member is not None:
        rows = session.execute(_MEMBER_FACTS, {"session_id": item.session_id,
                                               "member_id": member.id})
    else:
        rows = session.execute(_ANONYMOUS_FACTS, {"session_id": item.session_id,
                                                  "kiosk_id": kiosk.id})
    attempts: list[tuple[Any, int, str, ScoreResult | None, list[str]]] = []
    for n, (iid, version, stored, skipped_ids, crisis, taken_at) in enumerate(rows):
        attempts.append((taken_at, n, iid, _stored_result(iid, version, stored, crisis),
                         list(skipped_ids or [])))
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
