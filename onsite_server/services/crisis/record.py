"""Recording a crisis, whatever else is wrong (DESIGN.md §3.6): the one place that does it.

A crisis the kiosk saw is recorded as the member's crisis referral when a reference to them
verifies, otherwise as an anonymous alert for staff on site: from an accepted item, from an
entry the server refused (a bad field, a broken neighbour, an invalid envelope), and from a
crisis-alert body the model refused but whose trigger can still be read. Alerts are keyed so
a resend or a replay never raises one twice. Submissions, crisis alerts and the kiosk API
all call these functions; none records a crisis another way.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import triage as triage_mod
from shared.assessments import ScoreResult, available_versions
from shared.assessments.items import NOT_SCORED_BAND

from ...jsonguard import Repeated
from ...models import CrisisAlert, Kiosk, Member, utcnow
from ...models.site_of import audit_site
from ..clock import parse_aware
from ..idempotency import parse_uuid
from ..members import lock_member
from ..pairing import kiosk_actor
from ..referrals import fold
from ..statements import INSERT_AUDIT

log = logging.getLogger("onsite_server.submissions")

_TRIGGERS = {t.trigger: t for t in triage_mod.CRISIS_TRIGGERS}
_ALERT_NAMESPACE = uuid.UUID("0d6f3c3e-4a55-4d0e-9d43-8f1b3f1f6c21")


def audit_crisis(session: Session, actor: str, triggers: Iterable[str],
                 subject: str | None, site_id: int | None = None) -> None:
    """Record that crisis guidance was triggered (the trigger names only, no answers)."""
    # A Core INSERT skips the listener that fills in an audit row's site: given here (the
    # kiosk's) or worked out by the listener's rule, so the site's staff see the entry.
    if site_id is None:
        site_id = audit_site(session.connection(), subject, actor, None)
    for trigger in triggers:
        session.execute(INSERT_AUDIT, {"at": utcnow(), "note": None, "actor": actor,
                                        "action": "crisis.raised", "subject": subject,
                                        "detail": {"trigger": trigger}, "site_id": site_id})


def raise_anonymous_alert(
    session: Session, kiosk: Kiosk, trigger: str, raised_at: datetime, *, key: str,
    clock_suspect: bool = False, from_rejected_item: bool = False,
) -> CrisisAlert:
    """Create (or return the existing) anonymous crisis alert: kiosk, trigger and time only.

    ``raised_at`` is the kiosk's clock, kept as sent; ``received_at`` is the server's, which
    is what lists of recent alerts go by.
    """
    query = select(CrisisAlert).where(CrisisAlert.idempotency_key == key)
    existing = session.scalars(query).first()
    if existing is not None:
        return existing
    alert = CrisisAlert(idempotency_key=key, kiosk_id=kiosk.id, trigger=trigger,
                        raised_at=raised_at, received_at=utcnow(), clock_suspect=clock_suspect,
                        from_rejected_item=from_rejected_item)
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        return session.scalars(query).one()
    audit_crisis(session, kiosk_actor(kiosk), [trigger], None, kiosk.site_id)
    return alert


def raise_lenient_alert(session: Session, kiosk: Kiosk, body: object,
                        clock_suspect: bool = False) -> dict[str, Any]:
    """Raise the alert a refused crisis-alert body still names; say what was recorded.

    The trigger must be one of ours (spelling aside); the key and time are taken when usable,
    else derived from the body (so a resend raises nothing new) and the server's clock.
    """
    raw = body if isinstance(body, dict) else {}
    # A trigger named twice (jsonguard.Repeated): any of its values that is one of ours counts.
    sent = raw.repeated.get("trigger") if isinstance(raw, Repeated) else None
    wanted = {str(value).strip().lower().replace("-", "_")
              for value in (sent or [raw.get("trigger", "")])}
    trigger = next((t.trigger for t in triage_mod.CRISIS_TRIGGERS if t.trigger in wanted), None)
    if trigger is None:
        return {"crisis": [], "crisis_recorded": False}
    key = parse_uuid(raw.get("idempotency_key")) or content_key(kiosk, raw)
    raised_at = parse_aware(raw.get("raised_at"))
    # Without a usable kiosk time the server's stands in, flagged like a clock that is off.
    raise_anonymous_alert(session, kiosk, trigger, raised_at or utcnow(), key=key,
                          clock_suspect=clock_suspect or raised_at is None,
                          from_rejected_item=True)
    return {"crisis": [triage_mod.crisis_guidance(trigger).as_dict()], "crisis_recorded": True}


def record_refused(session: Session, kiosk: Kiosk, raw: object, triggers: Sequence[str], *,
                   member: Member | None, taken_at: datetime | None,
                   suspect: Callable[[datetime, datetime], bool]) -> None:
    """Record crises read from an entry the server did not accept: referral, or staff alert.

    ``member`` is who the crisis is filed for when a reference to them verified; ``taken_at``
    the entry's time when it was read (else its raw ``taken_at``, else now); ``suspect`` the
    server's clock policy. Runs in its own SAVEPOINT.
    """
    actor = kiosk_actor(kiosk)
    now = utcnow()
    taken_at = taken_at or _lenient_time(raw, now)
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
            referral = fold(session, member, view, actor=actor, cause="crisis_in_refused_item",
                            site_id=kiosk.site_id)
            audit_crisis(session, actor, triggers,
                         f"referral:{referral.public_id}" if referral else None, kiosk.site_id)
        else:
            key = _raw_key(raw) or content_key(kiosk, raw)
            clock_suspect = suspect(taken_at, now)
            for trigger in triggers:
                raise_anonymous_alert(session, kiosk, trigger, taken_at,
                                      key=alert_key(key, trigger), clock_suspect=clock_suspect,
                                      from_rejected_item=True)
    log.warning("kiosk %s: crisis (%s) recorded from an item the server refused (%s)",
                kiosk.public_id, ", ".join(triggers),
                "member's referral" if member is not None else "anonymous alert")


def settle(answer: dict[str, Any], shown: Sequence[str],
           record: Callable[[list[str]], None]) -> dict[str, Any]:
    """Record (through ``record``) any crisis an entry shows that its answer did not; say so.

    ``shown`` are the triggers the generous reading found in the entry as sent. The answer's
    ``crisis`` and ``crisis_recorded`` then tell the kiosk what was seen and whether all of it
    is on record.
    """
    seen = answer_triggers(answer)
    recorded = set(seen) if answer["status"] in ("accepted", "replayed") else set()
    wanted = [t.trigger for t in triage_mod.CRISIS_TRIGGERS
              if t.trigger in shown or t.trigger in seen]
    missing = [t for t in wanted if t not in recorded]
    if missing:
        record(missing)
        recorded.update(missing)
    answer["crisis"] = [triage_mod.crisis_guidance(t).as_dict() for t in wanted]
    answer["crisis_recorded"] = bool(wanted) and all(t in recorded for t in wanted)
    return answer


def answer_triggers(answer: Mapping[str, Any]) -> list[str]:
    """Return the triggers an answer (fresh or stored by an earlier version) reports."""
    found = [g["trigger"] for g in answer.get("crisis") or []]
    result = answer.get("result") or {}
    found += [g["trigger"] for g in result.get("crisis") or []]
    return list(dict.fromkeys(found))


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


def content_key(kiosk: Kiosk, raw: object) -> str:
    """Derive a stable key from a body sent without a usable one, so a resend adds nothing."""
    text = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{kiosk.public_id}:{text}"))


def alert_key(submission_key: str, trigger: str) -> str:
    """Return the alert key derived from a submission, so a replay never raises it twice."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{submission_key}:{trigger}"))


def alert_body(alert: CrisisAlert) -> dict[str, Any]:
    """Return the API shape of a crisis alert."""
    return {"alert_id": alert.idempotency_key, "trigger": alert.trigger,
            "raised_at": alert.raised_at.isoformat()}


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
