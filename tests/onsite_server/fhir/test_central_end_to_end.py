"""End to end, on SQLite and PostgreSQL: kiosk requests to the onsite API, the sync worker with
the real HTTP client, and a live central emulator whose advocates edit their Tasks.

Central's edits survive a sync (even one that races them: 412, read, merge, retry), the status
pull sees them, the contact the member chose reaches their Patient, a member who declined or
never answered sends nothing but what they asked for (a booking), a crisis without consent
still reaches central as an active stat request, and a consent withdrawn afterwards revokes
and cancels what central holds without deleting it. Every Bundle sent is also valid R4 for
FHIR.js (npm fhir), and every QuestionnaireResponse in them answers the Questionnaire that
``onsite-server export-questionnaires`` publishes (an independent check, item by item).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from central_emulator import create_app as create_central
from onsite_server.central import CentralClient
from onsite_server.cli import main as onsite_cli
from onsite_server.db import get_db
from onsite_server.fhir import WITHOUT_CONSENT, Systems, validate
from onsite_server.models import Member, OutboxMessage, Referral
from onsite_server.services.signing import KeyStore
from onsite_server.services.sync import SyncSettings, pull_statuses, run_cycle

from ...fhir_conformance import check_response, fhirjs_validate
from ...live import serve_in_thread
from ..helpers import auth, gen_event, identified_member, new_key, submission_item

PHQ9_MODERATE = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "8": 2, "9": 0}
PHQ9_ITEM9 = {str(i): 1 for i in range(1, 9)} | {"9": 2}
GAD7_MODERATE = {str(i): 2 for i in range(1, 8)}
# The consenting member's other check-ups: every kind of answer the Questionnaires declare
# (codings from LOINC and from our own CodeSystems, decimals with units, yes/no), and
# questions turned off by an earlier answer (a man who never drinks).
MORE = [
    ("who5", {"1": 2, "2": 1, "3": 2, "4": 1, "5": 2}),
    ("gad2", {"1": 2, "2": 1}),
    ("audit_c", {"1": 0, "sex": "male"}),
    ("ada_risk", {"age": 52, "sex": "male", "family_history": True,
                  "high_blood_pressure": True, "physically_active": False,
                  "height_cm": 175.5, "weight_kg": 96.4}),
    ("blood_pressure", {"systolic": 142.5, "diastolic": 91}),
    ("bmi", {"height_cm": 175.5, "weight_kg": 96.4}),
]


@pytest.fixture
def central() -> Iterator[str]:
    """A central emulator (empty directory) served on loopback; yields its base URL."""
    with serve_in_thread(create_central({"TESTING": True, "DEMO_DIRECTORY": False})) as port:
        yield f"http://127.0.0.1:{port}"


class Kiosk:
    """The onsite kiosk API as a kiosk calls it."""

    def __init__(self, app: Flask, client: Any, site: Any, kiosk: dict[str, Any]) -> None:
        self.app, self.client, self.site, self.kiosk = app, client, site, kiosk

    def member(self) -> tuple[str, str]:
        """A new roster member: (member id at central, member_ref for the kiosk)."""
        public_id, ref = identified_member(self.app, self.site, self.kiosk)
        with get_db(self.app).transaction(write=False) as session:
            member_id = session.scalars(select(Member.member_id).where(
                Member.public_id == public_id)).one()
        return member_id, ref

    def post(self, path: str, body: dict[str, Any], expect: int = 200) -> Any:
        resp = self.client.post(f"/api/v1{path}", json=body,
                                headers=auth(self.kiosk["token"]))
        assert resp.status_code == expect, resp.get_json()
        return resp.get_json()

    def answer(self, ref: str, instrument: str, answers: dict[str, Any]) -> None:
        self.post("/submissions", {"items": [submission_item(instrument, answers,
                                                             member_ref=ref)]})

    def consent(self, ref: str, agreed: bool) -> None:
        body: dict[str, Any] = {"idempotency_key": new_key(), "member_ref": ref,
                                "consent": agreed}
        if agreed:
            body |= {"contact_method": "phone", "contact_time": "morning",
                     "phone": "+1 555 0100"}
        self.post("/referrals/consent", body)


class Central:
    """What central holds, read over FHIR, and its advocates' edits."""

    def __init__(self, url: str) -> None:
        self.url = url

    def all(self, kind: str) -> list[dict[str, Any]]:
        resp = requests.get(f"{self.url}/fhir/{kind}", timeout=30)
        assert resp.status_code == 200, resp.text
        return [e["resource"] for e in resp.json().get("entry", [])]

    def about(self, member_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every resource that names the member's Patient, by type."""
        patients = [p for p in self.all("Patient")
                    if any(i.get("value") == member_id for i in p.get("identifier", []))]
        refs = {f"Patient/{p['id']}" for p in patients}
        found: dict[str, list[dict[str, Any]]] = {"Patient": patients} if patients else {}
        for kind in ("QuestionnaireResponse", "Observation", "ServiceRequest", "Task",
                     "CareTeam", "Appointment", "Communication"):
            for resource in self.all(kind):
                named = [resource.get("subject"), resource.get("for")] + [
                    p.get("actor") for p in resource.get("participant", [])]
                if any(isinstance(r, dict) and r.get("reference") in refs for r in named):
                    found.setdefault(kind, []).append(resource)
        return found

    def of_member(self, kind: str, person: dict[str, Any]) -> list[dict[str, Any]]:
        """The resources of a type whose subject is this Patient."""
        return [r for r in self.all(kind)
                if (r.get("subject") or {}).get("reference") == f"Patient/{person['id']}"]

    def task_of(self, request: dict[str, Any]) -> dict[str, Any]:
        (task,) = [t for t in self.all("Task")
                   if t["focus"]["reference"] == f"ServiceRequest/{request['id']}"]
        return task

    def has_advocate(self) -> None:
        """Central's own user record of the advocate who edits Tasks (a strict central
        refuses a Task owned by a Practitioner it does not hold). It has no identifier, so
        the directory pull leaves it out of the onsite directory."""
        resp = requests.put(f"{self.url}/fhir/Practitioner/adv-001", timeout=30, json={
            "resourceType": "Practitioner", "id": "adv-001", "name": [{"text": "Maria Lopez"}]})
        assert resp.status_code in (200, 201), resp.text

    def advocate_edits(self, task: dict[str, Any]) -> None:
        """An advocate takes the Task, starts work and adds a note (PUT with If-Match)."""
        edited = {**task, "status": "in-progress", "businessStatus": {"text": "calling"},
                  "owner": {"reference": "Practitioner/adv-001"},
                  "note": [*task.get("note", []), {"text": "Called, left a voicemail",
                                                   "authorString": "Maria Lopez"}]}
        resp = requests.put(f"{self.url}/fhir/Task/{task['id']}", json=edited, timeout=30,
                            headers={"If-Match": f'W/"{task["meta"]["versionId"]}"'})
        assert resp.status_code == 200, resp.text


class Recording(CentralClient):
    """The real client, keeping a copy of every transaction Bundle it sends."""

    def __init__(self, base_url: str, sent: list[dict[str, Any]]) -> None:
        super().__init__(base_url=base_url)
        self.sent = sent

    def transaction(self, bundle: Any) -> Any:
        self.sent.append(json.loads(json.dumps(bundle)))
        return super().transaction(bundle)


class Racing(Recording):
    """The real client, with an advocate editing the Task just before our first write."""

    def __init__(self, base_url: str, central: Central, sent: list[dict[str, Any]]) -> None:
        super().__init__(base_url, sent)
        self.central = central
        self.raced = False
        self.writes = 0

    def transaction(self, bundle: Any) -> Any:
        self.writes += 1
        tasks = [e["request"]["url"].split("/")[1] for e in bundle["entry"]
                 if "ifMatch" in e["request"] and e["request"]["url"].startswith("Task/")]
        if not self.raced and tasks:
            self.raced = True
            for task in self.central.all("Task"):
                if task["id"] in tasks:
                    self.central.advocate_edits(task)
        return super().transaction(bundle)


def _settings(app: Flask) -> SyncSettings:
    return SyncSettings(systems=Systems(str(app.config["FHIR_IDENTIFIER_BASE"])),
                        site="e2e", keys=KeyStore(Path(app.config["SIGNING_KEY_DIR"])),
                        worker_id="e2e")


def _status(app: Flask, ref_public_id: str) -> str:
    with get_db(app).transaction(write=False) as session:
        return session.scalars(select(Referral.status).where(
            Referral.public_id == ref_public_id)).one()


def test_central_work_survives_and_consent_decides(app: Flask, client: Any, site: Any,
                                                  kiosk: dict[str, Any], central: str,
                                                  runner: Any, tmp_path: Path) -> None:
    desk, held = Kiosk(app, client, site, kiosk), Central(central)
    held.has_advocate()
    sent: list[dict[str, Any]] = []
    sender = Recording(f"{central}/fhir", sent)
    settings = _settings(app)

    def sync(through: Any = sender) -> Any:
        report = run_cycle(get_db(app).transaction, through, settings)
        assert report.dead == 0 and report.retried == 0, report
        return report

    agreed, agreed_ref = desk.member()
    declined, declined_ref = desk.member()
    silent, silent_ref = desk.member()
    crisis, crisis_ref = desk.member()
    desk.answer(agreed_ref, "phq9", PHQ9_MODERATE)
    for instrument, answers in MORE:
        desk.answer(agreed_ref, instrument, answers)
    desk.consent(agreed_ref, True)
    desk.answer(declined_ref, "phq9", PHQ9_MODERATE)
    desk.consent(declined_ref, False)
    desk.answer(silent_ref, "phq9", PHQ9_MODERATE)  # never answers the consent question
    desk.answer(crisis_ref, "phq9", PHQ9_ITEM9)
    desk.consent(crisis_ref, False)
    # What the declining member asked for themselves still goes: their booking.
    with get_db(app).transaction() as session:
        slot_id = gen_event(session, site).slots[0].public_id
    booking = desk.post("/bookings", {"idempotency_key": new_key(), "member_ref": declined_ref,
                                      "slot_id": slot_id}, 201)
    report = sync()
    assert report.sent == 4 and report.withheld == 2, report  # 2 referrals, a booking, its message

    # A declined member and a silent one: nothing identifying but the booking they made.
    assert held.about(silent) == {}
    sent_for_declined = held.about(declined)
    assert sorted(sent_for_declined) == ["Appointment", "Communication", "Patient"]
    assert [a["identifier"][0]["value"] for a in sent_for_declined["Appointment"]] == [
        booking["booking_id"]]
    assert "PHQ" not in str(sent_for_declined) and "phq9" not in str(sent_for_declined)

    # The pinned crisis: active and stat, never revoked, marked, with only item 9.
    of_crisis = held.about(crisis)
    (request,) = of_crisis["ServiceRequest"]
    assert (request["status"], request["priority"]) == ("active", "stat")
    assert request["meta"]["security"] == [WITHOUT_CONSENT]
    (response,) = of_crisis["QuestionnaireResponse"]
    assert [i["linkId"] for i in response["item"]] == ["9"]
    # No score went: only item 9's answer, as its own Observation (LOINC 44260-8).
    assert [o["code"]["coding"][0]["code"] for o in of_crisis["Observation"]] == ["44260-8"]

    # The consenting member's chosen contact reaches central, on their Patient, and the
    # Patient carries the member id (typed MB) and the public id the advocate link names.
    (person,) = held.about(agreed)["Patient"]
    assert person["telecom"] == [{"system": "phone", "value": "+1 555 0100", "use": "mobile",
                                  "rank": 1}]
    assert [i["type"]["coding"][0]["code"] for i in person["identifier"]
            if i["value"] == agreed] == ["MB"]
    assert len(person["identifier"]) == 2
    assert "telecom" not in held.about(declined)["Patient"][0]
    (preference,) = held.of_member("CommunicationRequest", person)
    assert preference["status"] == "active"
    assert preference["medium"][0]["coding"][0]["code"] == "PHONE"

    # An advocate at central works on the consenting member's referral.
    (request,) = held.about(agreed)["ServiceRequest"]
    held.advocate_edits(held.task_of(request))
    evidence = len(request["supportingInfo"])

    # A new finding at the kiosk, and a sync whose write races a second edit: 412, read, merge.
    desk.answer(agreed_ref, "gad7", GAD7_MODERATE)
    racing = Racing(f"{central}/fhir", held, sent)
    assert sync(racing).sent == 1
    assert racing.raced and racing.writes == 2  # the first write was refused, not lost
    (request,) = held.about(agreed)["ServiceRequest"]
    task = held.task_of(request)
    assert task["status"] == "in-progress" and task["businessStatus"] == {"text": "calling"}
    assert task["owner"] == {"reference": "Practitioner/adv-001"}
    assert [n["text"] for n in task["note"]].count("Called, left a voicemail") == 2
    assert len(request["supportingInfo"]) > evidence  # the GAD-7 reached it
    assert any("gad7" in str(c) for c in request["reasonCode"])
    assert task["meta"]["versionId"] != "1"

    # The status pull sees the advocate's work.
    with get_db(app).transaction(write=False) as session:
        agreed_referral = session.scalars(select(Referral.public_id).join(Member).where(
            Member.member_id == agreed)).one()
    assert pull_statuses(get_db(app).transaction, sender, settings) == 1
    assert _status(app, agreed_referral) == "contacted"

    # Consent withdrawn: central's request is revoked and its Task cancelled, nothing deleted.
    before = held.about(agreed)
    desk.consent(agreed_ref, False)
    assert sync().sent == 1
    after = held.about(agreed)
    (request,) = after["ServiceRequest"]
    task = held.task_of(request)
    assert (request["status"], task["status"]) == ("revoked", "cancelled")
    (person,) = after["Patient"]
    assert [p["status"] for p in held.of_member("CommunicationRequest", person)] == ["revoked"]
    assert task["owner"] == {"reference": "Practitioner/adv-001"}
    assert "Called, left a voicemail" in [n["text"] for n in task["note"]]
    assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items()}
    # Nothing more goes for that member, even a new finding.
    desk.answer(agreed_ref, "phq9", PHQ9_MODERATE)
    sync()
    assert {k: len(v) for k, v in held.about(agreed).items()} == {
        k: len(v) for k, v in after.items()}
    with get_db(app).transaction(write=False) as session:
        left = session.scalars(select(OutboxMessage.status).where(
            OutboxMessage.status.in_(("pending", "sending", "dead")))).all()
    assert left == []

    _check_what_was_sent(app, runner, tmp_path, sent)


def _check_what_was_sent(app: Flask, runner: Any, tmp_path: Path,
                         sent: list[dict[str, Any]]) -> None:
    """Every Bundle is valid R4 for FHIR.js; every response answers its Questionnaire."""
    resources = [e["resource"] for b in sent for e in b["entry"]]
    for bundle in sent:
        validate(bundle)  # the R4B models and our code checks, as the sync did before sending
    out = tmp_path / "published"
    result = runner.invoke(onsite_cli, ["export-questionnaires", "--out", str(out),
                                        "--all-versions"], obj={"app": app})
    assert result.exit_code == 0, result.output
    exported = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.json"))]
    published = {f"{r['url']}|{r['version']}": r for r in exported
                 if r["resourceType"] == "Questionnaire"}
    # The Bundles and what we publish beside them, in one run of FHIR.js.
    messages = fhirjs_validate([*sent, *exported])
    errors = [m for found in messages for m in found if m["severity"] == "error"]
    warnings = [m for found in messages for m in found if m["severity"] == "warning"]
    assert errors == [], errors
    # Warnings are codes FHIR.js cannot look up (LOINC, ours) in example or extensible
    # bindings; never a required one.
    assert all("not found in value set" in w["message"] for w in warnings), warnings
    responses = [r for r in resources if r["resourceType"] == "QuestionnaireResponse"]
    problems = {r["identifier"]["value"]: check_response(published[r["questionnaire"]], r)
                for r in responses}
    assert {k: v for k, v in problems.items() if v} == {}
    instruments = {r["questionnaire"].split("/")[-1].split("|")[0] for r in responses}
    assert {"phq9", "gad7", "who5", "gad2", "audit_c", "ada_risk", "blood_pressure",
            "bmi"} <= instruments
    print(f"sent: {len(sent)} bundles, {len(resources)} resources, valid for the R4B models; "
          f"FHIR.js (with {len(exported)} published resources): {len(errors)} errors, "
          f"{len(warnings)} warnings; {len(responses)} QuestionnaireResponses, "
          f"{sum(len(r['item']) for r in responses)} items checked against "
          f"{len(published)} published Questionnaires: "
          f"{sum(len(v) for v in problems.values())} mismatches")
