"""onsite_server.fhir: every resource and Bundle validates under fhir.resources R4B, with the
LOINC codes, categories and UCUM units of DESIGN.md §5, and the identifiers that make a retry
idempotent at central (conditional create for facts, conditional update for the referral)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from onsite_server.fhir import (
    FhirInvalid,
    MemberFacts,
    ReferralFacts,
    SubmissionFacts,
    Systems,
    questionnaire,
    referral_bundle,
    referral_entries,
    validate,
)
from shared.assessments import list_instruments, score

SYSTEMS = Systems("https://onsite.example/ids/demo")
MEMBER = MemberFacts(member_id="M-1001", public_id="4b7e2c1a-0000-4000-8000-000000000001")
TAKEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PHQ9 = {str(i): 2 for i in range(1, 9)} | {"9": 1}


def _sub(instrument: str, answers: dict[str, Any], key: str) -> SubmissionFacts:
    result = score(instrument, answers)
    return SubmissionFacts(key=key, instrument_id=instrument, version=result.version,
                           answers=answers, skipped=(), result=result.as_dict(), taken_at=TAKEN)


SUBMISSIONS = [
    _sub("phq9", PHQ9, "6f0c9a6e-0000-4000-8000-000000000001"),
    _sub("blood_pressure", {"systolic": 185, "diastolic": 95},
         "6f0c9a6e-0000-4000-8000-000000000002"),
    _sub("bmi", {"height_cm": 170, "weight_kg": 80}, "6f0c9a6e-0000-4000-8000-000000000003"),
    _sub("gad7", {str(i): 1 for i in range(1, 8)}, "6f0c9a6e-0000-4000-8000-000000000004"),
]
REFERRAL = ReferralFacts(public_id="9d8c7b6a-0000-4000-8000-000000000009", version=3,
                         status="new", priority="crisis",
                         programs=("behavioral_health", "disease_management"),
                         reasons=({"code": "crisis_phq9_item9", "priority": "crisis",
                                   "programs": ["behavioral_health"],
                                   "text": {"en": "PHQ-9 item 9 above 'Not at all'"}},),
                         crisis_triggers=("phq9_item9", "hypertensive_crisis"),
                         consent=True, contact_method="phone", contact_time="morning",
                         authored_at=TAKEN)


def _types(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["resourceType"] for e in bundle["entry"]]


def _by_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_referral_bundle_validates_and_carries_each_fact_once() -> None:
    bundle = referral_bundle(MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS)
    validate(bundle)
    assert bundle["type"] == "transaction"
    assert len(_by_type(bundle, "Patient")) == 1
    assert len(_by_type(bundle, "QuestionnaireResponse")) == 4
    assert len(_by_type(bundle, "ServiceRequest")) == 1 and len(_by_type(bundle, "Task")) == 1
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    for entry in bundle["entry"]:
        validate(entry["resource"])


def test_facts_are_conditional_creates_and_so_is_a_new_referral() -> None:
    bundle = referral_bundle(MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS)
    for entry in bundle["entry"]:
        kind = entry["resource"]["resourceType"]
        request = entry["request"]
        assert request["method"] == "POST" and request["url"] == kind
        assert request["ifNoneExist"].startswith(f"identifier={SYSTEMS.base}/")


def test_a_referral_central_holds_is_merged_and_written_with_if_match() -> None:
    entries = referral_entries(MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS)
    request_url, task_url = (item.full_url for item in entries.owned[:2])
    held = {request_url: {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active",
                          "intent": "order", "subject": {"reference": "Patient/p-1"},
                          "meta": {"versionId": "4"}},
            task_url: {"resourceType": "Task", "id": "t-1", "status": "in-progress",
                       "intent": "order", "meta": {"versionId": "7"},
                       "owner": {"reference": "Practitioner/adv-001"}}}
    bundle = entries.bundle(held)
    validate(bundle)
    request = _by_type(bundle, "ServiceRequest")[0]
    task = _by_type(bundle, "Task")[0]
    assert request["request"] == {"method": "PUT", "url": "ServiceRequest/sr-1",
                                  "ifMatch": 'W/"4"'}
    assert task["request"] == {"method": "PUT", "url": "Task/t-1", "ifMatch": 'W/"7"'}
    # The Task points at the request by its id at central; central's work stays.
    assert task["resource"]["focus"] == {"reference": "ServiceRequest/sr-1"}
    assert task["resource"]["status"] == "in-progress"
    assert task["resource"]["owner"] == {"reference": "Practitioner/adv-001"}
    assert request_url not in str(bundle)


def test_the_same_facts_build_the_same_bundle() -> None:
    """A retry sends byte-identical content: stable fullUrls, no fresh ids."""
    assert referral_bundle(MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS) == \
        referral_bundle(MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS)


@pytest.mark.parametrize(("ours", "fhir"), [("routine", "routine"), ("soon", "urgent"),
                                            ("urgent", "asap"), ("crisis", "stat")])
def test_priority_mapping(ours: str, fhir: str) -> None:
    ref = ReferralFacts(public_id=REFERRAL.public_id, version=1, status="new", priority=ours,
                        programs=("health_coaching",), consent=True)
    bundle = referral_bundle(MEMBER, ref, [], SYSTEMS)
    validate(bundle)
    assert _by_type(bundle, "ServiceRequest")[0]["resource"]["priority"] == fhir
    assert _by_type(bundle, "Task")[0]["resource"]["priority"] == fhir


def test_withdrawn_consent_revokes_the_request_and_cancels_the_task() -> None:
    ref = ReferralFacts(public_id=REFERRAL.public_id, version=4, status="sent",
                        priority="soon", programs=("eap",), consent=False, forwarded=True)
    entries = referral_entries(MEMBER, ref, SUBMISSIONS, SYSTEMS)
    assert entries.bundle()["entry"] == []  # nothing of it at central: nothing to send
    request_url, task_url = (item.full_url for item in entries.owned[:2])
    held = {request_url: {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active",
                          "intent": "order", "priority": "urgent",
                          "subject": {"reference": "Patient/p-1"}, "meta": {"versionId": "2"}},
            task_url: {"resourceType": "Task", "id": "t-1", "status": "accepted",
                       "intent": "order", "meta": {"versionId": "3"}}}
    bundle = entries.bundle(held)
    validate(bundle)
    assert _types(bundle) == ["ServiceRequest", "Task"]  # no Patient, no findings
    assert _by_type(bundle, "ServiceRequest")[0]["resource"]["status"] == "revoked"
    assert _by_type(bundle, "Task")[0]["resource"]["status"] == "cancelled"


def test_loinc_codes_categories_and_units() -> None:
    bundle = referral_bundle(MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS)
    observations = [e["resource"] for e in _by_type(bundle, "Observation")]
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert by_code["44261-6"]["valueInteger"] == 17  # PHQ-9 total: 8 x 2 + 1
    assert by_code["44261-6"]["category"][0]["coding"][0]["code"] == "survey"
    assert by_code["70274-6"]["valueInteger"] == 7  # GAD-7 total
    bp = by_code["85354-9"]
    assert bp["category"][0]["coding"][0]["code"] == "vital-signs"
    assert {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
            for c in bp["component"]} == {"8480-6": 185, "8462-4": 95}
    assert {c["valueQuantity"]["code"] for c in bp["component"]} == {"mm[Hg]"}
    assert by_code["39156-5"]["valueQuantity"]["code"] == "kg/m2"
    assert by_code["8302-2"]["valueQuantity"]["code"] == "cm"
    assert by_code["29463-7"]["valueQuantity"]["code"] == "kg"
    for obs in observations:
        assert obs["derivedFrom"][0]["reference"].startswith("urn:uuid:")


def test_coded_answers_come_from_the_definition() -> None:
    bundle = referral_bundle(MEMBER, REFERRAL, SUBMISSIONS[:1], SYSTEMS)
    (response,) = _by_type(bundle, "QuestionnaireResponse")
    items = {i["linkId"]: i for i in response["resource"]["item"]}
    assert items["1"]["answer"][0]["valueCoding"]["code"] == "LA6570-1"  # 2: more than half
    assert items["9"]["answer"][0]["valueCoding"]["code"] == "LA6569-3"  # 1: several days


def test_an_unscored_submission_sends_its_answers_but_no_score() -> None:
    answers = {k: v for k, v in PHQ9.items() if k != "4"}
    sub = SubmissionFacts(key="6f0c9a6e-0000-4000-8000-00000000000a", instrument_id="phq9",
                          version="1.0.0", answers=answers, skipped=("4",), result=None,
                          taken_at=TAKEN)
    bundle = referral_bundle(MEMBER, REFERRAL, [sub], SYSTEMS)
    validate(bundle)
    # No score; item 9's answer still goes on its own (a self-harm answer always counts).
    assert [o["resource"]["code"]["coding"][0]["code"]
            for o in _by_type(bundle, "Observation")] == ["44260-8"]
    assert len(_by_type(bundle, "QuestionnaireResponse")[0]["resource"]["item"]) == 8


def _answer_codes(instrument: str, answers: dict[str, Any], version: str) -> dict[str, str]:
    sub = SubmissionFacts(key="6f0c9a6e-0000-4000-8000-00000000000b", instrument_id=instrument,
                          version=version, answers=answers, skipped=(),
                          result=score(instrument, answers, version).as_dict(), taken_at=TAKEN)
    bundle = referral_bundle(MEMBER, REFERRAL, [sub], SYSTEMS)
    validate(bundle)
    (response,) = _by_type(bundle, "QuestionnaireResponse")
    return {i["linkId"]: i["answer"][0]["valueCoding"]["code"]
            for i in response["resource"]["item"] if "valueCoding" in i["answer"][0]}


def test_gad_item2_is_coded_from_its_own_list_from_1_1_0() -> None:
    # LOINC 68509-9's own list: 2 is LA18938-3 "More days than not"; 1.0.0 stays as it was.
    answers: dict[str, Any] = {str(i): 2 for i in range(1, 8)}
    new = _answer_codes("gad7", answers, "1.1.0")
    assert new["2"] == "LA18938-3" and new["1"] == new["3"] == "LA6570-1"
    assert _answer_codes("gad7", answers, "1.0.0")["2"] == "LA6570-1"
    assert _answer_codes("gad2", {"1": 2, "2": 2}, "1.1.0") == {"1": "LA6570-1",
                                                               "2": "LA18938-3"}


def test_phq9_difficulty_answer_is_coded_and_leaves_the_total_alone() -> None:
    codes = _answer_codes("phq9", {**PHQ9, "10": 2}, "1.1.0")
    assert codes["10"] == "LA6575-0"  # "Very difficult" in LL359-1
    sub = SubmissionFacts(key="6f0c9a6e-0000-4000-8000-00000000000c", instrument_id="phq9",
                          version="1.1.0", answers={**PHQ9, "10": 3}, skipped=(),
                          result=score("phq9", {**PHQ9, "10": 3}).as_dict(), taken_at=TAKEN)
    bundle = referral_bundle(MEMBER, REFERRAL, [sub], SYSTEMS)
    (total,) = [o["resource"] for o in _by_type(bundle, "Observation")
                if o["resource"]["code"]["coding"][0]["code"] != "44260-8"]
    assert total["code"]["coding"][0]["code"] == "44261-6" and total["valueInteger"] == 17


def test_audit_c_answers_are_coded_from_1_1_0() -> None:
    answers: dict[str, Any] = {"1": 4, "2": 3, "3": 2, "sex": "male"}
    codes = _answer_codes("audit_c", answers, "1.1.0")
    # Sex has no LOINC list in the definition: its LOINC answer comes from assets/fhir.
    assert codes == {"1": "LA18929-2", "2": "LA18931-8", "3": "LA18876-5", "sex": "LA2-8"}


def test_questionnaire_export_carries_each_questions_own_list() -> None:
    exported = questionnaire("phq9", None, SYSTEMS)
    validate(exported)
    item10 = exported["item"][-1]
    assert item10["linkId"] == "10" and item10["required"] is False
    assert item10["code"][0]["code"] == "69722-7"
    assert [o["valueCoding"]["code"] for o in item10["answerOption"]] == [
        "LA6572-7", "LA6573-5", "LA6575-0", "LA6574-3"]
    gad = questionnaire("gad7", None, SYSTEMS)
    assert [o["valueCoding"]["code"] for o in gad["item"][1]["answerOption"]] == [
        "LA6568-5", "LA6569-3", "LA18938-3", "LA6571-9"]
    # The form's own words stay on screen; the coding carries LOINC's display.
    assert gad["item"][1]["answerOption"][2]["valueCoding"]["display"] == "More days than not"


@pytest.mark.parametrize(("instrument", "version"), list_instruments())
def test_every_instrument_exports_as_a_questionnaire(instrument: str, version: str) -> None:
    resource = questionnaire(instrument, version, SYSTEMS)
    validate(resource)
    assert resource["version"] == version
    assert resource["item"]


@pytest.mark.parametrize(("path", "value"), [
    (("status",), "bogus"), (("priority",), "whenever"), (("intent",), "wish")])
def test_our_code_checks_catch_what_the_models_let_through(path: tuple[str, ...],
                                                           value: str) -> None:
    bundle = referral_bundle(MEMBER, REFERRAL, [], SYSTEMS)
    request = _by_type(bundle, "ServiceRequest")[0]["resource"]
    request[path[0]] = value
    with pytest.raises(FhirInvalid, match=path[0]):
        validate(bundle)


def test_structural_errors_name_the_path() -> None:
    bundle = referral_bundle(MEMBER, REFERRAL, [], SYSTEMS)
    bundle["entry"][0]["resource"]["active"] = "very"
    with pytest.raises(FhirInvalid, match="entry"):
        validate(bundle)


def test_an_assigned_advocate_is_reported_as_the_care_team() -> None:
    ref = ReferralFacts(public_id=REFERRAL.public_id, version=1, status="new",
                        priority="soon", programs=("eap",), advocate_id="adv-001", consent=True)
    bundle = referral_bundle(MEMBER, ref, [], SYSTEMS)
    validate(bundle)
    (team,) = _by_type(bundle, "CareTeam")
    # Central owns assignments: ours is only created where central has none for the member.
    assert team["request"] == {
        "method": "POST", "url": "CareTeam",
        "ifNoneExist": f"subject:identifier={SYSTEMS('member')}|M-1001"}
    participant = team["resource"]["participant"][0]["member"]["identifier"]
    assert participant == {"system": "urn:onsite-wellness:advocate", "value": "adv-001"}
    request = _by_type(bundle, "ServiceRequest")[0]["resource"]
    assert request["performer"][0]["identifier"]["value"] == "adv-001"
    assert _by_type(referral_bundle(MEMBER, REFERRAL, [], SYSTEMS), "CareTeam") == []


def test_the_patient_carries_every_id_onsite_uses_for_the_member() -> None:
    bundle = referral_bundle(MEMBER, REFERRAL, [], SYSTEMS)
    (patient,) = _by_type(bundle, "Patient")
    idents = patient["resource"]["identifier"]
    # Pinned: one identifier is the member id itself, typed MB; the public id is there too.
    (member,) = [i for i in idents if i["value"] == "M-1001"]
    assert member["system"] == SYSTEMS("member")
    assert member["type"]["coding"][0]["code"] == "MB"
    assert {"system": "urn:onsite-wellness:member-public-id", "value": MEMBER.public_id,
            "use": "secondary"} in idents


def test_identifier_systems_are_the_payers_to_set() -> None:
    systems = Systems.from_config({
        "FHIR_IDENTIFIER_BASE": "https://onsite.example/ids",
        "FHIR_MEMBER_SYSTEM": "https://payer.example/member-number",
        "FHIR_MEMBER_PUBLIC_ID_SYSTEM": "https://payer.example/onsite-member",
        "FHIR_ADVOCATE_SYSTEM": "https://payer.example/advocate"})
    ref = ReferralFacts(public_id="r-1", version=1, status="new", priority="soon",
                        programs=("eap",), advocate_id="adv-001", consent=True)
    bundle = referral_bundle(MEMBER, ref, [], systems)
    validate(bundle)
    (patient,) = _by_type(bundle, "Patient")
    assert [i["system"] for i in patient["resource"]["identifier"]] == [
        "https://payer.example/member-number", "https://payer.example/onsite-member"]
    assert patient["request"]["ifNoneExist"] == (
        "identifier=https://payer.example/member-number|M-1001")
    (request,) = _by_type(bundle, "ServiceRequest")
    assert request["resource"]["performer"][0]["identifier"]["system"] == (
        "https://payer.example/advocate")
    assert Systems.from_config({"FHIR_IDENTIFIER_BASE": "https://x/id"})("member") == (
        "https://x/id/member")


def test_the_request_is_coded_names_its_requester_and_its_findings() -> None:
    ref = replace(REFERRAL, site="demo-hq")
    bundle = referral_bundle(MEMBER, ref, SUBMISSIONS, SYSTEMS)
    validate(bundle)
    request = _by_type(bundle, "ServiceRequest")[0]["resource"]
    assert request["code"]["coding"] == [{
        "system": f"{SYSTEMS.base}/CodeSystem/referral-type", "code": "advocate-referral",
        "display": "Referral to the member's personal health advocate"}]
    assert request["requester"] == {"type": "Organization", "display": "Onsite Wellness site",
                                    "identifier": {"system": SYSTEMS("site"),
                                                   "value": "demo-hq"}}
    observations = {e["fullUrl"] for e in _by_type(bundle, "Observation")}
    assert {r["reference"] for r in request["reasonReference"]} == observations


@pytest.mark.parametrize(("instrument", "answers", "code"), [
    ("phq9", PHQ9, "A"),
    ("phq9", {str(i): 0 for i in range(1, 10)}, "N"),
    ("phq2", {"1": 2, "2": 2}, "POS"),
    ("blood_pressure", {"systolic": 150, "diastolic": 95}, "H"),
    ("blood_pressure", {"systolic": 185, "diastolic": 95}, "HH"),
    ("blood_pressure", {"systolic": 110, "diastolic": 70}, "N"),
])
def test_interpretations_are_coded(instrument: str, answers: dict[str, Any], code: str) -> None:
    sub = _sub(instrument, answers, "6f0c9a6e-0000-4000-8000-0000000000aa")
    ref = replace(REFERRAL, consent=True)
    bundle = referral_bundle(MEMBER, ref, [sub], SYSTEMS)
    validate(bundle)
    (obs,) = [o for o in _by_type(bundle, "Observation") if "interpretation" in o["resource"]]
    (concept,) = obs["resource"]["interpretation"]
    assert concept["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation")
    assert concept["coding"][0]["code"] == code
    assert concept["text"] == sub.result["band"]  # type: ignore[index]


@pytest.mark.parametrize(("method", "point"), [
    ("phone", {"system": "phone", "value": "+1 555 0100", "use": "mobile", "rank": 1}),
    ("text", {"system": "sms", "value": "+1 555 0100", "use": "mobile", "rank": 1}),
    ("email", {"system": "email", "value": "m@example.org", "use": "home", "rank": 1}),
])
def test_the_contact_the_member_chose_is_on_the_patient(method: str,
                                                       point: dict[str, Any]) -> None:
    ref = replace(REFERRAL, contact_method=method, contact_phone="+1 555 0100",
                  contact_email="m@example.org")
    bundle = referral_bundle(MEMBER, ref, [], SYSTEMS)
    validate(bundle)
    assert _by_type(bundle, "Patient")[0]["resource"]["telecom"] == [point]
    # The preference itself, readable: the channel as medium, the time of day as a note.
    (preference,) = _by_type(bundle, "CommunicationRequest")
    assert preference["resource"]["status"] == "active"
    assert preference["resource"]["medium"][0]["coding"][0]["code"] == {
        "phone": "PHONE", "text": "WRITTEN", "email": "EMAILWRIT"}[method]
    assert preference["resource"]["note"][0]["text"] == "Preferred time: morning"
    patient_url = _by_type(bundle, "Patient")[0]["fullUrl"]
    assert preference["resource"]["requester"] == {"reference": patient_url}
    # Without consent (a crisis), no contact goes.
    crisis = referral_bundle(MEMBER, replace(ref, consent=False), [], SYSTEMS)
    assert "telecom" not in _by_type(crisis, "Patient")[0]["resource"]
    assert _by_type(crisis, "CommunicationRequest") == []
