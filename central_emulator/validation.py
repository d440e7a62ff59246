"""What the emulator checks in every resource it receives: the R4B models plus bound codes.

fhir.resources checks structure and types but not code values, so the required bindings of
the elements an onsite server fills are checked here against the FHIR R4 value sets
(http://hl7.org/fhir/R4/valueset-*.html). This list is written from the specification, not
imported from the onsite server, so that the reference does not share the sender's mistakes.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

_REQUEST_PRIORITY = frozenset({"routine", "urgent", "asap", "stat"})
_REQUEST_INTENT = frozenset({"proposal", "plan", "directive", "order", "original-order",
                             "reflex-order", "filler-order", "instance-order", "option"})
_REQUEST_STATUS = frozenset({"draft", "active", "on-hold", "revoked", "completed",
                             "entered-in-error", "unknown"})

REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("ServiceRequest", "status"): _REQUEST_STATUS,
    ("ServiceRequest", "intent"): _REQUEST_INTENT,
    ("ServiceRequest", "priority"): _REQUEST_PRIORITY,
    ("Task", "status"): frozenset({"draft", "requested", "received", "accepted", "rejected",
                                  "ready", "cancelled", "in-progress", "on-hold", "failed",
                                  "completed", "entered-in-error"}),
    ("Task", "intent"): frozenset({"unknown", "proposal", "plan", "order", "original-order",
                                  "reflex-order", "filler-order", "instance-order", "option"}),
    ("Task", "priority"): _REQUEST_PRIORITY,
    ("Observation", "status"): frozenset({"registered", "preliminary", "final", "amended",
                                         "corrected", "cancelled", "entered-in-error",
                                         "unknown"}),
    ("QuestionnaireResponse", "status"): frozenset({"in-progress", "completed", "amended",
                                                   "entered-in-error", "stopped"}),
    ("Appointment", "status"): frozenset({"proposed", "pending", "booked", "arrived",
                                         "fulfilled", "cancelled", "noshow",
                                         "entered-in-error", "checked-in", "waitlist"}),
    ("Communication", "status"): frozenset({"preparation", "in-progress", "not-done",
                                           "on-hold", "stopped", "completed",
                                           "entered-in-error", "unknown"}),
    ("Communication", "priority"): _REQUEST_PRIORITY,
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
}


class Invalid(ValueError):
    """A resource the emulator refuses; the message names the element and the problem."""


@lru_cache(maxsize=64)
def model(resource_type: str) -> Any:
    """Return the fhir.resources R4B model class of a resource type."""
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def check_resource(resource: Any) -> str:
    """Return the resource's type, or raise Invalid naming what is wrong with it."""
    if not isinstance(resource, dict):
        raise Invalid("resource: not a JSON object")
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind.isalpha() or not kind[:1].isupper():
        raise Invalid("resourceType: missing or not a resource type")
    try:
        cls = model(kind)
    except (ImportError, AttributeError) as exc:
        raise Invalid(f"resourceType: {kind!r} is not an R4 resource") from exc
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first.get("loc", ()))
        raise Invalid(f"{kind}.{path}: {first.get('msg')}") from exc
    for (rtype, element), allowed in REQUIRED_CODES.items():
        if rtype == kind and element in resource and resource[element] not in allowed:
            raise Invalid(f"{kind}.{element}: {resource[element]!r} is not in the "
                          f"{rtype}.{element} value set")
    return kind
