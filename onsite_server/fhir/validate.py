"""Validation of what leaves for central: the R4B models, plus our own code checks.

fhir.resources checks structure and types but not code values (a status of "bogus"
passes), so the bound codes we fill are checked against ``codes.ALLOWED`` here.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from .codes import ALLOWED


class FhirInvalid(ValueError):
    """A resource that must not be sent; the message names the path and the problem."""


@lru_cache(maxsize=32)
def model(resource_type: str) -> Any:
    """Return the R4B model class of a resource type (imported on first use)."""
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def _values(node: Any, path: list[str]) -> list[Any]:
    """Return the values at a dotted path, through lists and CodeableConcepts' codings."""
    if not path:
        if isinstance(node, list):
            return [v for item in node for v in _values(item, path)]
        if isinstance(node, dict) and "coding" in node:
            return [c.get("code") for c in node["coding"] if isinstance(c, dict)]
        return [node]
    if isinstance(node, list):
        return [v for item in node for v in _values(item, path)]
    if isinstance(node, dict) and path[0] in node:
        return _values(node[path[0]], path[1:])
    return []


def _check_codes(resource: dict[str, Any], where: str) -> None:
    kind = resource.get("resourceType", "")
    for (rtype, element), allowed in ALLOWED.items():
        if rtype != kind:
            continue
        for value in _values(resource, element.split(".")):
            if value not in allowed:
                raise FhirInvalid(f"{where}{element}: {value!r} is not a code of the "
                                  f"{rtype}.{element} value set")


def validate(resource: dict[str, Any]) -> None:
    """Raise FhirInvalid unless the resource (or Bundle and its entries) is valid R4."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind.isalpha():
        raise FhirInvalid("resourceType: missing or not a resource type")
    try:
        found = model(kind)
    except (ImportError, AttributeError) as exc:
        raise FhirInvalid(f"resourceType: {kind!r} is not an R4 resource") from exc
    try:
        found.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first.get("loc", ()))
        raise FhirInvalid(f"{kind}.{path}: {first.get('msg')}") from exc
    _check_codes(resource, "")
    for index, entry in enumerate(resource.get("entry", []) if kind == "Bundle" else []):
        inner = entry.get("resource")
        if isinstance(inner, dict):
            _check_codes(inner, f"entry.{index}.resource.")
