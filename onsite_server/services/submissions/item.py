"""One item: validated and scored without the database, then replayed, refused or stored."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import triage as triage_mod
from shared.assessments import ScoreResult
from shared.assessments.items import NOT_SCORED_BAND, ItemErrors
from shared.crisis import crisis_flags, score_item
from shared.schemas.common import control_character_paths
from shared.schemas.submissions import KioskResult, SubmissionItem

from ...models import Kiosk, Member, Referral, Submission, utcnow
from ..clock import note_suspect
from ..crisis.record import alert_key, audit_crisis, raise_anonymous_alert
from ..errors import problem_document, validation_errors
from ..idempotency import request_hash
from ..members import lock_member
from ..pairing import kiosk_actor
from ..referrals import fold, result_from_dict, summary
from ..statements import INSERT_AUDIT
from .context import (
    BatchContext,
    ItemProblem,
    Prepared,
    _find,
    _prefixed,
    _raw_key,
    _rejected,
    log,
)
from .triaged import triage_session

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




def prepare_item(kiosk: Kiosk, index: int, raw: dict[str, Any], *,
                 text_checked: bool = False) -> Prepared | dict[str, Any]:
    """Validate and score one item; return its rejection answer when the body itself is bad.

    ``text_checked``: the whole body's text was found free of control characters
    (``may_hold_control_characters``), so the item's strings need no walk of their own.
    """
    prefix = f"items.{index}"
    bad = [] if text_checked else list(control_character_paths(raw, prefix))
    if bad:
        return _refused(raw, [{"field": f, "message": "must not contain control characters"}
                               for f in bad[:20]])
    try:
        item = SubmissionItem.model_validate(raw)
    except ValidationError as exc:
        return _refused(raw, [{"field": f"{prefix}.{e['field']}", "message": e["message"]}
                               for e in validation_errors(exc)])
    who = item.who_problem()
    if who is not None:
        return _refused(raw, [{"field": f"{prefix}.member_ref", "message": who}])
    devices = item.devices_problem()
    if devices is not None:
        return _refused(raw, [{"field": f"{prefix}.{devices[0]}", "message": devices[1]}])
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


def _refused(raw: dict[str, Any], errors: list[dict[str, str]]) -> dict[str, Any]:
    # The key as sent is read only for a refusal: an accepted item's key is validated, and
    # parsing it twice per item cost 3.5% of a drained backlog (issue 20 P6, session 11).
    return _rejected(_raw_key(raw), errors)


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


def _core(session: Session) -> Connection:
    """Return the session's connection for a Core statement, flushed as session.execute would.

    The flush (a no-op when nothing is pending) keeps the order of writes that autoflush gave:
    an item's ORM changes reach the database before its Submission INSERT, inside its SAVEPOINT.
    """
    session.flush()
    return session.connection()


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


def _accept(ctx: BatchContext, prepared: Prepared, member: Member | None) -> dict[str, Any]:
    """Store one item and fold it in; the Submission INSERT comes last and claims the key.

    Everything runs inside the item's SAVEPOINT: if the key turns out to be taken (a replay
    racing us), the INSERT fails and every change made here is rolled back with it. Identified
    items lock the member row first, so concurrent items of one member fold one at a time.
    """
    session, kiosk = ctx.session, ctx.kiosk
    item, crisis = prepared.item, prepared.crisis
    triggers = [g.trigger for g in crisis]

    now = utcnow()
    clock_suspect = ctx.settings.clock.suspect(item.taken_at, now)
    if clock_suspect:
        note_suspect(kiosk.public_id, f"submission {item.idempotency_key}", item.taken_at, now)
    if member is not None:
        lock_member(session, member.id)
    rows = _core(session).execute(_SESSION_FACTS, {"session_id": item.session_id})
    results, skipped_ids = session_view(rows, kiosk, member, item, prepared.triage_result)
    view = triage_session(results, identified=member is not None, skipped=skipped_ids)
    referral, crisis_alert = _fold_in(ctx, item, member, view, triggers, clock_suspect)
    answer = item_answer(prepared, view, referral, crisis_alert)
    # The Submission INSERT claims the key; a taken key raises here, inside the savepoint.
    _core(session).execute(_INSERT_SUBMISSION, submission_row(
        kiosk, prepared, member, answer, referral, received_at=now, clock_suspect=clock_suspect))
    note_mismatch(kiosk, prepared)
    # A Core INSERT passes by the ORM listener that fills in an entry's site; by its rule
    # (models/site_of.py: a member has no site of their own, so the actor's) it is the kiosk's.
    _core(session).execute(INSERT_AUDIT, dict(
        at=utcnow(), note=None, actor=kiosk_actor(kiosk), action="submission.received",
        subject=f"member:{member.public_id}" if member else None, site_id=kiosk.site_id,
        detail=audit_detail(prepared)))
    return answer


def item_answer(prepared: Prepared, view: triage_mod.ReferralProposal,
                referral: Referral | None, crisis_alert: bool) -> dict[str, Any]:
    """Return an accepted item's answer (what is stored for its replays, too)."""
    item, result, crisis = prepared.item, prepared.result, prepared.crisis
    outcome = {
        "instrument_id": item.instrument_id,
        "instrument_version": item.instrument_version,
        "scored": result is not None,
        "score": result.as_dict() if result else None,
        "score_mismatch": bool(prepared.diffs),
        "crisis": [g.as_dict() for g in crisis],
        "notices": prepared.notices,
        "next_screeners": list(view.next_screeners),
        "referral": summary(referral) if referral else None,
        "crisis_alert": crisis_alert,
    }
    if item.offline_identity is not None:
        # One answer whether or not the typed id matched: nothing in it may tell the two apart
        # (the visit is over by now, so the kiosk has no use for these details anyway).
        outcome.update(next_screeners=[], referral=None, crisis_alert=False)
    return {"key": item.idempotency_key, "status": "accepted", "result": outcome,
            "crisis": outcome["crisis"], "crisis_recorded": bool(crisis)}


def submission_row(kiosk: Kiosk, prepared: Prepared, member: Member | None,
                   answer: dict[str, Any], referral: Referral | None, *,
                   received_at: datetime, clock_suspect: bool) -> dict[str, Any]:
    """Return the submission table row of an accepted item."""
    item, result = prepared.item, prepared.result
    return dict(
        received_at=received_at, clock_suspect=clock_suspect,
        idempotency_key=item.idempotency_key, request_hash=prepared.digest, kiosk_id=kiosk.id,
        member_id=member.id if member else None, session_id=item.session_id,
        instrument_id=item.instrument_id, instrument_version=item.instrument_version,
        answers=dict(item.answers), skipped=list(item.skipped),
        devices=[device.model_dump(mode="json") for device in item.devices],
        kiosk_result=item.kiosk_result.model_dump(mode="json") if item.kiosk_result else None,
        result=result.as_dict() if result else None, score_mismatch=bool(prepared.diffs),
        crisis=bool(prepared.crisis), taken_at=item.taken_at, response=answer,
        referral_id=referral.id if referral else None,
    )


def audit_detail(prepared: Prepared) -> dict[str, Any]:
    """Return what the audit trail keeps of an accepted item: what happened, no answers."""
    item = prepared.item
    return {"key": item.idempotency_key, "instrument": item.instrument_id,
            "version": item.instrument_version, "scored": prepared.result is not None,
            "score_mismatch": bool(prepared.diffs),
            # A genuine reference honoured after it expired or its kiosk was re-paired.
            **({"late": prepared.late} if prepared.late else {})}


def note_mismatch(kiosk: Kiosk, prepared: Prepared) -> None:
    """Log that the kiosk's own result differed from the server's (which is kept)."""
    if prepared.diffs:
        item = prepared.item
        # Names of the differing fields only: scores are health data and stay out of logs.
        log.warning("kiosk %s score mismatch on submission %s (%s %s): %s differ; "
                    "the server's result is kept", kiosk.public_id, item.idempotency_key,
                    item.instrument_id, item.instrument_version, ", ".join(prepared.diffs))


def _fold_in(ctx: BatchContext, item: SubmissionItem, member: Member | None,
             view: triage_mod.ReferralProposal, triggers: list[str], clock_suspect: bool,
             ) -> tuple[Referral | None, bool]:
    """Fold the session's findings into the member's referral, or alert staff to a crisis.

    Returns (the member's referral, whether anonymous crisis alerts were raised).
    """
    session, kiosk = ctx.session, ctx.kiosk
    actor = kiosk_actor(kiosk)
    if member is not None:
        referral = fold(session, member, view, actor=actor, cause="submission",
                        site_id=kiosk.site_id)
        if triggers:
            subject = f"referral:{referral.public_id}" if referral else None
            audit_crisis(session, actor, triggers, subject, kiosk.site_id)
        return referral, False
    for trigger in triggers:
        raise_anonymous_alert(session, kiosk, trigger, item.taken_at,
                              key=alert_key(item.idempotency_key, trigger),
                              clock_suspect=clock_suspect)
    return None, bool(triggers)


def session_view(
    rows: Iterable[Sequence[Any]], kiosk: Kiosk, member: Member | None, item: SubmissionItem,
    current: ScoreResult | None, earlier: Iterable[Sequence[Any]] = (),
) -> tuple[dict[str, ScoreResult], dict[str, list[str]]]:
    """Return (results, skipped) of the item's kiosk session, the latest attempt per instrument.

    ``rows`` are the session's stored items (``_SESSION_FACTS`` order), ``earlier`` those of
    the same batch not stored yet (same shape, in batch order); the current item is placed by
    its taken_at like the others, so a late upload does not override a newer attempt.
    """
    attempts: list[tuple[Any, int, str, ScoreResult | None, list[str]]] = []
    for iid, version, stored, skipped_ids, crisis, taken_at, member_id, kiosk_id in (
            *rows, *earlier):
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
