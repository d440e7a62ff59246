"""One advocate per member: assignment by rules, and the advocate-link QR that connects them.

Assignment rules are data (``assets/assignment/rules.json``): each step narrows the active
advocates (a step that would leave nobody is skipped), then the load is balanced. An
assignment, once made, stays; a reassignment (central says otherwise) revokes the member's
advocate links, so an old QR never opens the wrong person's page.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.paths import assets_dir
from shared.qr import vcard
from shared.tokens import Purpose, mint

from ..models import Advocate, IssuedToken, Member, utcnow
from ..models.site_of import audit_site
from .errors import ServiceError
from .members import lock_member
from .referrals import open_referral
from .signing import KeyStore
from .statements import INSERT_AUDIT

STEPS = ("program", "language")


class NoAdvocate(ServiceError):
    """No active advocate exists to assign (409: the request may succeed once one does)."""

    def __init__(self, detail: str) -> None:
        super().__init__("conflict", "No advocate available", [], detail, reason="no_advocate")


@dataclass(frozen=True)
class AssignmentRules:
    """Which narrowing steps apply, in order, before the load is balanced."""

    steps: tuple[str, ...]


def parse_rules(data: dict[str, Any]) -> AssignmentRules:
    """Read assignment rules; an unknown step is an error, not a silent no-op."""
    steps = tuple(str(s["id"]) for s in data.get("steps", []))
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"assignment rules: unknown steps {', '.join(unknown)}")
    return AssignmentRules(steps=steps)


@lru_cache(maxsize=1)
def load_rules() -> AssignmentRules:
    """Load the assignment rules from assets/ (cached: they change with a release)."""
    path = assets_dir() / "assignment" / "rules.json"
    return parse_rules(json.loads(path.read_text(encoding="utf-8")))


def _narrow(candidates: list[Advocate], keep: Sequence[Advocate]) -> list[Advocate]:
    return list(keep) if keep else candidates


def choose_advocate(session: Session, member: Member, rules: AssignmentRules,
                    need: str | None) -> Advocate:
    """Pick an advocate for a member by the rules (no change is made)."""
    candidates = list(session.scalars(select(Advocate).where(Advocate.active.is_(True))
                                      .order_by(Advocate.public_id)))
    if not candidates:
        raise NoAdvocate("no active advocate is available")
    for step in rules.steps:
        if step == "program" and need:
            candidates = _narrow(candidates, [a for a in candidates if need in (a.programs or [])])
        elif step == "language":
            candidates = _narrow(candidates, [a for a in candidates
                                              if member.language in (a.languages or [])])
    loads = dict(session.execute(
        select(Member.advocate_id, func.count()).where(Member.advocate_id.is_not(None))
        .group_by(Member.advocate_id)).tuples().all())
    return min(candidates, key=lambda a: (loads.get(a.id, 0), a.public_id))


def ensure_assigned(session: Session, member: Member, *, actor: str,
                    rules: AssignmentRules | None = None) -> Advocate:
    """Return the member's advocate, assigning one by the rules if there is none yet."""
    lock_member(session, member.id)
    if member.advocate_id is not None:
        current = session.get(Advocate, member.advocate_id)
        if current is not None:
            return current
    referral = open_referral(session, member)
    need = str(referral.programs[0]) if referral is not None and referral.programs else None
    advocate = choose_advocate(session, member, rules or load_rules(), need)
    member.advocate_id = advocate.id
    session.flush()
    subject = f"member:{member.public_id}"
    # A Core INSERT skips the listener that fills in the site: the same rule, applied here.
    session.execute(INSERT_AUDIT, {"at": utcnow(), "note": None, "actor": actor,
                                    "action": "member.assigned", "subject": subject,
                                    "detail": {"advocate": advocate.public_id, "need": need},
                                    "site_id": audit_site(session.connection(), subject,
                                                          actor, None)})
    return advocate


def reassign(session: Session, member: Member, advocate: Advocate, *, actor: str,
             reason: str) -> None:
    """Give the member another advocate (central said so) and revoke their old links."""
    if member.advocate_id == advocate.id:
        return
    member.advocate_id = advocate.id
    now = utcnow()
    session.execute(update(IssuedToken).where(
        IssuedToken.purpose == Purpose.ADVOCATE_LINK.label,
        IssuedToken.subject == member.public_id, IssuedToken.revoked_at.is_(None),
    ).values(revoked_at=now, revoked_reason="reassigned"))
    subject = f"member:{member.public_id}"
    session.execute(INSERT_AUDIT, {"at": now, "note": None, "actor": actor,
                                    "action": "member.reassigned", "subject": subject,
                                    "detail": {"advocate": advocate.public_id,
                                               "cause": reason},
                                    "site_id": audit_site(session.connection(), subject,
                                                          actor, None)})


@dataclass(frozen=True)
class AdvocateLink:
    """What the kiosk shows: the advocate's public details and the two QR contents."""

    advocate: Advocate
    link_url: str
    vcard: str
    token_id: str


def advocate_link(session: Session, member: Member, *, keys: KeyStore, web_url: str,
                  lifetime: timedelta, actor: str, organization: str | None = None,
                  now: datetime | None = None) -> AdvocateLink:
    """Issue an advocate-link token for the member (assigning an advocate first if needed)."""
    advocate = ensure_assigned(session, member, actor=actor)
    issued = now or utcnow()
    token_id = str(uuid.uuid4())
    token = mint(keys.current(Purpose.ADVOCATE_LINK),
                 {"subject": member.public_id, "advocate": advocate.public_id},
                 lifetime=lifetime, now=issued, token_id=token_id)
    session.add(IssuedToken(token_id=token_id, purpose=Purpose.ADVOCATE_LINK.label,
                            subject=member.public_id, advocate_id=advocate.id,
                            issued_at=issued, expires_at=issued + lifetime))
    card = vcard(advocate.name, phone=advocate.phone, email=advocate.email,
                 title="Personal health advocate", organization=organization)
    return AdvocateLink(advocate=advocate, link_url=f"{web_url.rstrip('/')}/connect/{token}",
                        vcard=card, token_id=token_id)


def revoked_token_ids(session: Session, now: datetime | None = None) -> set[str]:
    """Return the ids of revoked tokens that have not expired yet (the revocation list)."""
    moment = now or utcnow()
    rows = session.scalars(select(IssuedToken.token_id).where(
        IssuedToken.revoked_at.is_not(None), IssuedToken.expires_at > moment))
    return set(rows)
