"""What one referral sends, as consent allows; and the site's keys that travel with it."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from shared.assessments import frozen_definition
from shared.triage import CRISIS_TRIGGERS

from ..devices import device_identifier, device_resource
from ..entries import Entries, _full_url
from ..ownership import PATIENT_FIELDS, PREFERENCE_FIELDS, SERVICE_REQUEST_FIELDS, TASK_FIELDS
from .facts import (
    SHARE_ALL,
    SHARE_CRISIS,
    SHARE_NOTHING,
    SHARE_WITHDRAW,
    MemberFacts,
    ReferralFacts,
    Resource,
    SubmissionFacts,
    Systems,
    sharing,
)
from .findings import observations, patient, questionnaire_response
from .referral import (
    WITHOUT_CONSENT,
    care_team,
    contact_point,
    contact_preference,
    service_request,
    task,
)


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
