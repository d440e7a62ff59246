"""Validation of what leaves for central: the R4B models, plus our own code checks.

fhir.resources checks structure and types but not code values (a status of "bogus"
passes), so the bound codes we fill are checked against ``codes.ALLOWED`` here.
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from .codes import ALLOWED


class FhirInvalid(ValueError):
    """A resource that must not be sent; the message names the path and the problem."""


# FHIR R4 (datatypes.html#string): "Strings SHALL NOT contain Unicode character points below
# 32, except for u0009 (horizontal tab), u0010 (carriage return) and u0013 (line feed)".
# fhir.resources does not check it, and a strict central refuses the whole Bundle.
_NOT_IN_A_STRING = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _holds_refused_string(node: Any) -> bool:
    """Tell whether any string in the resource holds a character FHIR strings refuse.

    A walk with no paths (about half the cost of ``_check_strings``, a few per cent of a
    bundle's validation): the paths are made only for a resource that is refused.
    """
    stack, search = [node], _NOT_IN_A_STRING.search
    while stack:
        item = stack.pop()
        if type(item) is str:
            if search(item):
                return True
        elif type(item) is dict:
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return False


def _check_strings(node: Any, path: str) -> None:
    """Raise FhirInvalid at the first string holding a character FHIR strings refuse."""
    if isinstance(node, str):
        found = _NOT_IN_A_STRING.search(node)
        if found:
            raise FhirInvalid(f"{path}: holds the control character U+{ord(found.group()):04X}, "
                              "which a FHIR string may not")
    elif isinstance(node, dict):
        kind = node.get("resourceType")
        if isinstance(kind, str) and path.endswith(".resource"):
            path = f"{path}({kind})"  # a Bundle entry's: the admin reads which resource
        for key, value in node.items():
            _check_strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_strings(value, f"{path}.{index}")


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
    if _holds_refused_string(resource):
        _check_strings(resource, kind)
    _check_codes(resource, "")
    for index, entry in enumerate(resource.get("entry", []) if kind == "Bundle" else []):
        inner = entry.get("resource")
        if isinstance(inner, dict):
            _check_codes(inner, f"entry.{index}.resource.")
