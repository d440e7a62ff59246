"""The emulator refuses what a strict FHIR server refuses, with an OperationOutcome, by the
rules of the specification itself (central_emulator/spec.py), not the onsite server's tables."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from central_emulator import create_app, spec
from onsite_server.fhir import (
    AppointmentFacts,
    MemberFacts,
    booking_entries,
    referral_bundle,
    validate,
)
from tests.onsite_server.fhir.test_build import REFERRAL, SUBMISSIONS, SYSTEMS, TAKEN

MEMBER = MemberFacts(member_id="M-2001", public_id="4b7e2c1a-0000-4000-8000-000000000021")
Bundle = dict[str, Any]


def _referral() -> Bundle:
    from dataclasses import replace

    return referral_bundle(MEMBER, replace(REFERRAL, advocate_id="adv-001"), SUBMISSIONS,
                           SYSTEMS)


def _booking() -> Bundle:
    booking = AppointmentFacts(public_id="5e1d0c2b-0000-4000-8000-000000000031",
                               status="booked", start=TAKEN, end=TAKEN, event_title="Flu shots",
                               event_kind="flu_shot", created_at=TAKEN)
    return booking_entries(MEMBER, booking, None, SYSTEMS).bundle()


def _entry(bundle: Bundle, kind: str, code: str | None = None) -> dict[str, Any]:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == kind and (
                code is None or resource["code"]["coding"][0]["code"] == code):
            return entry  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind} {code or ''} in the bundle")


def _participant(bundle: Bundle) -> None:
    _entry(bundle, "Appointment")["resource"]["participant"][0]["status"] = "bogus"


def _care_team(bundle: Bundle) -> None:
    _entry(bundle, "CareTeam")["resource"]["status"] = "bogus"


def _encounter(bundle: Bundle) -> None:
    bundle["entry"].append({"resource": {
        "resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
        "request": {"method": "POST", "url": "Encounter"}})


def _obs6(bundle: Bundle) -> None:
    _entry(bundle, "Observation", "44261-6")["resource"]["dataAbsentReason"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
        "code": "asked-declined"}]}


def _qty3(bundle: Bundle) -> None:
    del _entry(bundle, "Observation", "39156-5")["resource"]["valueQuantity"]["system"]


def _control_character(bundle: Bundle) -> None:
    _entry(bundle, "Appointment")["resource"]["description"] = "Flu\x0bshots"


def _no_patient(bundle: Bundle) -> None:
    observation = copy.deepcopy(_entry(bundle, "Observation", "44261-6"))
    observation["resource"]["subject"] = {"reference": "Patient/not-at-central"}
    observation["resource"].pop("derivedFrom")
    observation["request"] = {"method": "POST", "url": "Observation"}
    bundle["entry"] = [observation]


# The six invalid inputs central's integration review found accepted (issue 16 §7), and a
# control character in a string (session 17).
INVALID: list[tuple[str, Callable[[], Bundle], Callable[[Bundle], None], int, str, str]] = [
    ("Appointment.participant.status", _booking, _participant, 400, "code-invalid",
     "Appointment.participant[0].status: 'bogus' is not a code of the required value set "
     "http://hl7.org/fhir/ValueSet/participationstatus"),
    ("CareTeam.status", _referral, _care_team, 400, "code-invalid",
     "CareTeam.status: 'bogus' is not a code of the required value set "
     "http://hl7.org/fhir/ValueSet/care-team-status"),
    ("Encounter", _referral, _encounter, 400, "not-supported",
     "this server does not support Encounter"),
    ("obs-6", _referral, _obs6, 400, "invalid", "obs-6"),
    ("qty-3", _referral, _qty3, 400, "invalid", "qty-3"),
    # R4 datatypes.html#string: no character below U+0020 but tab, CR and LF.
    ("control character in a string", _booking, _control_character, 400, "invalid",
     "Appointment.description: a string may not hold the control character U+000B"),
    ("subject Patient missing", _referral, _no_patient, 422, "processing",
     "subject names Patient/not-at-central, which this server does not hold"),
]


@pytest.mark.parametrize(("name", "make", "damage", "status", "code", "says"), INVALID,
                         ids=[case[0] for case in INVALID])
def test_what_a_strict_server_refuses(client: FlaskClient, name: str,
                                      make: Callable[[], Bundle],
                                      damage: Callable[[Bundle], None], status: int, code: str,
                                      says: str) -> None:
    good = make()
    before = client.get("/_state").json["counts"]  # type: ignore[index]
    bad = copy.deepcopy(good)
    damage(bad)
    answer = client.post("/fhir", json=bad)
    assert answer.status_code == status, answer.json
    outcome = answer.json
    assert outcome["resourceType"] == "OperationOutcome"
    validate(outcome)
    (issue,) = outcome["issue"]
    assert issue["severity"] == "error" and issue["code"] == code
    assert says in issue["diagnostics"]
    assert issue["expression"][0].startswith("Bundle.entry[")
    assert client.get("/_state").json["counts"] == before  # nothing of it was kept
    # The same Bundle undamaged goes through: it is the damage that is refused.
    if name != "subject Patient missing":
        assert client.post("/fhir", json=good).status_code == 200


def test_a_type_outside_the_capability_statement_is_refused_over_rest(
        client: FlaskClient) -> None:
    served = {r["type"] for r in client.get("/fhir/metadata").json["rest"][0]["resource"]}
    assert "Encounter" not in served and served == set(spec.SUPPORTED_TYPES)
    for answer in (client.post("/fhir/Encounter", json={"resourceType": "Encounter"}),
                   client.get("/fhir/Encounter")):
        assert answer.status_code == 404
        assert answer.json["issue"][0]["code"] == "not-supported"


def test_an_observation_about_a_patient_central_holds_is_accepted(client: FlaskClient) -> None:
    client.post("/fhir", json=_referral())
    patient = client.get("/fhir/Patient").json["entry"][0]["resource"]
    bundle = _referral()
    _no_patient(bundle)
    bundle["entry"][0]["resource"]["subject"] = {"reference": f"Patient/{patient['id']}"}
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "another"
    assert client.post("/fhir", json=bundle).status_code == 200


def test_the_rules_are_the_specifications() -> None:
    # Not the onsite server's tables (central_emulator never imports onsite_server:
    # tests/test_layers.py) but the R4 definitions, as npm fhir packages them.
    profiles = Path(__file__).resolve().parents[2] / "node_modules" / "fhir" / "profiles"
    types = json.loads((profiles / "types.json").read_text(encoding="utf-8"))
    value_sets = json.loads((profiles / "valuesets.json").read_text(encoding="utf-8"))
    assert spec.extract(types, value_sets) == json.loads(
        spec.RULES_PATH.read_text(encoding="utf-8")), \
        "central_emulator/r4_rules.json is stale: python -m central_emulator.spec"
    # What our resources rely on is in it, straight from R4.
    rules = spec.rules()
    assert rules["types"]["Appointment"]["participant"]["elements"]["status"]["valueSet"] == (
        "http://hl7.org/fhir/ValueSet/participationstatus")
    assert rules["valueSets"]["http://hl7.org/fhir/ValueSet/care-team-status"] == [
        "active", "entered-in-error", "inactive", "proposed", "suspended"]


def test_a_fresh_emulator_takes_every_sample_bundle() -> None:
    from onsite_server.fhir.samples import samples

    client = create_app({"TESTING": True}).test_client()
    for name in ("referral-with-consent", "crisis-without-consent", "booking",
                 "booking-message"):
        answer = client.post("/fhir", json=samples()[name])
        assert answer.status_code == 200, (name, answer.json)
