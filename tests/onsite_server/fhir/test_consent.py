"""Consent decides what a referral sends (docs/privacy.md): everything with consent, nothing
without (declined or never answered), and for a crisis only the crisis and the answers that
raised it, marked as sent without consent for safety, always active and stat."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from onsite_server.fhir import (
    SHARE_ALL,
    SHARE_CRISIS,
    SHARE_NOTHING,
    SHARE_WITHDRAW,
    WITHOUT_CONSENT,
    referral_bundle,
    sharing,
    validate,
)

from .test_build import MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS

CRISIS = REFERRAL  # PHQ-9 item 9 and a hypertensive crisis, with a moderate GAD-7 and a BMI
ROUTINE = replace(REFERRAL, priority="soon", crisis_triggers=(),
                  reasons=({"code": "phq9_moderate", "priority": "soon",
                            "text": {"en": "PHQ-9 moderate"}},))


def _of(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.mark.parametrize(("consent", "priority", "forwarded", "expected"), [
    (True, "soon", False, SHARE_ALL),
    (True, "crisis", False, SHARE_ALL),
    (False, "soon", False, SHARE_NOTHING),
    (None, "soon", False, SHARE_NOTHING),  # never answered: not consented
    (False, "crisis", False, SHARE_CRISIS),
    (None, "crisis", True, SHARE_CRISIS),
    (False, "soon", True, SHARE_WITHDRAW),
    (None, "routine", True, SHARE_WITHDRAW),
])
def test_what_consent_lets_a_referral_send(consent: bool | None, priority: str,
                                           forwarded: bool, expected: str) -> None:
    ref = replace(ROUTINE, consent=consent, priority=priority, forwarded=forwarded)
    assert sharing(ref) == expected


@pytest.mark.parametrize("consent", [False, None])
def test_without_consent_nothing_identifying_is_built(consent: bool | None) -> None:
    ref = replace(ROUTINE, consent=consent, advocate_id="adv-001")
    assert referral_bundle(MEMBER, ref, SUBMISSIONS, SYSTEMS)["entry"] == []


@pytest.mark.parametrize("consent", [False, None])
def test_a_crisis_without_consent_sends_the_crisis_and_its_answers_only(
        consent: bool | None) -> None:
    ref = replace(CRISIS, consent=consent, advocate_id="adv-001",
                  reasons=(*CRISIS.reasons,
                           {"code": "gad7_moderate", "priority": "soon",
                            "programs": ["eap"], "text": {"en": "GAD-7 moderate"}}),
                  programs=("behavioral_health", "disease_management", "eap"))
    bundle = referral_bundle(MEMBER, ref, SUBMISSIONS, SYSTEMS)
    validate(bundle)
    kinds = sorted({e["resource"]["resourceType"] for e in bundle["entry"]})
    assert kinds == ["Observation", "Patient", "QuestionnaireResponse", "ServiceRequest", "Task"]
    # The pinned shape: active, stat, never revoked; marked as sent without consent.
    (request,) = _of(bundle, "ServiceRequest")
    assert (request["status"], request["priority"]) == ("active", "stat")
    assert request["meta"]["security"] == [WITHOUT_CONSENT]
    assert any("without the member's consent" in n["text"] for n in request["note"])
    assert not any(n["text"].startswith("Contact by") for n in request["note"])
    # Only the crisis reasons and their programs: the other findings stay onsite.
    assert [c["coding"][0]["code"] for c in request.get("reasonCode", [])] == [
        "crisis_phq9_item9"]
    assert "eap" not in str(request["category"])
    (task,) = _of(bundle, "Task")
    assert task["status"] == "requested" and task["meta"]["security"] == [WITHOUT_CONSENT]
    # The answers that raised it: PHQ-9 item 9 alone, and the crisis blood pressure reading.
    responses = {r["questionnaire"].split("/")[-1].split("|")[0]: r
                 for r in _of(bundle, "QuestionnaireResponse")}
    assert sorted(responses) == ["blood_pressure", "phq9"]
    assert [i["linkId"] for i in responses["phq9"]["item"]] == ["9"]
    assert sorted(i["linkId"] for i in responses["blood_pressure"]["item"]) == [
        "diastolic", "systolic"]
    for response in responses.values():
        assert response["meta"]["security"] == [WITHOUT_CONSENT]
        # Their own identifiers: the full responses can still go if consent comes later.
        assert response["identifier"]["value"].endswith(":crisis")
        # An excerpt is no completed response (that would answer every required question).
        assert response["status"] == "stopped"
    # No score: only the answer that raised it, item 9, as its own Observation, marked too.
    (item9,) = _of(bundle, "Observation")
    assert item9["code"]["coding"][0]["code"] == "44260-8"
    assert item9["meta"]["security"] == [WITHOUT_CONSENT]
    assert _of(bundle, "CareTeam") == []


def test_with_consent_everything_goes() -> None:
    bundle = referral_bundle(MEMBER, replace(CRISIS, advocate_id="adv-001"), SUBMISSIONS,
                             SYSTEMS)
    assert len(_of(bundle, "QuestionnaireResponse")) == len(SUBMISSIONS)
    assert _of(bundle, "Observation") and _of(bundle, "CareTeam")
    (request,) = _of(bundle, "ServiceRequest")
    assert "meta" not in request
    assert any(n["text"] == "Contact by phone, morning" for n in request["note"])
