"""The member's ONE open referral: folding findings in, consent, the outbox row, crisis alerts.

Every change bumps ``Referral.version`` and upserts one pending ``OutboxMessage`` per referral
(kind ``referral``, key ``referral:<public id>:v<version>``) whose priority orders the queue:
crisis 0 jumps every other row. The FHIR forwarder (a later issue) reads these rows; the row is
the contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from shared import triage as triage_mod
from shared.assessments import ScoreResult
from shared.schemas.submissions import OfflineIdentity
from shared.triage import ReferralProposal

from ..models import CrisisAlert, Kiosk, Member, OutboxMessage, Referral, utcnow
from ..models.site_of import audit_site
from .errors import ServiceError
from .identify import match_offline
from .members import lock_member
from .pairing import kiosk_actor
from .statements import INSERT_AUDIT

# Lower is sooner. Crisis must be 0: the forwarder drains the queue in this order.
OUTBOX_PRIORITY: dict[str, int] = {"crisis": 0, "urgent": 1, "soon": 5, "routine": 10}

# Statements built once (building a select() per call costs more than running it on SQLite).
_OPEN_REFERRAL = select(Referral).where(Referral.member_id == bindparam("member_id"),
                                        Referral.status != "closed")
_OPEN_REFERRALS = select(Referral).where(Referral.member_id.in_(bindparam("ids", expanding=True)),
                                         Referral.status != "closed")
_OUTBOX = cast(Table, OutboxMessage.__table__)
_INSERT_OUTBOX = _OUTBOX.insert()
# Repoint the referral's pending row in one statement; WHERE status = 'pending' is re-checked
# at write time, so a row the forwarder has just sent is left alone and a new one is queued.
_REPOINT_OUTBOX = _OUTBOX.update().where(
    _OUTBOX.c.referral_id == bindparam("rid"), _OUTBOX.c.status == "pending"
).values(key=bindparam("new_key"), payload=bindparam("new_payload"),
         priority=bindparam("new_priority"))
# A crisis must not sit out a retry backoff left over from a routine version.
_REPOINT_OUTBOX_NOW = _REPOINT_OUTBOX.values(next_attempt_at=bindparam("new_due"))


def empty_proposal() -> ReferralProposal:
    """Return a proposal with no findings (a referral opened only because the member asked)."""
    return triage_mod.triage({}, identified=True)


def open_referral(session: Session, member: Member) -> Referral | None:
    """Return the member's open referral (status other than closed), if any."""
    return session.scalars(_OPEN_REFERRAL, {"member_id": member.id}).first()


def result_from_dict(data: Mapping[str, Any]) -> ScoreResult:
    """Rebuild a stored ScoreResult (as_dict shape) for triage."""
    return ScoreResult(
        instrument=str(data["instrument"]),
        version=str(data["version"]),
        total=data.get("total"),
        band=str(data["band"]),
        flags=frozenset(data.get("flags", ())),
    )


def summary(referral: Referral) -> dict[str, Any]:
    """Return the short referral shape included in kiosk answers."""
    return {
        "referral_id": referral.public_id,
        "priority": referral.priority,
        "programs": list(referral.programs),
        "version": referral.version,
        "forward_now": referral.forward_now,
    }


def _outbox_payload(referral: Referral, member: Member) -> dict[str, Any]:
    proposal = referral.proposal or {}
    return {
        "referral_id": referral.public_id,
        "version": referral.version,
        "member_public_id": member.public_id,
        "member_id": member.member_id,
        "status": referral.status,
        "priority": referral.priority,
        "programs": list(referral.programs),
        "reasons": [r.get("code") for r in proposal.get("reasons", [])],
        "crisis_triggers": [g.get("trigger") for g in proposal.get("crisis", [])],
        "screened": list(proposal.get("screened", [])),
        "forward_now": referral.forward_now,
        "consent": referral.consent,
        "contact_method": referral.contact_method,
        "contact_time": referral.contact_time,
        # What the member typed at the kiosk wins over the roster's contact details.
        "contact_phone": referral.contact_phone or member.phone,
        "contact_email": referral.contact_email or member.email,
    }


def upsert_outbox(session: Session, referral: Referral, member: Member, *,
                  new: bool = False) -> None:
    """Point the referral's one pending outbox row at its current version (or create it).

    ``new=True`` says the referral was created in this transaction, so it has no row yet.
    """
    key = f"referral:{referral.public_id}:v{referral.version}"
    payload = _outbox_payload(referral, member)
    priority = OUTBOX_PRIORITY[referral.priority]
    now = utcnow()
    if not new:
        params = {"rid": referral.id, "new_key": key, "new_payload": payload,
                  "new_priority": priority}
        if priority == 0:
            params["new_due"] = now
        statement = _REPOINT_OUTBOX_NOW if priority == 0 else _REPOINT_OUTBOX
        if session.execute(statement, params).rowcount:  # type: ignore[attr-defined]
            return
    session.execute(_INSERT_OUTBOX, {"kind": "referral", "key": key, "priority": priority,
                                     "payload": payload, "referral_id": referral.id,
                                     "next_attempt_at": now})


def _audit(session: Session, actor: str, action: str, subject: str | None,
           detail: dict[str, Any], site_id: int | None = None,
           rows: list[dict[str, Any]] | None = None) -> None:
    # A Core INSERT skips the listener that fills in an audit row's site, so the site is
    # given here (the kiosk's, when a kiosk acts) or worked out by the listener's own rule:
    # without it, the site's staff would never see the entry.
    if site_id is None:
        site_id = audit_site(session.connection(), subject, actor, None)
    row = {"at": utcnow(), "note": None, "actor": actor, "action": action, "subject": subject,
           "detail": detail, "site_id": site_id}
    if rows is not None:
        rows.append(row)  # the caller inserts it, with others, in one statement
        return
    session.execute(INSERT_AUDIT, row)


def _apply(session: Session, referral: Referral, proposal: ReferralProposal) -> None:
    referral.proposal = proposal.as_dict()
    referral.priority = proposal.priority
    referral.programs = list(proposal.programs)
    if proposal.priority == "crisis":
        referral.forward_now = True


def fold(
    session: Session,
    member: Member,
    proposal: ReferralProposal,
    *,
    actor: str,
    cause: str,
    site_id: int | None = None,
) -> Referral | None:
    """Merge a session's proposal into the member's open referral; open one if needed.

    The priority can only rise (``shared.triage.merge``). Returns the open referral, or None
    when there is none and the proposal needs none. Call ``members.lock_member`` first.
    """
    return fold_all(session, member, [proposal], actor=actor, cause=cause, site_id=site_id)


def open_referrals(session: Session, member_ids: Sequence[int]) -> dict[int, Referral]:
    """Return the open referral of each of these members that has one, in one query."""
    if not member_ids:
        return {}
    return {r.member_id: r for r in session.scalars(_OPEN_REFERRALS, {"ids": list(member_ids)})}


def fold_all(
    session: Session,
    member: Member,
    proposals: Sequence[ReferralProposal],
    *,
    actor: str,
    cause: str,
    found: Mapping[int, Referral] | None = None,
    site_id: int | None = None,
    audit_rows: list[dict[str, Any]] | None = None,
) -> Referral | None:
    """Fold several proposals into the member's open referral, in order, as one change.

    The same merges as ``fold`` one proposal at a time, but the referral gets one new version,
    its outbox row one repoint and the audit one row, however many proposals changed it (a
    drained backlog folds each member once per batch). Call ``members.lock_member`` first.
    ``found``: the open referrals already read (``open_referrals``, after the locks).
    ``audit_rows``: the audit row is added there, for the caller to insert in the same
    transaction together with others (a backlog batch's members), instead of written here.
    """
    referral = found.get(member.id) if found is not None else open_referral(session, member)
    created = changed = False
    for proposal in proposals:
        if referral is None:
            if not (proposal.needs_referral or proposal.crisis):
                continue
            referral = Referral(member_id=member.id, advocate_id=member.advocate_id,
                                version=1, status="new", consent=None, forward_now=False)
            _apply(session, referral, proposal)
            created = changed = True
            continue
        merged = triage_mod.merge(_stored_proposal(referral), proposal)
        if merged.as_dict() == referral.proposal:
            continue
        _apply(session, referral, merged)
        changed = True
    if referral is None or not changed:
        return referral
    if created:
        session.add(referral)
        session.flush()
    else:
        referral.version += 1
    upsert_outbox(session, referral, member, new=created)
    _audit(session, actor, "referral.updated", f"referral:{referral.public_id}",
           {"version": referral.version, "cause": cause}, site_id, audit_rows)
    return referral


def _stored_proposal(referral: Referral) -> ReferralProposal:
    if not referral.proposal:
        return empty_proposal()
    return ReferralProposal.from_dict(referral.proposal)


_RECENT_ALERTS = (select(CrisisAlert).join(Kiosk, Kiosk.id == CrisisAlert.kiosk_id)
                  .where(Kiosk.site_id == bindparam("site_id"),
                         CrisisAlert.received_at >= bindparam("since"))
                  .order_by(CrisisAlert.received_at.desc(), CrisisAlert.id.desc()))


def recent_alerts(session: Session, site_id: int, since: datetime) -> list[CrisisAlert]:
    """Return the site's crisis alerts received since a time, newest first (server clock)."""
    return list(session.scalars(_RECENT_ALERTS, {"site_id": site_id, "since": since}))


def _required_with_consent(contact_method: str | None, contact_time: str | None) -> None:
    missing = [name for name, value in (("contact_method", contact_method),
                                        ("contact_time", contact_time)) if value is None]
    if missing:
        raise ServiceError("invalid", "Invalid request",
                           [{"field": f, "message": "is required when consent is true"}
                            for f in missing],
                           "How and when to contact the member are required with consent.")


def record_offline_consent(
    session: Session, kiosk: Kiosk, typed: OfflineIdentity, *, consent: bool,
    contact_method: str | None, contact_time: str | None, phone: str | None,
    email: str | None, secret: str, per_day: int,
) -> dict[str, Any]:
    """Match an id typed offline and record its consent; the same answer whether it matched.

    Only checks that do not
    depend on the roster refuse the request; a matched member whose roster entry lacks the
    chosen channel (and none was typed) cannot be contacted that way, so that consent is
    audited as unusable instead of answered differently.
    """
    if consent:
        _required_with_consent(contact_method, contact_time)
    member = match_offline(session, kiosk=kiosk, typed_id=typed.id,
                           birth_date=typed.birth_date, secret=secret, per_day=per_day,
                           phone=phone or typed.phone, email=email or typed.email)
    if member is not None:
        try:
            record_consent(session, kiosk, member, consent=consent,
                           contact_method=contact_method, contact_time=contact_time,
                           phone=phone, email=email)
        except ServiceError as exc:
            _audit(session, kiosk_actor(kiosk), "referral.consent_unusable",
                   f"member:{member.public_id}",
                   {"fields": [e["field"] for e in exc.errors]}, kiosk.site_id)
    return {"referral_id": None, "consent": consent,
            "contact_method": contact_method if consent else None,
            "contact_time": contact_time if consent else None, "priority": None,
            "version": None}


def record_consent(
    session: Session,
    kiosk: Kiosk,
    member: Member,
    *,
    consent: bool,
    contact_method: str | None,
    contact_time: str | None,
    phone: str | None,
    email: str | None,
) -> dict[str, Any]:
    """Attach consent and contact preference to the member's open referral.

    consent=True with no open referral opens one (the member asked to be contacted);
    consent=False with none stores nothing. Raises ServiceError naming a missing field.
    """
    if consent:
        _required_with_consent(contact_method, contact_time)
        if contact_method in ("phone", "text") and not (phone or member.phone):
            raise ServiceError("invalid", "Invalid request",
                               [{"field": "phone",
                                 "message": "is required: no phone number is on file"}])
        if contact_method == "email" and not (email or member.email):
            raise ServiceError("invalid", "Invalid request",
                               [{"field": "email",
                                 "message": "is required: no email address is on file"}])
    lock_member(session, member.id)
    referral = open_referral(session, member)
    if referral is None:
        if not consent:
            return {"referral_id": None, "consent": False, "contact_method": None,
                    "contact_time": None, "priority": None, "version": None}
        referral = Referral(member_id=member.id, advocate_id=member.advocate_id, version=1,
                            status="new", forward_now=False)
        _apply(session, referral, empty_proposal())
        session.add(referral)
        session.flush()
        created = True
    else:
        referral.version += 1
        created = False
    referral.consent = consent
    referral.consent_at = utcnow()
    if consent:
        referral.contact_method = contact_method
        referral.contact_time = contact_time
        referral.contact_phone = phone
        referral.contact_email = email
    else:
        referral.contact_method = referral.contact_time = None
        referral.contact_phone = referral.contact_email = None
    upsert_outbox(session, referral, member, new=created)
    _audit(session, kiosk_actor(kiosk), "referral.updated", f"referral:{referral.public_id}",
           {"version": referral.version, "cause": "consent", "consent": consent},
           kiosk.site_id)
    return {"referral_id": referral.public_id, "consent": consent,
            "contact_method": referral.contact_method, "contact_time": referral.contact_time,
            "priority": referral.priority, "version": referral.version}
