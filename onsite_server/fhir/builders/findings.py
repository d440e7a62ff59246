"""The member and their findings: Patient, QuestionnaireResponse, Observations, Questionnaire."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.assessments import frozen_definition
from shared.assessments.items import questions

from .. import codes, instruments
from ..devices import origin as device_origin
from .facts import MemberFacts, Resource, SubmissionFacts, Systems
from .facts import when as _when

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


def questionnaire(instrument_id: str, version: str | None, systems: Systems) -> Resource:
    """Export an instrument definition from assets/ as a FHIR Questionnaire (English text)."""
    definition = frozen_definition(instrument_id, version)
    url, _, ver = systems.questionnaire(definition["id"], definition["version"]).partition("|")
    return instruments.questionnaire(definition["id"], definition["version"], url, ver, systems)

