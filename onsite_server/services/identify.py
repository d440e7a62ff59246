"""Identify a member at a kiosk without letting anyone enumerate the roster.

Three defences:
- one answer for every miss (unknown id, wrong birth date, another employer's member);
- the same work on every path: one indexed lookup matching employee id OR badge id, then
  exactly two keyed birth-date comparisons (real candidates padded with a dummy) with
  ``hmac.compare_digest``, one member reference signed, one audit row written;
- a per-kiosk rate limit kept in the database (see ``ratelimit``), plus a response-time
  floor applied by the view (``pad_to_floor``).

An id typed while the kiosk was offline reaches the server inside submission items and is
matched by ``match_offline``: the same lookup, audited the same way, capped per kiosk per day.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import BindParameter, bindparam, or_, select
from sqlalchemy.orm import Session

from ..models import Kiosk, Member, Site, utcnow
from . import claims, ratelimit
from .errors import TooManyAttempts
from .members import make_member_ref
from .pairing import kiosk_actor
from .statements import INSERT_AUDIT

ATTEMPT_ACTION = "identify.attempt"
# Ids typed while a kiosk was offline, matched when its items arrive (``match_offline``).
OFFLINE_ACTION = "identify.offline"
OFFLINE_CAPPED_ACTION = "identify.offline_capped"
OFFLINE_WINDOW_SECONDS = 24 * 3600
NOT_FOUND_TITLE = "Not Found"
NOT_FOUND_DETAIL = "No match. Check your ID and birth date, or continue without signing in."
# Compared on every miss so a miss does the same work as a hit; never a member's public id.
_DUMMY_PUBLIC_ID = "00000000-0000-0000-0000-000000000000"
_CANDIDATES = 2  # an id can match one member's employee id and another's badge id


class RateLimited(TooManyAttempts):
    """Too many identify attempts from this kiosk in the last minute."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after, "Too many sign-in attempts from this kiosk; try again in "
                                      f"{retry_after} s.", reason="identify_rate_limited")


@dataclass(frozen=True)
class Identified:
    """A match: the opaque reference and what the kiosk may show."""

    member_ref: str
    first_name: str
    language: str


@dataclass(frozen=True)
class _Candidate:
    public_id: str
    first_name: str
    language: str
    birth_date: date
    real: bool


_DUMMY = _Candidate(_DUMMY_PUBLIC_ID, "", "en", date(1900, 1, 1), real=False)
# Built once (building a select() per call costs more than running it on SQLite): members of
# the employer whose employee id or badge id is one of the typed id's spellings.
_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
_CANDIDATE_ROWS = (
    select(Member.public_id, Member.first_name, Member.language, Member.birth_date,
           Member.employee_id.in_(_IDS).label("by_employee"))
    .where(Member.employer_id == bindparam("employer_id"),
           or_(Member.employee_id.in_(_IDS), Member.badge_id.in_(_IDS)))
    .limit(_CANDIDATES))
# Every member of the employer any of a batch's typed ids names (match_offline_many): one
# statement for a batch, where one per person cost more than the rest of the match.
_CANDIDATES_OF_MANY = (
    select(Member.public_id, Member.first_name, Member.language, Member.birth_date,
           Member.employee_id, Member.badge_id)
    .where(Member.employer_id == bindparam("employer_id"),
           or_(Member.employee_id.in_(_IDS), Member.badge_id.in_(_IDS)))
    .order_by(Member.id))




def id_variants(typed_id: str) -> list[str]:
    """Return the spellings an id is matched under: as sent, and upper-cased."""
    value = typed_id.strip()
    return list(dict.fromkeys([value, value.upper()]))


def _birth_digest(key: bytes, value: date) -> bytes:
    return hmac.new(key, value.isoformat().encode("ascii"), hashlib.sha256).digest()


def _lookup(session: Session, kiosk: Kiosk, typed_id: str, birth_date: date,
            secret: str) -> _Candidate | None:
    """Return the real candidate matching id + birth date at kiosk's employer, or None.

    The same work on every path: one indexed lookup, then exactly ``_CANDIDATES`` keyed
    birth-date comparisons (real candidates padded with the dummy).
    """
    site = session.get(Site, kiosk.site_id)
    employer_id = site.employer_id if site is not None else -1
    ids = id_variants(typed_id)
    rows = session.execute(_CANDIDATE_ROWS, {"employer_id": employer_id, "ids": ids}).all()
    # An employee-id match wins over a badge-id match of someone else.
    ordered = sorted(rows, key=lambda r: not r.by_employee)
    candidates = [_Candidate(r.public_id, r.first_name, r.language, r.birth_date, True)
                  for r in ordered]
    key = hmac.new(secret.encode("utf-8"), b"identify.birth_date", hashlib.sha256).digest()
    return _choose(key, birth_date, candidates)


def _choose(key: bytes, typed_birth_date: date, candidates: list[_Candidate]
            ) -> _Candidate | None:
    """Return the first real candidate whose birth date matches: the same keyed comparisons
    for every attempt (real candidates padded with the dummy to ``_CANDIDATES``)."""
    candidates = candidates + [_DUMMY] * (_CANDIDATES - len(candidates))
    typed = _birth_digest(key, typed_birth_date)
    chosen: _Candidate | None = None
    for cand in candidates:
        same = hmac.compare_digest(_birth_digest(key, cand.birth_date), typed)
        if same and cand.real and chosen is None:
            chosen = cand
    return chosen


def _lookup_many(session: Session, kiosk: Kiosk, attempts: Sequence[OfflineAttempt],
                 secret: str) -> list[_Candidate | None]:
    """``_lookup`` for each attempt, in order, with one statement for all of them.

    Each attempt's candidates are the members its id's spellings name, employee-id matches
    first (they win over someone else's badge id), at most ``_CANDIDATES`` of them, compared
    as ``_lookup`` compares them.
    """
    if not attempts:
        return []
    site = session.get(Site, kiosk.site_id)
    employer_id = site.employer_id if site is not None else -1
    spellings = [id_variants(a.typed_id) for a in attempts]
    wanted = sorted({spelling for ids in spellings for spelling in ids})
    by_employee: dict[str, list[_Candidate]] = {}
    by_badge: dict[str, list[_Candidate]] = {}
    for r in session.execute(_CANDIDATES_OF_MANY, {"employer_id": employer_id, "ids": wanted}):
        cand = _Candidate(r.public_id, r.first_name, r.language, r.birth_date, True)
        by_employee.setdefault(r.employee_id, []).append(cand)
        if r.badge_id is not None:
            by_badge.setdefault(r.badge_id, []).append(cand)
    key = hmac.new(secret.encode("utf-8"), b"identify.birth_date", hashlib.sha256).digest()
    found: list[_Candidate | None] = []
    for attempt, ids in zip(attempts, spellings, strict=True):
        named: list[_Candidate] = []
        for table in (by_employee, by_badge):
            for spelling in ids:
                named += [c for c in table.get(spelling, ()) if c not in named]
        found.append(_choose(key, attempt.birth_date, named[:_CANDIDATES]))
    return found


def _lock_kiosk(session: Session, kiosk: Kiosk) -> None:
    # Serialise this kiosk's attempts across workers so count-then-insert cannot overshoot
    # (PostgreSQL row lock; SQLite already holds its write lock from BEGIN IMMEDIATE).
    session.execute(select(Kiosk.id).where(Kiosk.id == kiosk.id).with_for_update())


def identify(session: Session, *, kiosk: Kiosk, typed_id: str, birth_date: date, secret: str,
             rate_per_minute: int) -> Identified | None:
    """Return the member matching id + birth date at kiosk's employer, or None for any miss.

    Raises RateLimited before touching the roster when the kiosk is over its limit. The
    attempt row is added to `session`; the caller commits it whatever the outcome.
    """
    actor = kiosk_actor(kiosk)
    _lock_kiosk(session, kiosk)
    decision = ratelimit.check(session, actor=actor, action=ATTEMPT_ACTION,
                               limit=rate_per_minute)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)
    chosen = _lookup(session, kiosk, typed_id, birth_date, secret)
    target = chosen or _DUMMY
    # Signed on both paths so a miss costs what a hit costs; a miss's reference is discarded.
    ref = make_member_ref(secret, Member(public_id=target.public_id), kiosk)
    ratelimit.record(
        session, actor=actor, action=ATTEMPT_ACTION,
        subject=f"member:{target.public_id}" if chosen else None,
        detail={"outcome": "match" if chosen else "no_match"},
    )
    if chosen is None:
        return None
    return Identified(member_ref=ref, first_name=chosen.first_name, language=chosen.language)


def identify_counted(transaction: Callable[[], AbstractContextManager[Session]], *,
                     kiosk: Kiosk, typed_id: str, birth_date: date, secret: str,
                     rate_per_minute: int) -> Identified | None:
    """Identify as ``identify`` does, in a transaction of its own that commits the attempt.

    A miss is answered 404, and a refused request's own work is rolled back: the attempt must
    count toward the kiosk's limit all the same, so it is committed here, whatever the answer,
    before the caller pads the response time (the write lock is not held through the pad).
    Over the limit, RateLimited is raised and nothing is written.
    """
    with transaction() as session:
        return identify(session, kiosk=kiosk, typed_id=typed_id, birth_date=birth_date,
                        secret=secret, rate_per_minute=rate_per_minute)


@dataclass(frozen=True)
class OfflineAttempt:
    """An id and birth date typed while a kiosk was offline, with any contact typed too."""

    typed_id: str
    birth_date: date
    phone: str | None = None
    email: str | None = None


def match_offline(session: Session, *, kiosk: Kiosk, typed_id: str, birth_date: date,
                  secret: str, per_day: int, phone: str | None = None,
                  email: str | None = None) -> Member | None:
    """Match an id typed while the kiosk was offline, as its items arrive; None for a miss.

    The kiosk learns nothing from this (its answer is the same either way), so the defence
    here is the cap: at most ``per_day`` attempts per kiosk in any 24 hours are looked up;
    past it the items are filed as anonymous. Every attempt is audited like identify's, a
    capped one under its own action so it does not extend the cap.
    """
    attempt = OfflineAttempt(typed_id, birth_date, phone, email)
    return match_offline_many(session, kiosk=kiosk, attempts=[attempt], secret=secret,
                              per_day=per_day)[0]


def match_offline_many(session: Session, *, kiosk: Kiosk, attempts: Sequence[OfflineAttempt],
                       secret: str, per_day: int) -> list[Member | None]:
    """``match_offline`` for several people of one batch, in order: one lock, count and read.

    The cap admits the attempts in order while the kiosk has attempts left in its window,
    as one call per attempt would; each is audited and looked up the same way.
    """
    if not attempts:
        return []
    actor = kiosk_actor(kiosk)
    _lock_kiosk(session, kiosk)
    left = ratelimit.remaining(session, actor=actor, action=OFFLINE_ACTION, limit=per_day,
                               window_seconds=OFFLINE_WINDOW_SECONDS)
    found: list[_Candidate | None] = []
    # The attempts' audit rows (what ratelimit.record would add one by one) go in together at
    # the end, in one multi-row INSERT.
    audit: list[dict[str, Any]] = []

    def attempted(action: str, subject: str | None, outcome: str) -> None:
        # A Core INSERT passes by the ORM listener that looks up each entry's site (a SELECT
        # per row); by its rule (models/site_of.py) a kiosk's entry about a member, or about
        # nobody, is the kiosk's site's.
        audit.append({"at": utcnow(), "actor": actor, "action": action, "subject": subject,
                      "detail": {"outcome": outcome}, "note": None, "site_id": kiosk.site_id})

    with session.no_autoflush:
        looked_up = _lookup_many(session, kiosk, attempts[:max(left, 0)], secret)
        for n, attempt in enumerate(attempts):
            if n >= left:
                attempted(OFFLINE_CAPPED_ACTION, None, "capped")
                found.append(None)
                continue
            chosen = looked_up[n]
            attempted(OFFLINE_ACTION, f"member:{chosen.public_id}" if chosen else None,
                      "match" if chosen else "no_match")
            if chosen is None:
                # Looked up and missed (never a capped attempt, so the cap bounds these too): kept
                # as an unmatched claim with the member's contact fallback, for staff to follow up.
                claims.note_unmatched(session, kiosk, typed_id=attempt.typed_id,
                                      birth_date=attempt.birth_date, phone=attempt.phone,
                                      email=attempt.email)
            found.append(chosen)
    session.flush()  # the unmatched claims, as before: the same transaction either way
    session.connection().execute(INSERT_AUDIT, audit)
    wanted = {c.public_id for c in found if c is not None}
    members = {m.public_id: m for m in session.scalars(
        select(Member).where(Member.public_id.in_(wanted)))} if wanted else {}
    return [members[c.public_id] if c is not None else None for c in found]


def pad_to_floor(started: float, floor_seconds: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep until floor_seconds have passed since started (a monotonic clock reading)."""
    remaining = floor_seconds - (clock() - started)
    if remaining > 0:
        sleep(remaining)
