"""Who an item is for: a member reference, an id typed offline, or nobody (anonymous)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy import bindparam, select

from shared.schemas.submissions import OfflineIdentity, SubmissionItem

from ...models import Member, Submission
from .. import claims
from ..identify import OfflineAttempt, id_variants, match_offline, match_offline_many
from ..members import MemberRefError, resolve_filed_ref
from .context import (
    BatchContext,
    Entry,
    ItemProblem,
    _find,
    _raw_key,
)

_STORED_KEYS = select(Submission.idempotency_key).where(
    Submission.idempotency_key.in_(bindparam("keys", expanding=True)))


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


def _member(ctx: BatchContext, item: SubmissionItem) -> tuple[Member | None, str | None]:
    if item.offline_identity is not None:
        return _match_offline(ctx, item.offline_identity, item.idempotency_key), None
    if item.anonymous or item.member_ref is None:
        return None, None
    try:
        return _resolve(ctx, item.member_ref)
    except MemberRefError as exc:
        raise ItemProblem([{"field": "member_ref", "message": exc.message}]) from exc


def match_offline_first(ctx: BatchContext, entries: Sequence[Entry]) -> None:
    """Match every person the batch names by an id typed offline at once, in entry order.

    One kiosk lock, one count against the cap and one member read for the whole batch
    (``identify.match_offline_many``), where one call per person took each of them again; the
    answers land in the batch's cache, so ``_match_offline`` then only reads them. Entries
    whose key is already stored are left out: a replay is not matched again.
    """
    typed: list[tuple[OfflineIdentity, str | None]] = []
    for entry in entries:
        p = entry.prepared
        if p is not None and p.problem is None and p.item.offline_identity is not None:
            typed.append((p.item.offline_identity, p.item.idempotency_key))
        elif entry.triggers and isinstance(entry.raw, dict) and entry.raw.get(
                "offline_identity") is not None:
            try:  # a refused entry's crisis still goes to the member the id names
                identity = OfflineIdentity.model_validate(entry.raw["offline_identity"])
            except ValidationError:
                continue
            typed.append((identity, _raw_key(entry.raw)))
    if not typed:
        return
    keys = [key for _, key in typed if key is not None] or [""]
    ctx.stored_keys = set(ctx.read_session.scalars(_STORED_KEYS, {"keys": keys}))
    attempts: dict[tuple[str, str], OfflineAttempt] = {}
    for identity, key in typed:
        cache_key = _person(identity)
        if key in ctx.stored_keys or cache_key in ctx.offline or cache_key in attempts:
            continue
        attempts[cache_key] = OfflineAttempt(identity.id, identity.birth_date, identity.phone,
                                             identity.email)
    if not attempts:
        return
    matched = match_offline_many(ctx.session, kiosk=ctx.kiosk, attempts=list(attempts.values()),
                                 secret=ctx.settings.secret,
                                 per_day=ctx.settings.offline_per_day)
    # Audited and counted in the write transaction: every later item needs a SAVEPOINT.
    ctx.wrote = True
    ctx.offline.update(zip(attempts, matched, strict=True))


def _person(typed: OfflineIdentity) -> tuple[str, str]:
    # The upper-cased spelling: one cache entry per person.
    return id_variants(typed.id)[-1], typed.birth_date.isoformat()


def _match_offline(ctx: BatchContext, typed: OfflineIdentity, key: str | None
                   ) -> Member | None:
    """Match an offline-typed identity once per batch; None files the item as anonymous.

    A replay of a stored key is not matched again: it will be answered with its first answer,
    and a second match would only spend the kiosk's cap.
    """
    if key is not None:
        stored = (key in ctx.stored_keys if ctx.stored_keys is not None
                  else _find(ctx.read_session, key) is not None)
        if stored:
            return None
    cache_key = _person(typed)
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
                              ctx.settings.ref_max_age, fallbacks=ctx.settings.secret_fallbacks)
    ctx.members[ref] = found
    return found
