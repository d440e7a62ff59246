"""Transactions: idempotent conditional creates, escalation by conditional update, references
resolved to assigned ids, and an invalid Bundle refused whole."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask.testing import FlaskClient

from central_emulator import create_app
from onsite_server.fhir import validate
from tests.onsite_server.fhir.test_build import MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS

from .helpers import referral, referral_update, transaction

# Observations: 6 scores and vital signs, and PHQ-9 item 9 on its own.
EVIDENCE = {"Patient": 1, "QuestionnaireResponse": 4, "Observation": 7, "ServiceRequest": 1,
            "Task": 1}


def _bundle() -> dict[str, Any]:
    from onsite_server.fhir import referral_bundle

    return referral_bundle(MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS)


def _counts(client: FlaskClient) -> dict[str, int]:
    counts: dict[str, int] = client.get("/_state").json["counts"]  # type: ignore[index]
    return {k: v for k, v in counts.items() if k in EVIDENCE}


def test_the_same_bundle_twice_leaves_one_of_each(client: FlaskClient) -> None:
    bundle = _bundle()
    first = client.post("/fhir", json=bundle)
    assert first.status_code == 200
    assert first.content_type.startswith("application/fhir+json")
    answer = first.json
    assert answer["type"] == "transaction-response"
    validate(answer)
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * len(
        bundle["entry"])
    again = client.post("/fhir", json=bundle).json
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * len(bundle["entry"])
    # The second answer points at the very resources the first created.
    assert [e["response"]["location"] for e in again["entry"]] == [
        e["response"]["location"] for e in answer["entry"]]
    assert _counts(client) == EVIDENCE


def test_references_point_at_assigned_ids(client: FlaskClient) -> None:
    answer = client.post("/fhir", json=_bundle()).json
    locations = [e["response"]["location"] for e in answer["entry"]]
    assert all(loc.count("/") == 3 and "/_history/" in loc for loc in locations)
    patient = locations[0].rsplit("/_history/", 1)[0]
    request = client.get("/fhir/ServiceRequest").json["entry"][0]["resource"]
    assert request["subject"]["reference"] == patient
    for info in request["supportingInfo"]:
        kind, rid = info["reference"].split("/")
        assert client.get(f"/fhir/{kind}/{rid}").status_code == 200
    assert "urn:uuid" not in str(client.get("/fhir/Observation").json)


def test_escalation_updates_the_one_service_request(client: FlaskClient) -> None:
    client.post("/fhir", json=referral("M-1002", priority="routine", public_id="ref-1"))
    urgent = referral_update(client, "M-1002", priority="urgent", public_id="ref-1")
    answer = client.post("/fhir", json=urgent).json
    assert answer["entry"][1]["response"]["status"] == "200 OK"
    assert answer["entry"][1]["response"]["location"].endswith("/_history/2")
    found = client.get(f"/fhir/ServiceRequest?identifier={SYSTEMS('referral')}|ref-1").json
    assert found["total"] == 1
    assert found["entry"][0]["resource"]["priority"] == "asap"
    assert found["entry"][0]["resource"]["meta"]["versionId"] == "2"
    assert _counts(client) == {"Patient": 1, "ServiceRequest": 1, "Task": 1}


def test_an_unchanged_update_keeps_its_version(client: FlaskClient) -> None:
    client.post("/fhir", json=referral(public_id="ref-2"))
    answer = client.post("/fhir", json=referral_update(client, public_id="ref-2")).json
    assert answer["entry"][1]["response"]["location"].endswith("/_history/1")


def _task(client: FlaskClient) -> dict[str, Any]:
    task: dict[str, Any] = client.get("/fhir/Task").json["entry"][0]["resource"]
    return task


def test_central_edits_a_task_and_a_stale_write_answers_412(client: FlaskClient) -> None:
    client.post("/fhir", json=referral(public_id="ref-3"))
    stale = referral_update(client, priority="urgent", public_id="ref-3")
    # An advocate at central takes the Task on (the pinned PUT by id, with the version read).
    task = _task(client)
    edited = {**task, "status": "in-progress", "owner": {"reference": "Practitioner/adv-001"},
              "note": [{"text": "Called, left a message"}]}
    answer = client.put(f"/fhir/Task/{task['id']}", json=edited,
                        headers={"If-Match": f'W/"{task["meta"]["versionId"]}"'})
    assert answer.status_code == 200 and answer.headers["ETag"] == 'W/"2"'
    # A second edit on the version it replaced is refused, and so is onsite's stale merge.
    again = client.put(f"/fhir/Task/{task['id']}", json=edited, headers={"If-Match": 'W/"1"'})
    assert again.status_code == 412
    assert again.json["issue"][0]["code"] == "conflict"
    refused = client.post("/fhir", json=stale)
    assert refused.status_code == 412
    assert _task(client)["status"] == "in-progress"
    # Read again and merged, onsite's escalation lands beside the advocate's work.
    assert client.post("/fhir", json=referral_update(client, priority="urgent",
                                                     public_id="ref-3")).status_code == 200
    task = _task(client)
    assert (task["status"], task["priority"]) == ("in-progress", "asap")
    assert task["owner"] == {"reference": "Practitioner/adv-001"}
    assert task["note"] == [{"text": "Called, left a message"}]


@pytest.mark.parametrize("damage, where", [
    (lambda b: b["entry"][3]["resource"].update(status="bogus"), "entry 3"),
    (lambda b: b["entry"][2]["resource"].update(subject="not a reference"), "entry 2"),
    (lambda b: b["entry"][5]["resource"].update(resourceType="Nonsense"), "entry 5"),
    (lambda b: b["entry"][1]["request"].update(method="DELETE"), "entry 1"),
    (lambda b: b["entry"][4]["resource"]["subject"].update(reference="urn:uuid:" + "0" * 32),
     "entry 4"),
])
def test_an_invalid_bundle_is_refused_whole(client: FlaskClient, damage: Any,
                                            where: str) -> None:
    before = client.get("/_state").json["counts"]
    bundle = copy.deepcopy(_bundle())
    damage(bundle)
    answer = client.post("/fhir", json=bundle)
    assert answer.status_code == 400
    outcome = answer.json
    assert outcome["resourceType"] == "OperationOutcome"
    validate(outcome)
    assert where in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["expression"][0].startswith(f"Bundle.entry[{where[6:]}]")
    assert client.get("/_state").json["counts"] == before  # nothing of it was kept


@pytest.mark.parametrize("body, status", [
    ({"resourceType": "Bundle", "type": "batch", "entry": []}, 400),
    ({"resourceType": "Patient"}, 400),
    ([1, 2], 400),
])
def test_what_is_not_a_transaction_is_refused(client: FlaskClient, body: Any,
                                              status: int) -> None:
    assert client.post("/fhir", json=body).status_code == status
    assert client.post("/fhir", data="{not json", content_type="application/fhir+json"
                       ).status_code == 400


def test_put_with_a_client_id_creates_then_updates(client: FlaskClient) -> None:
    patient = {"resourceType": "Patient", "id": "p-1", "active": True}
    entry = {"resource": patient, "request": {"method": "PUT", "url": "Patient/p-1"}}
    first = client.post("/fhir", json=transaction(entry)).json["entry"][0]["response"]
    assert (first["status"], first["location"]) == ("201 Created", "Patient/p-1/_history/1")
    entry["resource"] = {**patient, "active": False}
    second = client.post("/fhir", json=transaction(entry)).json["entry"][0]["response"]
    assert (second["status"], second["location"]) == ("200 OK", "Patient/p-1/_history/2")
    assert client.get("/fhir/Patient/p-1").json["active"] is False
    wrong = {"resource": {**patient, "id": "p-2"}, "request": {"method": "PUT",
                                                               "url": "Patient/p-1"}}
    assert client.post("/fhir", json=transaction(wrong)).status_code == 400


def test_two_matches_for_a_condition_answer_412(client: FlaskClient) -> None:
    for rid in ("a", "b"):
        client.put(f"/fhir/Patient/{rid}", json={
            "resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "same"}]})
    entry = {"resource": {"resourceType": "Patient"}, "request": {
        "method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:x|same"}}
    answer = client.post("/fhir", json=transaction(entry))
    assert answer.status_code == 412
    assert answer.json["issue"][0]["code"] == "multiple-matches"


def test_a_duplicate_inside_one_bundle_is_created_once(client: FlaskClient) -> None:
    entry = {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
             "resource": {"resourceType": "Patient",
                          "identifier": [{"system": "urn:x", "value": "twice"}]},
             "request": {"method": "POST", "url": "Patient",
                         "ifNoneExist": "identifier=urn:x|twice"}}
    answer = client.post("/fhir", json=transaction(entry, copy.deepcopy(entry))).json
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created", "200 OK"]
    assert client.get("/_state").json["counts"]["Patient"] == 1


def test_single_interactions_create_conditionally_and_update(client: FlaskClient) -> None:
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "one"}]}
    created = client.post("/fhir/Patient", json=body, headers={
        "If-None-Exist": "identifier=urn:x|one"})
    assert created.status_code == 201
    assert "/fhir/Patient/" in created.headers["Location"]
    again = client.post("/fhir/Patient", json=body, headers={
        "If-None-Exist": "identifier=urn:x|one"})
    assert again.status_code == 200 and again.json["id"] == created.json["id"]
    updated = client.put("/fhir/Patient?identifier=urn:x|one", json={**body, "active": True})
    assert updated.status_code == 200 and updated.json["active"] is True
    assert client.get("/_state").json["counts"]["Patient"] == 1


def test_a_static_token_guards_fhir_but_not_the_capability_statement() -> None:
    guarded = create_app({"TESTING": True, "TOKEN": "s3cret"}).test_client()
    assert guarded.get("/fhir/metadata").status_code == 200
    refused = guarded.post("/fhir", json=_bundle())
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.get("/fhir/Practitioner", headers={
        "Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.post("/fhir", json=_bundle(), headers={
        "Authorization": "Bearer s3cret"}).status_code == 200
    assert guarded.get("/_state").status_code == 401
    assert guarded.get("/_state", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_token_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRAL_EMULATOR_TOKEN", "from-env")
    guarded = create_app({"TESTING": True}).test_client()
    assert guarded.get("/fhir/Practitioner").status_code == 401
    assert guarded.get("/fhir/Practitioner", headers={
        "Authorization": "Bearer from-env"}).status_code == 200


def test_an_advocate_sent_in_another_namespace_is_the_directory_one(client: FlaskClient) -> None:
    system = SYSTEMS("advocate")
    entry = {"resource": {"resourceType": "Practitioner",
                          "identifier": [{"system": system, "value": "adv-002"}],
                          "name": [{"text": "James Carter"}]},
             "request": {"method": "POST", "url": "Practitioner",
                         "ifNoneExist": f"identifier={system}|adv-002"}}
    answer = client.post("/fhir", json=transaction(entry)).json["entry"][0]["response"]
    assert (answer["status"], answer["location"]) == ("200 OK",
                                                      "Practitioner/adv-002/_history/1")
    assert client.get("/_state").json["counts"]["Practitioner"] == 3


def test_a_care_team_is_created_only_where_central_has_none(client: FlaskClient) -> None:
    def team(member: str, condition: str) -> dict[str, Any]:
        return {"resource": {"resourceType": "CareTeam", "status": "active",
                             "identifier": [{"system": "urn:other-site:careteam",
                                             "value": member}],
                             "subject": {"identifier": {"system": SYSTEMS("member"),
                                                        "value": member}}},
                "request": {"method": "POST", "url": "CareTeam", "ifNoneExist": condition}}

    before = client.get("/_state").json["counts"]["CareTeam"]
    # The demo directory assigns M-1001: a condition on the member finds central's team.
    kept = client.post("/fhir", json=transaction(team(
        "M-1001", f"subject:identifier={SYSTEMS('member')}|M-1001"))).json
    assert kept["entry"][0]["response"]["location"].startswith("CareTeam/careteam-M-1001/")
    # A condition on a CareTeam identifier compares its system too: another site's
    # identifier is not central's, so that would be a second team (as on a real server).
    other = client.post("/fhir", json=transaction(team(
        "M-1001", "identifier=urn:other-site:careteam|M-1001"))).json
    assert other["entry"][0]["response"]["status"] == "201 Created"
    assert client.get("/_state").json["counts"]["CareTeam"] == before + 1
    # A condition the server does not understand is refused, not taken as "matches all".
    refused = client.post("/fhir", json=transaction(team("M-1002", "nonsense=1")))
    assert refused.status_code == 400
