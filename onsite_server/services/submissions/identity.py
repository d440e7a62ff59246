"""Who an item is for: a member reference, an id typed offline, or nobody (anonymous)."""

from __future__ import annotations

from pydantic import ValidationError

from shared.schemas.submissions import OfflineIdentity, SubmissionItem

from ...models import Member
from .. import claims
from ..identify import id_variants, match_offline
from ..members import MemberRefError, resolve_filed_ref
from .context import (
    BatchContext,
    Entry,
    ItemProblem,
    _find,
    _raw_key,
)


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
