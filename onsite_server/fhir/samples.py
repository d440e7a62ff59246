"""The sample transaction Bundles of docs/advocate-handoff.md, one per kind of message.

Built with the real builders from fictional facts, so the samples in docs/fhir-samples/ are
what the sync worker sends (a test rebuilds and compares them). The site's key Binaries, which
every Bundle also carries, are left out. Write them again with
``python -m onsite_server.fhir.samples docs/fhir-samples``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.assessments import score

from .builders import (
    AppointmentFacts,
    MemberFacts,
    MessageFacts,
    ReferralFacts,
    SubmissionFacts,
    Systems,
    booking_entries,
    referral_entries,
)

SYSTEMS = Systems("https://fhir.onsite-wellness.example/id")
MEMBER = MemberFacts(member_id="M-1001", public_id="4b7e2c1a-0000-4000-8000-000000000001")
TAKEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _submission(instrument: str, answers: dict[str, Any], key: str) -> SubmissionFacts:
    result = score(instrument, answers)
    return SubmissionFacts(key=key, instrument_id=instrument, version=result.version,
                           answers=answers, skipped=(), result=result.as_dict(),
                           taken_at=TAKEN)


def samples() -> dict[str, dict[str, Any]]:
    """Return the sample Bundles by name (the file name without .json)."""
    phq2 = _submission("phq2", {"1": 2, "2": 2}, "6f0c9a6e-0000-4000-8000-000000000001")
    phq9 = _submission("phq9", {str(i): 1 for i in range(1, 9)} | {"9": 2},
                       "6f0c9a6e-0000-4000-8000-000000000002")
    referral = ReferralFacts(
        public_id="9d8c7b6a-0000-4000-8000-000000000009", version=2, status="new",
        priority="soon", programs=("behavioral_health",),
        reasons=({"code": "phq2_positive", "priority": "soon",
                  "programs": ["behavioral_health"],
                  "text": {"en": "PHQ-2 positive screen"}},),
        consent=True, contact_method="phone", contact_time="morning", advocate_id="adv-001",
        contact_phone="+1 555 0100", site="demo-hq", authored_at=TAKEN)
    first = referral_entries(MEMBER, referral, [phq2], SYSTEMS)
    owned = {item.kind: item for item in first.owned}
    request, task = owned["ServiceRequest"], owned["Task"]
    # What central holds after an advocate started work: their note, owner and status.
    held = {
        request.full_url: {
            "resourceType": "ServiceRequest", "id": "sr-41", "meta": {"versionId": "3"},
            "status": "active", "intent": "order", "priority": "urgent",
            "subject": {"reference": "Patient/p-7"},
            "identifier": request.resource["identifier"],
            "note": [{"authorString": "Maria Lopez", "text": "Prefers Spanish"}]},
        task.full_url: {
            "resourceType": "Task", "id": "task-41", "meta": {"versionId": "5"},
            "status": "in-progress", "intent": "order", "priority": "urgent",
            "identifier": task.resource["identifier"],
            "focus": {"reference": "ServiceRequest/sr-41"}, "for": {"reference": "Patient/p-7"},
            "owner": {"reference": "Practitioner/adv-001"},
            "businessStatus": {"text": "calling"},
            "note": [{"authorString": "Maria Lopez", "text": "Left a voicemail"}]}}
    escalated = replace(referral, priority="urgent", forwarded=True, reasons=(
        *referral.reasons, {"code": "gad7_moderate", "priority": "urgent",
                            "programs": ["behavioral_health"],
                            "text": {"en": "GAD-7 moderate"}}))
    crisis = ReferralFacts(
        public_id="9d8c7b6a-0000-4000-8000-00000000000a", version=1, status="new",
        priority="crisis", programs=("behavioral_health",),
        reasons=({"code": "crisis_phq9_item9", "priority": "crisis",
                  "programs": ["behavioral_health"],
                  "text": {"en": "PHQ-9 item 9 answered above 'Not at all'"}},),
        crisis_triggers=("phq9_item9",), consent=False, authored_at=TAKEN)
    withdrawn = replace(referral, consent=False, contact_method=None, contact_time=None,
                        forwarded=True, status="sent")
    booking = AppointmentFacts(
        public_id="5e1d0c2b-0000-4000-8000-000000000003", status="booked",
        start=datetime(2026, 12, 3, 14, tzinfo=UTC), end=datetime(2026, 12, 3, 14, 15, tzinfo=UTC),
        event_title="Flu shot clinic", event_kind="flu_shot", location="Lobby B",
        created_at=TAKEN)
    message = MessageFacts(
        key=f"message:{booking.public_id}:confirmation", kind="confirmation", language="en",
        category="notification", topic="Your booking",
        text="You are booked: Flu shot clinic, Thursday 3 December, 09:00, Lobby B.")
    return {
        "referral-with-consent": first.bundle(),
        "referral-update": referral_entries(MEMBER, escalated, [], SYSTEMS).bundle(held),
        "crisis-without-consent": referral_entries(MEMBER, crisis, [phq9], SYSTEMS).bundle(),
        "consent-withdrawn": referral_entries(MEMBER, withdrawn, [phq2], SYSTEMS).bundle(held),
        "booking": booking_entries(MEMBER, booking, None, SYSTEMS).bundle(),
        "booking-message": booking_entries(MEMBER, booking, message, SYSTEMS).bundle(),
        "vitals-from-devices": _vitals_from_devices(referral),
    }


def _vitals_from_devices(referral: ReferralFacts) -> dict[str, Any]:
    """A blood pressure from a Bluetooth cuff (Device, method) and a typed weight (issue 19)."""
    cuff = {"kind": "blood_pressure", "manufacturer": "Onsite Simulated Devices",
            "model": "SIM-BP1", "serial": "BP-0001", "link_ids": ["diastolic", "systolic"]}
    bp = replace(_submission("blood_pressure", {"systolic": 152, "diastolic": 96},
                             "6f0c9a6e-0000-4000-8000-000000000005"), devices=(cuff,))
    bmi = _submission("bmi", {"height_cm": 170, "weight_kg": 81.6},
                      "6f0c9a6e-0000-4000-8000-000000000006")
    return referral_entries(MEMBER, referral, [bp, bmi], SYSTEMS).bundle()


def text(bundle: dict[str, Any]) -> str:
    """Return a sample as it is written to its file."""
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    """Write every sample into the folder given."""
    folder = Path(argv[0] if argv else "docs/fhir-samples")
    folder.mkdir(parents=True, exist_ok=True)
    for name, bundle in samples().items():
        (folder / f"{name}.json").write_text(text(bundle), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
