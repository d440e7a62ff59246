"""Field ownership: an update from onsite sets the kiosk's findings on central's copy and
leaves central's work (Task status after requested, owner, notes, outcomes) as it is."""

from __future__ import annotations

from typing import Any

import pytest

from onsite_server.fhir import ONSITE_AUTHOR, merge
from onsite_server.fhir.ownership import SERVICE_REQUEST_FIELDS, TASK_FIELDS

CENTRAL_TASK: dict[str, Any] = {
    "resourceType": "Task", "id": "t-1", "meta": {"versionId": "5", "lastUpdated": "x"},
    "status": "in-progress", "intent": "order", "priority": "asap",
    "businessStatus": {"text": "left a voicemail"},
    "owner": {"reference": "Practitioner/adv-001"},
    "identifier": [{"system": "urn:central:task", "value": "C-9"}],
    "note": [{"text": "Called at 10:05", "authorReference": {"reference": "Practitioner/adv-001"}},
             {"text": "old onsite note", "authorString": ONSITE_AUTHOR}],
    "output": [{"type": {"text": "outcome"}, "valueString": "booked a call"}],
    "focus": {"reference": "ServiceRequest/sr-1"},
}
OURS_TASK: dict[str, Any] = {
    "resourceType": "Task", "status": "requested", "intent": "order", "priority": "urgent",
    "identifier": [{"system": "https://onsite/referral-task", "value": "r-1"}],
    "focus": {"reference": "urn:uuid:sr"}, "for": {"reference": "urn:uuid:p"},
    "businessStatus": {"text": "sent"},
    "note": [{"text": "Crisis trigger: phq9_item9", "authorString": ONSITE_AUTHOR}],
}


def test_central_work_on_a_task_stays() -> None:
    merged = merge(CENTRAL_TASK, OURS_TASK, TASK_FIELDS)
    assert merged["status"] == "in-progress"  # not back to requested
    assert merged["businessStatus"] == {"text": "left a voicemail"}
    assert merged["owner"] == {"reference": "Practitioner/adv-001"}
    assert merged["output"] == CENTRAL_TASK["output"]
    assert merged["priority"] == "asap"  # ours is lower: a priority never drops
    assert [n["text"] for n in merged["note"]] == ["Called at 10:05",
                                                   "Crisis trigger: phq9_item9"]
    # Both identifiers; the version is central's to set.
    assert len(merged["identifier"]) == 2 and "meta" not in merged
    assert merged["focus"] == OURS_TASK["focus"] and merged["for"] == OURS_TASK["for"]


@pytest.mark.parametrize(("central", "ours", "expected"), [
    ("requested", "requested", "requested"),
    ("accepted", "requested", "accepted"),  # forward only
    ("accepted", "in-progress", "in-progress"),  # an onsite move forward goes on
    ("in-progress", "cancelled", "cancelled"),  # its request was revoked
    ("completed", "cancelled", "completed"),  # closed stays closed
    ("failed", "requested", "failed"),
])
def test_task_status_moves_forward_only(central: str, ours: str, expected: str) -> None:
    merged = merge({**CENTRAL_TASK, "status": central}, {**OURS_TASK, "status": ours},
                   TASK_FIELDS)
    assert merged["status"] == expected


@pytest.mark.parametrize(("central", "ours", "priority", "expected"), [
    ("active", "active", "routine", "active"),
    ("on-hold", "active", "routine", "on-hold"),  # central paused it
    ("active", "revoked", "routine", "revoked"),  # consent withdrawn
    ("completed", "revoked", "routine", "completed"),
    ("revoked", "active", "routine", "revoked"),
    ("revoked", "active", "stat", "active"),  # a crisis goes whatever the consent
])
def test_service_request_status(central: str, ours: str, priority: str, expected: str) -> None:
    held = {"resourceType": "ServiceRequest", "id": "sr-1", "status": central,
            "intent": "order", "priority": "routine", "subject": {"reference": "Patient/p"},
            "performer": [{"reference": "Practitioner/adv-002"}]}
    sent = {"resourceType": "ServiceRequest", "status": ours, "intent": "order",
            "priority": priority, "subject": {"reference": "urn:uuid:p"},
            "reasonCode": [{"text": "new finding"}],
            "performer": [{"identifier": {"value": "adv-001"}}]}
    merged = merge(held, sent, SERVICE_REQUEST_FIELDS)
    assert merged["status"] == expected and merged["priority"] == priority
    assert merged["reasonCode"] == [{"text": "new finding"}]
    assert merged["performer"] == [{"reference": "Practitioner/adv-002"}]  # central's


def test_a_withdrawal_changes_only_the_status() -> None:
    merged = merge(CENTRAL_TASK, {**OURS_TASK, "status": "cancelled"}, ())
    assert merged == {**{k: v for k, v in CENTRAL_TASK.items() if k != "meta"},
                      "status": "cancelled"}


def test_evidence_accumulates_and_is_not_doubled() -> None:
    ident = {"system": "https://onsite/submission", "value": "s-1"}
    held = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p"},
            "supportingInfo": [
                {"reference": "QuestionnaireResponse/qr-1", "identifier": ident},
                {"reference": "QuestionnaireResponse/qr-0",  # purged onsite since
                 "identifier": {"system": "https://onsite/submission", "value": "s-0"}},
                {"reference": "DocumentReference/central-own"}]}
    sent = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "urn:uuid:p"},
            "supportingInfo": [{"reference": "urn:uuid:qr-1", "identifier": ident},
                               {"reference": "urn:uuid:qr-2", "identifier": {
                                   "system": "https://onsite/submission", "value": "s-2"}}]}
    merged = merge(held, sent, SERVICE_REQUEST_FIELDS)
    assert [r["reference"] for r in merged["supportingInfo"]] == [
        "QuestionnaireResponse/qr-0", "DocumentReference/central-own", "urn:uuid:qr-1",
        "urn:uuid:qr-2"]


def test_the_chosen_contact_is_added_beside_centrals() -> None:
    held = {"resourceType": "Patient", "id": "p-1", "meta": {"versionId": "2",
                                                              "security": [{"code": "R"}]},
            "name": [{"family": "Lopez"}],
            "identifier": [{"system": "urn:payer:member", "value": "M-1"}],
            "telecom": [{"system": "phone", "value": "+1 555 0199", "use": "home"}]}
    ours = {"resourceType": "Patient", "active": True,
            "identifier": [{"system": "urn:payer:member", "value": "M-1"},
                           {"system": "urn:onsite:public", "value": "pub-1"}],
            "telecom": [{"system": "phone", "value": "+1 555 0100", "use": "mobile",
                         "rank": 1}]}
    merged = merge(held, ours, ("telecom",))
    assert merged["name"] == [{"family": "Lopez"}]  # central's record of the member stays
    assert merged["meta"] == {"security": [{"code": "R"}]}
    assert [t["value"] for t in merged["telecom"]] == ["+1 555 0199", "+1 555 0100"]
    assert [i["value"] for i in merged["identifier"]] == ["M-1", "pub-1"]
    assert merge(merged, ours, ("telecom",))["telecom"] == merged["telecom"]  # not twice
