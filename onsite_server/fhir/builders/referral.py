"""The shared referral resources: ServiceRequest, Task, contact preference, care team."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import codes
from ..ownership import ONSITE_AUTHOR
from .facts import (
    ADVOCATE_SYSTEM,
    SHARE_ALL,
    SHARE_CRISIS,
    SHARE_WITHDRAW,
    MemberFacts,
    ReferralFacts,
    Resource,
    Systems,
)
from .facts import when as _when

# Marks what was sent without the member's consent, for their safety (a crisis): the purpose
# of use "emergency treatment" (HL7 v3 ActReason ETREAT, terminology.hl7.org), beside a note.
WITHOUT_CONSENT = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                   "code": "ETREAT", "display": "Emergency Treatment"}
WITHOUT_CONSENT_NOTE = ("Sent without the member's consent to be contacted, for their safety: "
                        "the kiosk found a crisis. Only the crisis and the answers that "
                        "triggered it were sent.")


def _note(text: str) -> Resource:
    return {"authorString": ONSITE_AUTHOR, "text": text}


def _crisis_reasons(ref: ReferralFacts) -> list[Mapping[str, Any]]:
    return [r for r in ref.reasons if r.get("priority") == "crisis"]


REFERRAL_CODE = "advocate-referral"  # in <base>/CodeSystem/referral-type


def _reasons_and_programs(ref: ReferralFacts, share: str
                          ) -> tuple[list[Mapping[str, Any]], list[str]]:
    """Return the reasons and programs a request may name: only the crisis's without consent."""
    if share == SHARE_CRISIS:
        reasons = _crisis_reasons(ref)
        return reasons, sorted({p for r in reasons for p in r.get("programs", [])})
    return list(ref.reasons), list(ref.programs)


def _request_notes(ref: ReferralFacts, share: str) -> list[str]:
    notes = [f"Crisis trigger: {t}" for t in ref.crisis_triggers]
    if ref.contact_method and share == SHARE_ALL:
        notes.append(f"Contact by {ref.contact_method}, {ref.contact_time or 'any time'}")
    if share == SHARE_CRISIS:
        notes.append(WITHOUT_CONSENT_NOTE)
    return notes


def _request_elements(ref: ReferralFacts, supporting: Sequence[str | Resource],
                      systems: Systems, findings: Sequence[Resource],
                      reasons_in: Sequence[Mapping[str, Any]], share: str) -> Resource:
    """Return the elements a ServiceRequest carries only when it has something to say."""
    out: Resource = {}
    reasons = [{"coding": [{"system": systems("reason"), "code": str(r.get("code"))}],
                "text": str((r.get("text") or {}).get("en", r.get("code")))}
               for r in reasons_in if r.get("code")]
    if reasons:
        out["reasonCode"] = reasons
    if findings:
        out["reasonReference"] = list(findings)
    if ref.site:
        # The site's onsite server asked for it (a logical reference: central has no record
        # of our sites).
        out["requester"] = {"type": "Organization", "display": "Onsite Wellness site",
                            "identifier": {"system": systems("site"), "value": ref.site}}
    if supporting:
        # A Reference keeps its target's identifier, so a later merge knows it (ownership).
        out["supportingInfo"] = [s if isinstance(s, dict) else {"reference": s}
                                 for s in supporting]
    if share == SHARE_CRISIS:
        out["meta"] = {"security": [dict(WITHOUT_CONSENT)]}
    notes = _request_notes(ref, share)
    if notes:
        out["note"] = [_note(n) for n in notes]
    if ref.authored_at is not None:
        out["authoredOn"] = _when(ref.authored_at)
    if ref.advocate_id:
        out["performer"] = [{"identifier": {"system": systems.advocate,
                                            "value": ref.advocate_id}}]
    return out


def service_request(ref: ReferralFacts, subject: str, supporting: Sequence[str | Resource],
                    systems: Systems, share: str = SHARE_ALL,
                    findings: Sequence[Resource] = ()) -> Resource:
    """Return the consolidated referral as consent allows it (``sharing``).

    With consent, every reason; for a crisis without consent, only the crisis, marked as sent
    for safety and always active; a withdrawal revokes it.
    """
    reasons_in, programs = _reasons_and_programs(ref, share)
    resource: Resource = {
        "resourceType": "ServiceRequest",
        "status": "revoked" if share == SHARE_WITHDRAW else "active", "intent": "order",
        "priority": codes.PRIORITY[ref.priority],
        "identifier": [{"system": systems("referral"), "value": ref.public_id}],
        "subject": {"reference": subject},
        "code": {"coding": [{"system": systems.code_system("referral-type"),
                             "code": REFERRAL_CODE,
                             "display": "Referral to the member's personal health advocate"}],
                 "text": "Referral to the member's personal health advocate"},
        "category": [{"coding": [{"system": systems("program"), "code": p}]}
                     for p in programs] or [{"text": "advocate contact"}],
    }
    resource.update(_request_elements(ref, supporting, systems, findings, reasons_in, share))
    return resource


def task(ref: ReferralFacts, subject: str, request: str, systems: Systems,
         share: str = SHARE_ALL) -> Resource:
    """Return the Task that tracks the referral at central (cancelled on a withdrawal)."""
    resource: Resource = {
        "resourceType": "Task", "intent": "order",
        "status": "cancelled" if share == SHARE_WITHDRAW else codes.TASK_STATUS[ref.status],
        "priority": codes.PRIORITY[ref.priority],
        "identifier": [{"system": systems("referral-task"), "value": ref.public_id}],
        "focus": {"reference": request}, "for": {"reference": subject},
        "businessStatus": {"text": ref.status}}
    if share == SHARE_CRISIS:
        resource["meta"] = {"security": [dict(WITHOUT_CONSENT)]}
        resource["note"] = [_note(WITHOUT_CONSENT_NOTE)]
    return resource


def care_team(member: MemberFacts, advocate_id: str, subject: str,
              advocate_system: str = ADVOCATE_SYSTEM) -> Resource:
    """Return the member's care team: their one advocate (reports an onsite assignment)."""
    return {"resourceType": "CareTeam", "status": "active",
            "name": "Personal health advocate",
            "subject": {"reference": subject},
            "participant": [{"member": {"identifier": {"system": advocate_system,
                                                       "value": advocate_id}}}]}


def contact_point(ref: ReferralFacts) -> Resource | None:
    """Return the channel the member chose, as the Patient's preferred ContactPoint (rank 1)."""
    if ref.contact_method in ("phone", "text") and ref.contact_phone:
        return {"system": "phone" if ref.contact_method == "phone" else "sms",
                "value": ref.contact_phone, "use": "mobile", "rank": 1}
    if ref.contact_method == "email" and ref.contact_email:
        return {"system": "email", "value": ref.contact_email, "use": "home", "rank": 1}
    return None


# How the member asked to be reached: HL7 v3 ParticipationMode
# (http://terminology.hl7.org/CodeSystem/v3-ParticipationMode); a text message is written
# communication, named in the text.
_MEDIUM = {"phone": ("PHONE", "telephone", "Phone call"),
           "text": ("WRITTEN", "written", "Text message (SMS)"),
           "email": ("EMAILWRIT", "email", "Email")}


def contact_preference(ref: ReferralFacts, subject: str, request: str, systems: Systems,
                       share: str = SHARE_ALL) -> Resource:
    """Return how and when the member asked to be contacted, as a CommunicationRequest.

    The member is its requester (they asked), the referral what it is about; the channel is
    its medium, the time of day a note. A withdrawal revokes it.
    """
    code, display, text = _MEDIUM.get(str(ref.contact_method), ("", "", ""))
    resource: Resource = {
        "resourceType": "CommunicationRequest",
        "status": "revoked" if share == SHARE_WITHDRAW else "active",
        "identifier": [{"system": systems("contact-preference"), "value": ref.public_id}],
        "category": [{"coding": [{"system": systems.code_system("communication-type"),
                                  "code": "contact-preference",
                                  "display": "How the member asked to be contacted"}]}],
        "subject": {"reference": subject}, "requester": {"reference": subject},
        "about": [{"reference": request}],
        "note": [_note(f"Preferred time: {ref.contact_time or 'any time'}")]}
    if code:
        resource["medium"] = [{"coding": [{"system": PARTICIPATION_MODE, "code": code,
                                           "display": display}], "text": text}]
    if ref.authored_at is not None:
        resource["authoredOn"] = _when(ref.authored_at)
    return resource


PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"

