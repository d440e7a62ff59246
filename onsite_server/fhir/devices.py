"""Where a vital sign came from: the Bluetooth device as a FHIR Device, and Observation.method.

A reading the member confirmed from a cuff or scale names its device (issue 19): the
Observation's ``device`` references a Device resource (manufacturer, model and serial from the
device's own Device Information Service) and its ``method`` says "measured by a connected
device". A typed reading has no device and says "self-reported".

Device.type uses the ISO/IEEE 11073-10101 nomenclature's device specialization codes, as the
HL7 Personal Health Device implementation guide does: MDC_DEV_SPEC_PROFILE_BPM 528391 (blood
pressure monitor, IEEE 11073-10407) and MDC_DEV_SPEC_PROFILE_SCALE 528399 (weighing scale,
IEEE 11073-10415). The method is one of our own codes (``<base>/CodeSystem/measurement-method``):
no standard value set says "typed by the member at a kiosk".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["DEVICE_TYPES", "METHODS", "device_identifier", "device_resource", "origin"]

Resource = dict[str, Any]

MDC = "urn:iso:std:iso:11073:10101"
DEVICE_TYPES: Mapping[str, Resource] = {
    "blood_pressure": {"coding": [{"system": MDC, "code": "528391",
                                   "display": "MDC_DEV_SPEC_PROFILE_BPM"}],
                       "text": "Blood pressure monitor (Bluetooth cuff)"},
    "weight": {"coding": [{"system": MDC, "code": "528399",
                           "display": "MDC_DEV_SPEC_PROFILE_SCALE"}],
               "text": "Weighing scale (Bluetooth)"},
}
METHODS: Mapping[str, str] = {"device": "Measured by a connected device",
                              "self-reported": "Self-reported by the member"}


def device_identifier(device: Mapping[str, Any]) -> str:
    """A stable identifier value for one device: a digest of kind, manufacturer, model, serial.

    A digest rather than the strings themselves: serials and names carry spaces and bars that
    a token search (``ifNoneExist``) would have to escape.
    """
    parts = "\0".join(str(device.get(k, "")) for k in ("kind", "manufacturer", "model",
                                                         "serial"))
    return "device-" + hashlib.sha256(parts.encode()).hexdigest()[:32]


def device_resource(device: Mapping[str, Any], system: str) -> Resource:
    """The FHIR Device for a reading's device (empty strings are left out, as FHIR wants)."""
    resource: Resource = {"resourceType": "Device",
                          "identifier": [{"system": system, "value": device_identifier(device)}],
                          "type": DEVICE_TYPES[str(device["kind"])]}
    if device.get("manufacturer"):
        resource["manufacturer"] = device["manufacturer"]
    if device.get("serial"):
        resource["serialNumber"] = device["serial"]
    if device.get("model"):
        resource["modelNumber"] = device["model"]
        resource["deviceName"] = [{"name": device["model"], "type": "model-name"}]
    return resource


def origin(devices: Sequence[Mapping[str, Any]], links: Sequence[str], method_system: str,
           device_url: Callable[[Mapping[str, Any]], str] | None) -> Resource:
    """Observation.method (and .device) for the answers ``links`` one Observation reports.

    A device counts only when it gave every one of them (a cuff gives systolic and diastolic
    together); otherwise the reading was typed: self-reported.
    """
    for device in devices:
        if set(links) <= set(device.get("link_ids", ())):
            out: Resource = {"method": _method("device", method_system)}
            if device_url is not None:
                out["device"] = {"reference": device_url(device)}
            return out
    return {"method": _method("self-reported", method_system)}


def _method(code: str, system: str) -> Resource:
    return {"coding": [{"system": system, "code": code, "display": METHODS[code]}],
            "text": METHODS[code]}
