"""The rules of the FHIR R4 specification the emulator checks, as data taken from the spec.

``r4_rules.json`` beside this file is extracted from the R4 StructureDefinitions and ValueSets
as packaged in npm ``fhir`` (FHIR.js, ``profiles/types.json`` and ``profiles/valuesets.json``),
never written by hand and never taken from the onsite server: so the emulator checks what the
specification says, not what our sender believes. For every resource type the emulator serves
it keeps the elements with a required binding (and the codes of that value set) and where a
Quantity can stand, through backbone elements and data types.

Write it again with ``python -m central_emulator.spec node_modules/fhir/profiles``; a test
checks it still matches the package.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

RULES_PATH = Path(__file__).with_name("r4_rules.json")

# What the emulator serves (its CapabilityStatement); anything else is refused.
SUPPORTED_TYPES = ("Patient", "Practitioner", "PractitionerRole", "CareTeam", "ServiceRequest",
                   "Task", "Observation", "QuestionnaireResponse", "Questionnaire",
                   "Appointment", "Communication", "CommunicationRequest", "Binary", "Device")
# Quantity and its profiles: where qty-3 applies.
QUANTITY_TYPES = frozenset({"Quantity", "Age", "Count", "Distance", "Duration",
                            "SimpleQuantity", "MoneyQuantity"})
_SKIPPED = frozenset({"extension", "modifierExtension", "contained"})
_CODED = frozenset({"code", "Coding", "CodeableConcept", "string", "uri"})


@lru_cache(maxsize=1)
def rules() -> Mapping[str, Any]:
    """Return the extracted rules: {"types": {type: {element: rule}}, "valueSets": {...}}."""
    with RULES_PATH.open(encoding="utf-8") as fh:
        data: Mapping[str, Any] = json.load(fh)
    return data


def _strip(url: str) -> str:
    return url.split("|", 1)[0]


class _Extractor:
    """Walks FHIR.js's type tree and keeps what the checks need."""

    def __init__(self, types: Mapping[str, Any], value_sets: Mapping[str, Any]) -> None:
        self.types = types
        self.value_sets = value_sets
        self.out_types: dict[str, dict[str, Any]] = {}
        self.out_sets: dict[str, list[str]] = {}
        self.busy: set[str] = set()

    def codes(self, url: str) -> list[str] | None:
        """Return the codes of a value set, or None when FHIR.js cannot list them."""
        found = self.value_sets.get(_strip(url))
        if not isinstance(found, dict):
            return None
        codes = sorted({str(c["code"]) for s in found.get("systems", [])
                        for c in s.get("codes", []) if "code" in c})
        return codes or None

    def element(self, prop: Mapping[str, Any], owner: str) -> dict[str, Any] | None:
        """Return the rule of one element, or None when nothing in it is checked."""
        rule: dict[str, Any] = {}
        kind = str(prop.get("_type", ""))
        if prop.get("_valueSetStrength") == "required" and kind in _CODED:
            url = _strip(str(prop.get("_valueSet", "")))
            listed = self.codes(url)
            if listed is not None:
                self.out_sets[url] = listed
                rule["valueSet"] = url
        if kind in QUANTITY_TYPES:
            rule["quantity"] = True
        inner = prop.get("_properties") or []
        if inner:
            props = self.props(inner, owner)
            if props:
                rule["elements"] = props
        elif kind.startswith("#"):
            rule["sameAs"] = kind[1:]  # a contentReference (Questionnaire.item.item)
        elif kind in self.types and self.types[kind].get("_kind") == "complex-type":
            if self.datatype(kind):
                rule["type"] = kind
        return rule or None

    def props(self, props: list[Mapping[str, Any]], owner: str) -> dict[str, Any]:
        """Return the rules of the checked elements among these properties."""
        out: dict[str, Any] = {}
        for prop in props:
            name = str(prop["_name"])
            if name.startswith("_") or name in _SKIPPED:
                continue
            rule = self.element(prop, owner)
            if rule is not None:
                if prop.get("_multiple"):
                    rule["many"] = True
                out[name] = rule
        return out

    def datatype(self, kind: str) -> bool:
        """Extract a data type once; tell whether anything in it is checked."""
        if kind in self.out_types:
            return bool(self.out_types[kind])
        if kind in self.busy:
            return True  # recursive (Identifier.assigner -> Reference.identifier): kept
        self.busy.add(kind)
        props = self.props(self.types[kind].get("_properties", []), kind)
        self.busy.discard(kind)
        self.out_types[kind] = props
        return bool(props)


def extract(types: Mapping[str, Any], value_sets: Mapping[str, Any]) -> dict[str, Any]:
    """Return the rules for the supported resource types from FHIR.js's two files."""
    walker = _Extractor(types, value_sets)
    resources = {kind: walker.props(types[kind]["_properties"], kind)
                 for kind in SUPPORTED_TYPES}
    datatypes = {k: v for k, v in sorted(walker.out_types.items()) if v}
    return {"source": "FHIR R4 (4.0.x) StructureDefinitions and ValueSets as packaged in npm "
                      "fhir (FHIR.js) profiles/types.json and profiles/valuesets.json; "
                      "extracted by central_emulator/spec.py",
            "types": {**resources, **datatypes},
            "valueSets": dict(sorted(walker.out_sets.items()))}


def main(argv: list[str]) -> None:
    """Write r4_rules.json from a FHIR.js profiles folder."""
    folder = Path(argv[0] if argv else "node_modules/fhir/profiles")
    with (folder / "types.json").open(encoding="utf-8") as fh:
        types = json.load(fh)
    with (folder / "valuesets.json").open(encoding="utf-8") as fh:
        value_sets = json.load(fh)
    text = json.dumps(extract(types, value_sets), indent=1, sort_keys=True) + "\n"
    RULES_PATH.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
