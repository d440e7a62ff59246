"""What the emulator checks in every resource it receives, as a strict FHIR server would.

- The resource type is one the CapabilityStatement lists (``spec.SUPPORTED_TYPES``).
- Structure and data types: the fhir.resources R4B models.
- Every required binding, at any depth, against the codes of its value set, and the
  invariants obs-6 and qty-3: the rules come from the specification itself
  (``spec.rules()``, extracted from the R4 definitions), never from the onsite server, so a
  mistake in the sender's own tables cannot pass here too.

- No string holds a character below U+0020 but tab, carriage return and line feed, which
  the specification's string type forbids (datatypes.html#string) and the models let pass.

Whether the resources a resource points at exist is the store's check (it sees the
transaction as a whole).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from .spec import SUPPORTED_TYPES, rules


class Invalid(ValueError):
    """A resource the emulator refuses; the message names the element and the problem."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code  # the OperationOutcome issue type


@lru_cache(maxsize=64)
def model(resource_type: str) -> Any:
    """Return the fhir.resources R4B model class of a resource type."""
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def supported(resource_type: str) -> bool:
    """Tell whether the emulator serves a resource type (its CapabilityStatement)."""
    return resource_type in SUPPORTED_TYPES


def _codes_of(value: Any) -> list[Any]:
    """Return the codes a coded value carries: a code, a Coding's, a CodeableConcept's."""
    if isinstance(value, dict):
        if "coding" in value:
            return [c.get("code") for c in value["coding"] if isinstance(c, dict)]
        return [value.get("code")] if "code" in value else []
    return [value]


def _element_rule(rule: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """Resolve a contentReference (``sameAs``: "Questionnaire.item") to the element it names."""
    target = rule.get("sameAs")
    if not target:
        return rule
    owner, *path = str(target).split(".")
    found: Mapping[str, Any] = {"elements": rules()["types"][owner]}
    for name in path:
        found = found["elements"][name]
    return found


def _check_element(value: Any, rule: Mapping[str, Any], where: str, kind: str) -> None:
    rule = _element_rule(rule, kind)
    value_set = rule.get("valueSet")
    if value_set:
        allowed = rules()["valueSets"][value_set]
        for code in _codes_of(value):
            if code not in allowed:
                raise Invalid(f"{where}: {code!r} is not a code of the required value set "
                              f"{value_set}", "code-invalid")
    if rule.get("quantity") and isinstance(value, dict) and "code" in value \
            and "system" not in value:
        # qty-3: "If a code for the unit is present, the system SHALL also be present".
        raise Invalid(f"{where}: qty-3: a Quantity with a unit code needs its system")
    if not isinstance(value, dict):
        return
    inner = rule.get("elements")
    if inner is None and rule.get("type"):
        inner = rules()["types"].get(str(rule["type"]), {})
    if inner:
        _check_elements(value, inner, where, kind)


def _check_elements(node: Mapping[str, Any], elements: Mapping[str, Any], where: str,
                    kind: str) -> None:
    for name, rule in elements.items():
        if name not in node:
            continue
        value = node[name]
        if isinstance(value, list):
            for index, item in enumerate(value):
                _check_element(item, rule, f"{where}.{name}[{index}]", kind)
        else:
            _check_element(value, rule, f"{where}.{name}", kind)


def _invariants(resource: Mapping[str, Any], kind: str) -> None:
    """The resource-level invariants a real server refuses (R4 Observation obs-6)."""
    if kind == "Observation" and "dataAbsentReason" in resource and any(
            key.startswith("value") for key in resource):
        raise Invalid("Observation: obs-6: dataAbsentReason SHALL only be present if "
                      "Observation.value[x] is not present")
    for index, component in enumerate(resource.get("component", []) if kind == "Observation"
                                      else []):
        if isinstance(component, dict) and "dataAbsentReason" in component and any(
                key.startswith("value") for key in component):
            raise Invalid(f"Observation.component[{index}]: obs-6 (in the component): "
                          "dataAbsentReason only without a value")


# The code points R4's string type refuses ("SHALL NOT contain Unicode character points below
# 32, except for u0009, u000D and u000A").
_REFUSED_IN_STRINGS = frozenset(chr(c) for c in range(32)) - {"\t", "\r", "\n"}


def _strings(node: Any, where: str) -> None:
    """Refuse the first string, at any depth, holding a character R4 strings may not."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _strings(item, f"{where}[{index}]")
    elif isinstance(node, dict):
        for name, item in node.items():
            _strings(item, f"{where}.{name}")
    elif isinstance(node, str) and not _REFUSED_IN_STRINGS.isdisjoint(node):
        bad = next(ch for ch in node if ch in _REFUSED_IN_STRINGS)
        raise Invalid(f"{where}: a string may not hold the control character "
                      f"U+{ord(bad):04X}")


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
    if kind != "Bundle" and not supported(kind):
        raise Invalid(f"resourceType: this server does not support {kind} (see its "
                      "CapabilityStatement)", "not-supported")
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first.get("loc", ()))
        raise Invalid(f"{kind}.{path}: {first.get('msg')}") from exc
    if kind != "Bundle":
        _strings(resource, kind)
        _check_elements(resource, rules()["types"][kind], kind, kind)
        _invariants(resource, kind)
    return kind
