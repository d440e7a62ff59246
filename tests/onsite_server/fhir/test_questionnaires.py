"""The QuestionnaireResponses we send answer the Questionnaires export-questionnaires publishes,
held item by item by an independent checker (tests/fhir_conformance.py); every score goes as a
coded Observation, and PHQ-9 item 9 as one of its own."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from onsite_server.fhir import (
    SubmissionFacts,
    Systems,
    code_systems,
    observations,
    questionnaire,
    questionnaire_response,
    validate,
)
from shared.assessments import ScoringError, available_versions, list_instruments, score

from ...fhir_conformance import check_response

SYSTEMS = Systems("https://onsite.example/ids/demo")
TAKEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
SUBJECT = "urn:uuid:00000000-0000-4000-8000-000000000001"

# Answers as the kiosk sends them, for every instrument: both sexes, a non-drinker (AUDIT-C's
# items 2 and 3 are then off: omitted, or sent as the 0 the scorer allows), metric and
# imperial measurements given as decimals and as whole numbers.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("phq9", {str(i): 1 for i in range(1, 9)} | {"9": 2}),
    ("phq9", {str(i): 0 for i in range(1, 10)} | {"10": 1}),
    ("phq2", {"1": 2, "2": 1}),
    ("gad7", {str(i): 2 for i in range(1, 8)}),
    ("gad2", {"1": 1, "2": 2}),
    ("who5", {"1": 5, "2": 1, "3": 0, "4": 3, "5": 2}),
    ("audit_c", {"1": 0, "sex": "male"}),
    ("audit_c", {"1": 0, "2": 0, "3": 0, "sex": "male"}),
    ("audit_c", {"1": 3, "2": 1, "3": 2, "sex": "female"}),
    ("ada_risk", {"age": 45, "sex": "male", "family_history": True,
                  "high_blood_pressure": False, "physically_active": True,
                  "height_cm": 180.5, "weight_kg": 80.2}),
    ("ada_risk", {"age": 38, "sex": "female", "gestational_diabetes": True,
                  "family_history": False, "high_blood_pressure": True,
                  "physically_active": False, "height_in": 64, "weight_lb": 170}),
    ("blood_pressure", {"systolic": 128.5, "diastolic": 82}),
    ("bmi", {"height_cm": 170, "weight_kg": 80.4}),
    ("ascvd_pce", {"age": 55, "sex": "female", "race": "african_american",
                   "total_chol_mg_dl": 213.0, "hdl_mg_dl": 50, "systolic": 120.0,
                   "bp_treated": False, "smoker": False, "diabetes": False}),
]


def _facts(instrument: str, answers: dict[str, Any], version: str) -> SubmissionFacts:
    result = score(instrument, answers, version)
    return SubmissionFacts(key=f"key-{instrument}-{version}", instrument_id=instrument,
                           version=version, answers=answers, skipped=(),
                           result=result.as_dict(), taken_at=TAKEN)


def _pairs() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for instrument, answers in CASES:
        for version in available_versions(instrument):
            try:
                score(instrument, answers, version)
            except ScoringError:
                continue  # PHQ-9's item 10 is in 1.1.0 only
            out.append((instrument, version, answers))
    return out


PAIRS = _pairs()


def test_every_instrument_and_version_is_tried() -> None:
    tried = {(i, v) for i, v, _ in PAIRS}
    assert tried == {(i, v) for i, _ in list_instruments() for v in available_versions(i)}


@pytest.mark.parametrize(("instrument", "version", "answers"), PAIRS)
def test_each_response_answers_its_exported_questionnaire(instrument: str, version: str,
                                                          answers: dict[str, Any]) -> None:
    published = questionnaire(instrument, version, SYSTEMS)
    response = questionnaire_response(_facts(instrument, answers, version), SUBJECT, SYSTEMS)
    validate(published)
    validate(response)
    assert check_response(published, response) == []


def _who5() -> tuple[dict[str, Any], dict[str, Any]]:
    answers = dict(CASES[5][1])
    return (questionnaire("who5", None, SYSTEMS),
            questionnaire_response(_facts("who5", answers, "1.0.0"), SUBJECT, SYSTEMS))


@pytest.mark.parametrize(("damage", "found"), [
    # What central found before: an integer where the options are codings...
    (lambda r: r["item"][0]["answer"][0].update(valueInteger=5)
     or r["item"][0]["answer"][0].pop("valueCoding"), "item 1: answered with"),
    # ... a coding that is not one of the options...
    (lambda r: r["item"][1]["answer"][0]["valueCoding"].update(code="1"),
     "item 2: https://onsite.example/ids/demo/CodeSystem/who5-answers|1 is not one"),
    # ... a required question left out, and one listed that the Questionnaire lacks.
    (lambda r: r["item"].pop(2), "item 3: required and enabled, but not answered"),
    (lambda r: r["item"].append({"linkId": "6", "answer": [{"valueInteger": 1}]}),
     "item 6: not an item"),
])
def test_the_checker_finds_what_does_not_conform(damage: Any, found: str) -> None:
    published, response = _who5()
    broken = copy.deepcopy(response)
    damage(broken)
    assert any(p.startswith(found) for p in check_response(published, broken)), \
        check_response(published, broken)


def test_the_checker_finds_a_disabled_question_answered_and_a_decimal_as_integer() -> None:
    published = questionnaire("audit_c", None, SYSTEMS)
    drinker = questionnaire_response(_facts("audit_c", CASES[8][1], "1.1.0"), SUBJECT, SYSTEMS)
    never = questionnaire_response(_facts("audit_c", CASES[6][1], "1.1.0"), SUBJECT, SYSTEMS)
    never["item"].insert(1, drinker["item"][1])  # item 2 answered by a non-drinker
    assert "item 2: answered although its enableWhen turns it off" in check_response(
        published, never)
    bp = questionnaire("blood_pressure", None, SYSTEMS)
    reading = questionnaire_response(_facts("blood_pressure", CASES[11][1], "1.0.0"),
                                     SUBJECT, SYSTEMS)
    reading["item"][1]["answer"] = [{"valueInteger": 82}]
    assert any(p.startswith("item diastolic: answered with ['valueInteger']")
               for p in check_response(bp, reading))


def test_a_non_drinkers_response_leaves_out_the_questions_turned_off() -> None:
    response = questionnaire_response(_facts("audit_c", CASES[7][1], "1.1.0"), SUBJECT, SYSTEMS)
    assert [i["linkId"] for i in response["item"]] == ["1", "sex"]


@pytest.mark.parametrize("version", available_versions("audit_c"))
def test_export_keeps_enable_when(version: str) -> None:
    audit = {i["linkId"]: i for i in questionnaire("audit_c", version, SYSTEMS)["item"]}
    for link in ("2", "3"):
        (cond,) = audit[link]["enableWhen"]
        assert cond["question"] == "1" and cond["operator"] == "!="
        # "Never", the answer of value 0, turns them off.
        assert cond["answerCoding"] == audit["1"]["answerOption"][0]["valueCoding"]
    ada = {i["linkId"]: i for i in questionnaire("ada_risk", None, SYSTEMS)["item"]}
    assert ada["gestational_diabetes"]["enableWhen"] == [{
        "question": "sex", "operator": "=",
        "answerCoding": {"system": "http://loinc.org", "code": "LA3-6", "display": "Female"}}]
    assert ada["gestational_diabetes"]["required"] is True  # required only when enabled


def test_numbers_declare_their_units() -> None:
    unit = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
    bp = {i["linkId"]: i for i in questionnaire("blood_pressure", None, SYSTEMS)["item"]}
    assert bp["systolic"]["type"] == "decimal"
    assert bp["systolic"]["extension"] == [{"url": unit, "valueCoding": {
        "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]
    response = questionnaire_response(_facts("blood_pressure", CASES[11][1], "1.0.0"),
                                      SUBJECT, SYSTEMS)
    assert [i["answer"] for i in response["item"]] == [[{"valueDecimal": 128.5}],
                                                       [{"valueDecimal": 82.0}]]


def _scores(instrument: str, answers: dict[str, Any]) -> list[dict[str, Any]]:
    version = available_versions(instrument)[-1]
    found = observations(_facts(instrument, answers, version), SUBJECT, "urn:uuid:qr", SYSTEMS)
    return [o for o, _ in found if "interpretation" in o]


@pytest.mark.parametrize(("instrument", "answers", "code", "unit"), [
    ("who5", CASES[5][1], "who5-percent", "%"),
    ("gad2", CASES[4][1], "gad2-total", None),
    ("ada_risk", CASES[9][1], "ada-risk-total", None),
])
def test_scores_without_loinc_go_as_declared_local_codes(instrument: str,
                                                         answers: dict[str, Any], code: str,
                                                         unit: str | None) -> None:
    (obs,) = _scores(instrument, answers)
    validate(obs)
    (coding,) = obs["code"]["coding"]
    assert coding["system"] == SYSTEMS.code_system("scores") and coding["code"] == code
    total = score(instrument, answers).total
    assert {k: v for k, v in obs.items() if k.startswith("value")} == (
        {"valueQuantity": {"value": total, "unit": unit, "system": "http://unitsofmeasure.org",
                           "code": unit}} if unit else {"valueInteger": total})
    # The code is declared: the CodeSystem export-questionnaires writes lists it.
    (declared,) = [s for s in code_systems(SYSTEMS) if s["url"] == coding["system"]]
    validate(declared)
    assert coding["code"] in {c["code"] for c in declared["concept"]}


def test_phq9_item9_goes_as_its_own_observation() -> None:
    answers = CASES[0][1]
    found = observations(_facts("phq9", answers, "1.1.0"), SUBJECT, "urn:uuid:qr", SYSTEMS)
    (item9,) = [o for o, _ in found if o["code"]["coding"][0]["code"] == "44260-8"]
    validate(item9)
    assert item9["category"][0]["coding"][0]["code"] == "survey"
    assert item9["valueCodeableConcept"]["coding"] == [
        {"system": "http://loinc.org", "code": "LA6570-1", "display": "More than half the days"}]
    assert item9["derivedFrom"] == [{"reference": "urn:uuid:qr"}]
