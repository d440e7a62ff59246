"""Where a vital sign came from, in what goes to central (issue 19): a reading from a cuff or
scale carries Observation.device (a Device resource, in the Bundle once) and a method saying
so; a typed reading says it was self-reported."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from onsite_server.fhir import referral_bundle, validate
from onsite_server.fhir.devices import device_identifier

from .test_build import MEMBER, REFERRAL, SUBMISSIONS, SYSTEMS, _by_type

CUFF = {"kind": "blood_pressure", "manufacturer": "Onsite Simulated Devices",
        "model": "SIM-BP1", "serial": "BP-0001", "link_ids": ["diastolic", "systolic"]}
SCALE = {"kind": "weight", "manufacturer": "Acme", "model": "WS-1", "serial": "",
         "link_ids": ["weight_kg"]}
METHOD = f"{SYSTEMS.base}/CodeSystem/measurement-method"


def _bundle(bp_devices: tuple[dict[str, Any], ...], bmi_devices: tuple[dict[str, Any], ...]
            ) -> dict[str, Any]:
    phq9, bp, bmi, gad7 = SUBMISSIONS
    subs = [phq9, replace(bp, devices=bp_devices), replace(bmi, devices=bmi_devices), gad7]
    bundle = referral_bundle(MEMBER, REFERRAL, subs, SYSTEMS)
    validate(bundle)
    return bundle


def _observation(bundle: dict[str, Any], code: str) -> dict[str, Any]:
    (found,) = [e["resource"] for e in _by_type(bundle, "Observation")
                if e["resource"]["code"]["coding"][0]["code"] == code]
    return found


def _method(observation: dict[str, Any]) -> str:
    coding = observation["method"]["coding"][0]
    assert coding["system"] == METHOD
    return str(coding["code"])


def test_a_cuff_reading_carries_its_device_and_method() -> None:
    bundle = _bundle((CUFF,), ())
    (device_entry,) = _by_type(bundle, "Device")
    device = device_entry["resource"]
    assert device["manufacturer"] == "Onsite Simulated Devices"
    assert device["modelNumber"] == "SIM-BP1" and device["serialNumber"] == "BP-0001"
    assert device["type"]["coding"][0] == {"system": "urn:iso:std:iso:11073:10101",
                                           "code": "528391",
                                           "display": "MDC_DEV_SPEC_PROFILE_BPM"}
    # A conditional create on the device's identifier: one Device at central per device.
    value = device_identifier(CUFF)
    assert device_entry["request"]["ifNoneExist"] == f"identifier={SYSTEMS.base}/device|{value}"
    panel = _observation(bundle, "85354-9")
    assert panel["device"] == {"reference": device_entry["fullUrl"]}
    assert _method(panel) == "device"
    # Typed height and weight: self-reported, no device.
    for code in ("8302-2", "29463-7"):
        typed = _observation(bundle, code)
        assert _method(typed) == "self-reported" and "device" not in typed


def test_one_device_entry_however_many_readings_and_blank_strings_left_out() -> None:
    scale_two = {**SCALE, "link_ids": ["height_cm", "weight_kg"]}
    bundle = _bundle((), (scale_two,))
    (device_entry,) = _by_type(bundle, "Device")
    assert "serialNumber" not in device_entry["resource"]  # the scale sent no serial
    assert device_entry["resource"]["type"]["coding"][0]["code"] == "528399"
    for code in ("8302-2", "29463-7"):
        assert _observation(bundle, code)["device"] == {"reference": device_entry["fullUrl"]}
    # The BMI is computed from them: it claims no method of its own.
    assert "method" not in _observation(bundle, "39156-5")
    assert _method(_observation(bundle, "85354-9")) == "self-reported"


def test_a_device_that_gave_only_part_of_a_reading_does_not_claim_it() -> None:
    half = {**CUFF, "link_ids": ["systolic"]}
    bundle = _bundle((half,), ())
    assert not _by_type(bundle, "Device")
    assert _method(_observation(bundle, "85354-9")) == "self-reported"


def test_scores_carry_no_method() -> None:
    bundle = _bundle((CUFF,), (SCALE,))
    assert "method" not in _observation(bundle, "44261-6")  # the PHQ-9 total
