"""Pure builders from our facts to FHIR R4 resources (plain dicts) and transaction Bundles.

No IO, no Flask, no database: the sync worker turns rows into the facts below and sends what
these return, after ``validate``. Facts that never change (Patient, QuestionnaireResponse,
Observation) are conditional creates on our business identifier (``ifNoneExist``). The
ServiceRequest and Task are shared with central's advocates (``ownership``): created
conditionally the first time, and afterwards merged into central's copy and written back with
``If-Match``, so a retry never duplicates, an escalation lands and central's work stays.

What leaves at all follows the member's consent (``sharing``, docs/privacy.md).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.assessments import frozen_definition
from shared.assessments.items import questions
from shared.triage import CRISIS_TRIGGERS

from . import codes, instruments
from .devices import device_identifier, device_resource
from .devices import origin as device_origin
from .entries import Entries, _full_url
from .ownership import (
    ONSITE_AUTHOR,
    PATIENT_FIELDS,
    PREFERENCE_FIELDS,
    SERVICE_REQUEST_FIELDS,
    TASK_FIELDS,
)

Resource = dict[str, Any]


ADVOCATE_SYSTEM = "urn:onsite-wellness:advocate"
PUBLIC_ID_SYSTEM = "urn:onsite-wellness:member-public-id"


@dataclass(frozen=True)
class Systems:
    """Identifier system URIs: ours under one configurable base (one per installation); the
    member's and the advocate's are the payer's, so each can be set on its own."""

    base: str
    member: str | None = None  # the payer's member-number system; None: <base>/member
    public_id: str = PUBLIC_ID_SYSTEM  # our public member id, as our QR tokens name members
    advocate: str = ADVOCATE_SYSTEM  # the payer's advocate (Practitioner) identifiers

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Systems:
        """Build from FHIR_IDENTIFIER_BASE and FHIR_*_SYSTEM (docs/configuration.md)."""
        return cls(base=str(config["FHIR_IDENTIFIER_BASE"]),
                   member=config.get("FHIR_MEMBER_SYSTEM") or None,
                   public_id=str(config.get("FHIR_MEMBER_PUBLIC_ID_SYSTEM") or PUBLIC_ID_SYSTEM),
                   advocate=str(config.get("FHIR_ADVOCATE_SYSTEM") or ADVOCATE_SYSTEM))

    def __call__(self, kind: str) -> str:
        """Return the identifier system of a kind ("member", "submission", "referral"...)."""
        if kind == "member" and self.member:
            return self.member
        return f"{self.base.rstrip('/')}/{kind}"

    def code_system(self, name: str) -> str:
        """Return the canonical URL of one of our local CodeSystems."""
        return f"{self.base.rstrip('/')}/CodeSystem/{name}"

    def questionnaire(self, instrument_id: str, version: str) -> str:
        """Return the canonical URL of an instrument's Questionnaire, with its version."""
        return f"{self.base.rstrip('/')}/Questionnaire/{instrument_id}|{version}"


@dataclass(frozen=True)
class MemberFacts:
    """Who the upload is about: the roster's member id (central's) and our public id."""

    member_id: str
    public_id: str


@dataclass(frozen=True)
class SubmissionFacts:
    """One stored submission: answers and the server's own result."""

    key: str
    instrument_id: str
    version: str
    answers: Mapping[str, Any]
    skipped: Sequence[str]
    result: Mapping[str, Any] | None
    taken_at: datetime
    devices: Sequence[Mapping[str, Any]] = ()  # the cuffs and scales behind some answers


@dataclass(frozen=True)
class ReferralFacts:
    """The member's consolidated referral at one version."""

    public_id: str
    version: int
    status: str
    priority: str
    programs: Sequence[str]
    reasons: Sequence[Mapping[str, Any]] = ()
    crisis_triggers: Sequence[str] = ()
    consent: bool | None = None
    contact_method: str | None = None
    contact_time: str | None = None
    advocate_id: str | None = None
    authored_at: datetime | None = None
    forwarded: bool = False  # a version of it reached central already
    site: str | None = None  # the site that asks (ServiceRequest.requester)
    contact_phone: str | None = None  # what the member typed, else the roster's
    contact_email: str | None = None


# What a referral may send (docs/privacy.md).
SHARE_ALL = "all"  # the member consented to be contacted: findings and referral
SHARE_CRISIS = "crisis"  # no consent, but a crisis: the referral and its triggering answers
SHARE_WITHDRAW = "withdraw"  # no consent any more: cancel what central holds, send nothing new
SHARE_NOTHING = "nothing"  # no consent (declined, or never answered): nothing leaves the site


def sharing(ref: ReferralFacts) -> str:
    """Return what a referral may send: consent decides, except for a crisis (for safety)."""
    if ref.consent is True:
        return SHARE_ALL
    if ref.priority == "crisis":
        return SHARE_CRISIS
    return SHARE_WITHDRAW if ref.forwarded else SHARE_NOTHING


@dataclass(frozen=True)
class AppointmentFacts:
    """A member's booking as it stands: its seat, its event and its status."""

    public_id: str
    status: str  # ours: booked, waitlisted, cancelled, checked_in, no_show
    start: datetime
    end: datetime
    event_title: str
    event_kind: str
    location: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class MessageFacts:
    """A message to the member about a booking, rendered in their language when queued."""

    key: str
    kind: str
    language: str
    category: str
    topic: str
    text: str


def _when(moment: datetime) -> str:
    return moment.isoformat()


# HL7 v2 table 0203 identifier type "MB" (member number), as the payer's member id is typed.
MEMBER_NUMBER = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "MB", "display": "Member Number"}]}


def patient(member: MemberFacts, systems: Systems) -> Resource:
    """Return the Patient: identified by every id onsite uses for the member towards central.

    The payer's member id (type MB) and our public member id, which the advocate-link QR
    names, so a call the member requests from that page is tied to their Patient. No name,
    birth date or health data.
    """
    return {"resourceType": "Patient", "active": True, "identifier": [
        {"use": "official", "type": MEMBER_NUMBER, "system": systems("member"),
         "value": member.member_id},
        {"use": "secondary", "system": systems.public_id, "value": member.public_id}]}


def questionnaire_response(sub: SubmissionFacts, subject: str, systems: Systems) -> Resource:
    """Return the QuestionnaireResponse: each answered question that is on, coded as the
    exported Questionnaire declares it (``instruments``)."""
    specs = questions(sub.instrument_id, sub.version)
    items = []
    for link_id, spec in specs.items():
        if link_id not in sub.answers or not instruments.enabled(spec, sub.answers):
            # A question its condition turns off (AUDIT-C's drinking questions for someone
            # who never drinks) has no answer in a conforming response.
            continue
        entry: Resource = {"linkId": link_id, "answer": [
            instruments.answer(sub.instrument_id, spec, sub.answers[link_id], systems)]}
        text = spec.get("text", {}).get("en")
        if text:
            entry["text"] = text
        items.append(entry)
    return {"resourceType": "QuestionnaireResponse", "status": "completed",
            "identifier": {"system": systems("submission"), "value": sub.key},
            "questionnaire": systems.questionnaire(sub.instrument_id, sub.version),
            "subject": {"reference": subject}, "authored": _when(sub.taken_at),
            "item": items}


def _number(value: Any) -> Resource:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return {"valueInteger": int(value)}
    return {"valueQuantity": {"value": value}}


def interpretation(sub: SubmissionFacts) -> list[Resource]:
    """Return Observation.interpretation for a result: a v3 code, and the band as text."""
    band = str((sub.result or {}).get("band", ""))
    code = codes.INTERPRETATION.get(band)
    if "hypertensive_crisis" in set((sub.result or {}).get("flags", ())):
        code = "HH"
    concept: Resource = {"text": band}
    if code:
        concept["coding"] = [{"system": codes.INTERPRETATION_SYSTEM, "code": code,
                              "display": codes.INTERPRETATION_DISPLAY[code]}]
    return [concept]


def _item_observations(sub: SubmissionFacts, add: Callable[..., None],
                       systems: Systems) -> None:
    """Add the answers that go as Observations of their own (PHQ-9 item 9, assets/fhir)."""
    specs = questions(sub.instrument_id, sub.version)
    for link_id in instruments.item_observation_items(sub.instrument_id):
        spec = specs.get(link_id)
        if spec is None or link_id not in sub.answers or not spec.get("code"):
            continue
        coded = instruments.answer(sub.instrument_id, spec, sub.answers[link_id], systems)
        if "valueCoding" in coded:
            value: Resource = {"valueCodeableConcept": {
                "coding": [coded["valueCoding"]], "text": coded["valueCoding"]["display"]}}
        else:
            value = coded
        add(spec["code"][0], codes.SURVEY, value)


def observations(sub: SubmissionFacts, subject: str, response: str,
                 systems: Systems, device_url: Callable[[Mapping[str, Any]], str] | None = None
                 ) -> list[tuple[Resource, str]]:
    """Return (Observation, identifier value) for each score, vital sign and answer that
    goes on its own (PHQ-9 item 9) of a submission.

    A vital sign says where it came from (``fhir/devices.py``): a device, or self-reported.
    """
    base = {"resourceType": "Observation", "status": "final", "subject": {"reference": subject},
            "effectiveDateTime": _when(sub.taken_at), "derivedFrom": [{"reference": response}]}
    out: list[tuple[Resource, str]] = []

    def add(code: Mapping[str, Any], category: Mapping[str, str], value: Resource,
            extra: Resource | None = None) -> None:
        ident = f"{sub.key}:{code['code']}"
        obs = {**base, "identifier": [{"system": systems("observation"), "value": ident}],
               "category": [{"coding": [dict(category)]}],
               "code": {"coding": [dict(code)]}, **value, **(extra or {})}
        out.append((obs, ident))

    def came_from(*links: str) -> Resource:
        return device_origin(sub.devices, links, systems.code_system("measurement-method"),
                             device_url)

    # Answered items go whether or not the whole was scored: a self-harm answer always counts.
    _item_observations(sub, add, systems)
    if sub.result is None:
        return out  # not scored (a skipped item): the response alone says what was answered
    definition = frozen_definition(sub.instrument_id, sub.version)
    if sub.instrument_id == "blood_pressure":
        components = [{"code": {"coding": [dict(c)]},
                       "valueQuantity": {**codes.MM_HG, "value": sub.answers[k]}}
                      for c, k in ((codes.SYSTOLIC, "systolic"), (codes.DIASTOLIC, "diastolic"))]
        add(codes.BP_PANEL, codes.VITAL_SIGNS, {"component": components},
            {"interpretation": interpretation(sub), **came_from("systolic", "diastolic")})
        return out
    scored = instruments.score_code(sub.instrument_id, definition, systems)
    specs = questions(sub.instrument_id, sub.version)
    if sub.instrument_id == "bmi":
        for link_id, value in sub.answers.items():
            spec = specs[link_id]
            coding = (spec.get("code") or [None])[0]
            if coding and spec.get("unit"):
                add(coding, codes.VITAL_SIGNS, {"valueQuantity": {
                    "value": value, "unit": spec["unit"], "system": codes.UCUM,
                    "code": spec["unit"]}}, came_from(link_id))
        if scored and sub.result.get("total") is not None:
            add(scored[0], codes.VITAL_SIGNS, {"valueQuantity": {
                "value": sub.result["total"], "unit": "kg/m2", "system": codes.UCUM,
                "code": "kg/m2"}})
        return out
    if scored and sub.result.get("total") is not None:
        code, unit = scored
        total = sub.result["total"]
        value = ({"valueQuantity": {"value": total, "unit": unit, "system": codes.UCUM,
                                    "code": unit}} if unit else _number(total))
        add(code, codes.SURVEY, value, {"interpretation": interpretation(sub)})
    return out


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


def service_request(ref: ReferralFacts, subject: str, supporting: Sequence[str | Resource],
                    systems: Systems, share: str = SHARE_ALL,
                    findings: Sequence[Resource] = ()) -> Resource:
    """Return the consolidated referral as consent allows it (``sharing``).

    With consent, every reason; for a crisis without consent, only the crisis, marked as sent
    for safety and always active; a withdrawal revokes it.
    """
    crisis_only = share == SHARE_CRISIS
    status = "revoked" if share == SHARE_WITHDRAW else "active"
    reasons_in = _crisis_reasons(ref) if crisis_only else list(ref.reasons)
    programs = (sorted({p for r in reasons_in for p in r.get("programs", [])})
                if crisis_only else list(ref.programs))
    resource: Resource = {
        "resourceType": "ServiceRequest", "status": status, "intent": "order",
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
    reasons = [{"coding": [{"system": systems("reason"), "code": str(r.get("code"))}],
                "text": str((r.get("text") or {}).get("en", r.get("code")))}
               for r in reasons_in if r.get("code")]
    if reasons:
        resource["reasonCode"] = reasons
    if findings:
        resource["reasonReference"] = list(findings)
    if ref.site:
        # The site's onsite server asked for it (a logical reference: central has no record
        # of our sites).
        resource["requester"] = {"type": "Organization", "display": "Onsite Wellness site",
                                 "identifier": {"system": systems("site"), "value": ref.site}}
    if supporting:
        # A Reference keeps its target's identifier, so a later merge knows it (ownership).
        resource["supportingInfo"] = [s if isinstance(s, dict) else {"reference": s}
                                      for s in supporting]
    notes = [f"Crisis trigger: {t}" for t in ref.crisis_triggers]
    if ref.contact_method and share == SHARE_ALL:
        notes.append(f"Contact by {ref.contact_method}, {ref.contact_time or 'any time'}")
    if crisis_only:
        notes.append(WITHOUT_CONSENT_NOTE)
        resource["meta"] = {"security": [dict(WITHOUT_CONSENT)]}
    if notes:
        resource["note"] = [_note(n) for n in notes]
    if ref.authored_at is not None:
        resource["authoredOn"] = _when(ref.authored_at)
    if ref.advocate_id:
        resource["performer"] = [{"identifier": {"system": systems.advocate,
                                                 "value": ref.advocate_id}}]
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


def appointment(facts: AppointmentFacts, subject: str, systems: Systems) -> Resource:
    """Return the member's Appointment: a conditional update, so each change replaces it."""
    resource: Resource = {
        "resourceType": "Appointment", "status": codes.APPOINTMENT_STATUS[facts.status],
        "identifier": [{"system": systems("booking"), "value": facts.public_id}],
        "serviceType": [{"coding": [{"system": systems("event-kind"),
                                     "code": facts.event_kind}], "text": facts.event_title}],
        "description": facts.event_title,
        "start": _when(facts.start), "end": _when(facts.end),
        "participant": [{"actor": {"reference": subject}, "required": "required",
                         "status": codes.PARTICIPANT_STATUS[facts.status]}],
    }
    if facts.location:
        resource["comment"] = f"Location: {facts.location}"
    if facts.created_at is not None:
        resource["created"] = _when(facts.created_at)
    return resource


def communication(message: MessageFacts, subject: str, about: str,
                  systems: Systems) -> Resource:
    """Return a message to the member for central to deliver (status preparation: not sent yet).

    Central owns the member's contact channels, so it chooses the medium and moves the
    Communication to completed once delivered.
    """
    resource: Resource = {
        "resourceType": "Communication", "status": "preparation", "language": message.language,
        "identifier": [{"system": systems("message"), "value": message.key}],
        "category": [{"coding": [{"system": codes.COMMUNICATION_CATEGORY,
                                  "code": message.category}]}],
        "priority": "routine", "subject": {"reference": subject},
        "recipient": [{"reference": subject}], "about": [{"reference": about}],
        "topic": {"text": message.topic}, "payload": [{"contentString": message.text}],
    }
    return resource


def booking_entries(member: MemberFacts, booking: AppointmentFacts,
                    message: MessageFacts | None, systems: Systems) -> Entries:
    """Return the entries that send one booking's Appointment, and a message about it."""
    entries = Entries()
    subject = entries.create(patient(member, systems), systems("member"), member.member_id)
    about = entries.update(appointment(booking, subject, systems), systems("booking"),
                           booking.public_id)
    if message is not None:
        entries.create(communication(message, subject, about, systems), systems("message"),
                       message.key)
    return entries


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


def referral_bundle(member: MemberFacts, ref: ReferralFacts,
                    submissions: Sequence[SubmissionFacts], systems: Systems) -> Resource:
    """Return the transaction Bundle for one forwarded referral version and its evidence."""
    return referral_entries(member, ref, submissions, systems).bundle()


def _trigger_items(sub: SubmissionFacts, triggers: Sequence[str]) -> set[str] | None:
    """Return the items of a submission that raised one of the crisis triggers (None: none).

    The definition's flag names its item (PHQ-9 item 9); a flag of the whole reading (a
    hypertensive crisis) takes every answer of it.
    """
    flags = set((sub.result or {}).get("flags", ()))
    raised = {t.flag for t in CRISIS_TRIGGERS
              if t.trigger in triggers and t.instrument == sub.instrument_id and t.flag in flags}
    if not raised:
        return None
    definition = frozen_definition(sub.instrument_id, sub.version)
    items: set[str] = set()
    for flag in definition.get("scoring", {}).get("flags", []):
        if flag.get("id") in raised:
            item = (flag.get("when") or {}).get("item")
            if item is None:
                return set(sub.answers)
            items.add(str(item))
    return items or set(sub.answers)


def referral_entries(member: MemberFacts, ref: ReferralFacts,
                     submissions: Sequence[SubmissionFacts], systems: Systems) -> Entries:
    """Return the entries of a referral's Bundle as consent allows (``sharing``).

    With consent: the Patient, every response and score, the ServiceRequest and Task, the
    care team. A crisis without consent: the Patient, the answers that raised the crisis, the
    ServiceRequest and Task (marked). A withdrawal: the ServiceRequest and Task that central
    holds, revoked and cancelled. No consent: nothing.
    """
    share = sharing(ref)
    entries = Entries()
    if share == SHARE_NOTHING:
        return entries
    if share == SHARE_WITHDRAW:
        subject = _full_url("Patient", systems("member"), member.member_id)
        request = entries.own(service_request(ref, subject, (), systems, share),
                              systems("referral"), ref.public_id, (), create=False)
        entries.own(task(ref, subject, request, systems, share), systems("referral-task"),
                    ref.public_id, (), create=False)
        entries.own(contact_preference(ref, subject, request, systems, share),
                    systems("contact-preference"), ref.public_id, (), create=False)
        return entries
    person = patient(member, systems)
    chosen = contact_point(ref) if share == SHARE_ALL else None
    if chosen is not None:
        # The contact the member chose, on their Patient; central's own contact points stay.
        person["telecom"] = [chosen]
        subject = entries.own(person, systems("member"), member.member_id, PATIENT_FIELDS)
    else:
        subject = entries.create(person, systems("member"), member.member_id)
    supporting: list[str | Resource] = []
    findings: list[Resource] = []  # the score Observations: the reasons of the request
    device_urls: dict[str, str] = {}  # one Device entry per device, however many readings

    def device_url(device: Mapping[str, Any]) -> str:
        value = device_identifier(device)
        if value not in device_urls:
            device_urls[value] = entries.create(device_resource(device, systems("device")),
                                                systems("device"), value)
        return device_urls[value]

    def evidence(resource: Resource, system: str, value: str) -> str:
        url = entries.create(resource, system, value)
        supporting.append({"reference": url, "identifier": {"system": system, "value": value}})
        return url

    for sub in submissions:
        if share == SHARE_CRISIS:
            items = _trigger_items(sub, ref.crisis_triggers)
            if items is None:
                continue  # findings stay onsite
            key = f"{sub.key}:crisis"
            only = SubmissionFacts(key=key, instrument_id=sub.instrument_id,
                                   version=sub.version,
                                   answers={k: v for k, v in sub.answers.items() if k in items},
                                   skipped=(), result=None, taken_at=sub.taken_at)
            answers = questionnaire_response(only, subject, systems)
            answers["meta"] = {"security": [dict(WITHOUT_CONSENT)]}
            # An excerpt: the other answers stay onsite, so it is not a completed response
            # (which must answer every required question). "stopped": partly filled out, no
            # more to come from this one (a consent later sends the whole as its own).
            answers["status"] = "stopped"
            url = evidence(answers, systems("submission"), key)
            # Unscored (result None), so only the answer that goes on its own: PHQ-9 item 9.
            for obs, ident in observations(only, subject, url, systems):
                obs["meta"] = {"security": [dict(WITHOUT_CONSENT)]}
                evidence(obs, systems("observation"), ident)
            continue
        response = evidence(questionnaire_response(sub, subject, systems),
                            systems("submission"), sub.key)
        for obs, ident in observations(sub, subject, response, systems, device_url):
            url = evidence(obs, systems("observation"), ident)
            findings.append({"reference": url, "identifier": {
                "system": systems("observation"), "value": ident}})
    request = entries.own(service_request(ref, subject, supporting, systems, share, findings),
                          systems("referral"), ref.public_id, SERVICE_REQUEST_FIELDS)
    entries.own(task(ref, subject, request, systems, share), systems("referral-task"),
                ref.public_id, TASK_FIELDS)
    if chosen is not None:
        entries.own(contact_preference(ref, subject, request, systems, share),
                    systems("contact-preference"), ref.public_id, PREFERENCE_FIELDS)
    if ref.advocate_id and share == SHARE_ALL:
        team = care_team(member, ref.advocate_id, subject, systems.advocate)
        team["identifier"] = [{"system": systems("careteam"), "value": member.member_id}]
        # Central owns assignments: ours is created only where central has no care team for
        # the member (whatever its identifiers), and never replaces one.
        entries.create(team, systems("careteam"), member.member_id,
                       f"subject:identifier={systems('member')}|{member.member_id}")
    return entries


def questionnaire(instrument_id: str, version: str | None, systems: Systems) -> Resource:
    """Export an instrument definition from assets/ as a FHIR Questionnaire (English text)."""
    definition = frozen_definition(instrument_id, version)
    url, _, ver = systems.questionnaire(definition["id"], definition["version"]).partition("|")
    return instruments.questionnaire(definition["id"], definition["version"], url, ver, systems)


JWKS_CONTENT_TYPE = "application/jwk-set+json"
REVOKED_CONTENT_TYPE = "application/vnd.onsite-revoked+json"


def _binary(content_type: str, data: Any) -> Resource:
    text = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return {"resourceType": "Binary", "contentType": content_type,
            "data": base64.b64encode(text).decode("ascii")}


def add_keys(entries: Entries, site: str, jwks: Mapping[str, Any],
             revoked: Sequence[str]) -> None:
    """Send the site's public keys and revoked token ids, so central verifies QR tokens.

    Central usually cannot reach into a site's network, so the keys travel with every sync.
    """
    entries.put(_binary(JWKS_CONTENT_TYPE, jwks), f"onsite-keys-{site}")
    entries.put(_binary(REVOKED_CONTENT_TYPE, sorted(revoked)), f"onsite-revoked-{site}")
