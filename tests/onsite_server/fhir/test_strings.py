"""What a FHIR string may hold: everything people write, but not the control characters R4
forbids (datatypes.html#string), which fhir.resources lets pass and a strict central refuses."""

from __future__ import annotations

import pytest

from onsite_server.fhir import FhirInvalid, validate


def _appointment(text: str) -> dict[str, object]:
    return {"resourceType": "Appointment", "status": "booked", "description": text,
            "participant": [{"status": "accepted", "actor": {"display": text}}]}


@pytest.mark.parametrize("text", [
    "Zoë 👩🏽‍⚕️", "فحص ضغط الدم", "e\u0301\u0301", "a\u200db\u200cc", "a\u202eb",
    "line one\r\n\tline two", "x" * 100_000,
])
def test_what_people_write_is_valid(text: str) -> None:
    validate(_appointment(text))


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f"])
def test_a_control_character_is_refused_naming_where(char: str) -> None:
    with pytest.raises(FhirInvalid) as refused:
        validate(_appointment(f"Flu{char}shots"))
    assert str(refused.value).startswith("Appointment.description: ")
    assert f"U+{ord(char):04X}" in str(refused.value)


def test_in_a_bundle_the_entry_is_named() -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _appointment("ok"), "request": {"method": "POST", "url": "Appointment"}},
        {"resource": {**_appointment("ok"), "participant": [
            {"status": "accepted", "actor": {"display": "Dr\x0bX"}}]},
         "request": {"method": "POST", "url": "Appointment"}}]}
    with pytest.raises(FhirInvalid,
                       match=r"Bundle\.entry\.1\.resource\(Appointment\)\.participant\.0\.actor"):
        validate(bundle)
