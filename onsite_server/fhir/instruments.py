"""Instruments as FHIR: the Questionnaires we publish, and answers that conform to them.

One place decides how a question and its answers are coded (``assets/fhir/codes.json`` fills
in what a definition leaves uncoded), so the Questionnaire that ``export-questionnaires``
writes and every QuestionnaireResponse we send agree: a choice answers with the ``valueCoding``
of one of its ``answerOption``s, a decimal with ``valueDecimal``, an integer with
``valueInteger``, a yes/no with ``valueBoolean``; a question the definition's ``enableWhen``
turns off is exported with that condition and left out of the response.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from shared.assessments import available_versions, list_instruments, load_definition
from shared.assessments.items import questions
from shared.paths import assets_dir

from . import codes
from .validate import FhirInvalid

Resource = dict[str, Any]

# Questionnaire.item.extension: the unit a number is given in (FHIR R4 core extension).
UNIT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
_ITEM_TYPES = {"choice": "choice", "boolean": "boolean", "integer": "integer",
               "decimal": "decimal"}
_LOCAL = "local:"
# Our own CodeSystems besides the answer lists: (name, title, concepts (code, display)).
_OWN_SYSTEMS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("referral-type", "Onsite Wellness referral types",
     (("advocate-referral", "Referral to the member's personal health advocate"),)),
    ("communication-type", "Onsite Wellness communication types",
     (("contact-preference", "How the member asked to be contacted"),)),
)


class CodeSystems(Protocol):
    """What coding needs of ``build.Systems``: the canonical URL of a local CodeSystem."""

    def code_system(self, name: str) -> str:
        """Return the canonical URL of one of our local CodeSystems."""
        ...


def _codes_file() -> Mapping[str, Any]:
    return _read_codes(str(assets_dir()))


@lru_cache(maxsize=4)
def _read_codes(root: str) -> Mapping[str, Any]:
    with (Path(root) / "fhir" / "codes.json").open(encoding="utf-8") as fh:
        data: Mapping[str, Any] = json.load(fh)
    return data


def _coding(raw: Mapping[str, Any], systems: CodeSystems) -> Resource:
    system = str(raw["system"])
    if system.startswith(_LOCAL):
        system = systems.code_system(system[len(_LOCAL):])
    return {"system": system, "code": str(raw["code"]), "display": str(raw["display"])}


def _option_text(option: Mapping[str, Any]) -> str:
    return str(option.get("text", {}).get("en", option["value"]))


def answer_coding(instrument_id: str, link_id: str, option: Mapping[str, Any],
                  systems: CodeSystems) -> Resource:
    """Return the Coding of one answer option: the definition's own, else assets/fhir's,
    else our ``<instrument>-answers`` CodeSystem."""
    own = (option.get("code") or [None])[0]
    if own:
        return dict(own)
    by_item = _codes_file()["answers"]["by_item"].get(link_id, {})
    mapped = by_item.get(str(option["value"]))
    if mapped:
        return _coding(mapped, systems)
    return {"system": systems.code_system(f"{instrument_id}-answers"),
            "code": f"{link_id}-{option['value']}", "display": _option_text(option)}


def _option(spec: Mapping[str, Any], value: Any) -> Mapping[str, Any] | None:
    for option in spec.get("options", ()):
        # Exact types, as the scoring engine compares them: True is not 1.
        if option["value"] == value and type(option["value"]) is type(value):
            return option  # type: ignore[no-any-return]
    return None


def answer(instrument_id: str, spec: Mapping[str, Any], value: Any,
           systems: CodeSystems) -> Resource:
    """Return a QuestionnaireResponse answer of the type the exported item declares."""
    kind = spec.get("type")
    if kind == "choice":
        option = _option(spec, value)
        if option is None:
            # Stored answers were checked when they came in; a definition changed under them
            # makes the row undeliverable (dead-lettered), never a crash of the worker.
            raise FhirInvalid(f"answers.{spec['linkId']}: {value!r} is not one of its options")
        return {"valueCoding": answer_coding(instrument_id, str(spec["linkId"]), option,
                                             systems)}
    if kind == "boolean":
        return {"valueBoolean": bool(value)}
    if kind == "integer":
        return {"valueInteger": int(value)}
    if kind == "decimal":
        return {"valueDecimal": float(value)}
    return {"valueString": str(value)}


def enabled(spec: Mapping[str, Any], answers: Mapping[str, Any]) -> bool:
    """Tell whether a question is on, given the other answers (all conditions must hold).

    The definition's own conditions, as the scoring engine reads them; a condition on an
    unanswered question is not met.
    """
    for cond in spec.get("enableWhen", ()):
        given = answers.get(str(cond["question"]))
        target, op = cond["answer"], cond["operator"]
        if given is None:
            return False
        if op == "=":
            ok = given == target
        elif op == "!=":
            ok = given != target
        elif op == ">":
            ok = given > target
        elif op == "<":
            ok = given < target
        else:
            raise RuntimeError(f"item {spec['linkId']}: unsupported operator {op!r}")
        if not ok:
            return False
    return True


def _holds(op: str, given: Any, target: Any) -> bool:
    return bool({"=": given == target, "!=": given != target, ">": given > target,
                 "<": given < target}[op])


def _enable_when(instrument_id: str, spec: Mapping[str, Any],
                 items: Mapping[str, Mapping[str, Any]],
                 systems: CodeSystems) -> tuple[list[Resource], str | None]:
    """Return the item's FHIR enableWhen and enableBehavior.

    FHIR compares a Coding only with = and !=, so an ordinal condition on a choice ("drinks
    more than never") becomes the options that meet it: != the one that does not, = the one
    that does, or any of those that do.
    """
    conditions = list(spec.get("enableWhen", ()))
    out: list[Resource] = []
    behavior: str | None = None
    for cond in conditions:
        question = items[str(cond["question"])]
        qid, op, target = str(cond["question"]), str(cond["operator"]), cond["answer"]
        kind = question.get("type")
        if kind == "choice":
            options = list(question.get("options", ()))
            meet = [o for o in options if _holds(op, o["value"], target)]
            miss = [o for o in options if not _holds(op, o["value"], target)]

            def coded(o: Mapping[str, Any], operator: str, q: str = qid) -> Resource:
                return {"question": q, "operator": operator,
                        "answerCoding": answer_coding(instrument_id, q, o, systems)}

            if op in ("=", "!=") and len(meet if op == "=" else miss) == 1:
                (option,) = [o for o in options if o["value"] == target]
                out.append(coded(option, op))
            elif len(miss) == 1:
                out.append(coded(miss[0], "!="))
            elif len(meet) == 1:
                out.append(coded(meet[0], "="))
            elif len(conditions) == 1:
                out.extend(coded(o, "=") for o in meet)
                behavior = "any"
            else:
                raise RuntimeError(f"{instrument_id} item {spec['linkId']}: an ordinal "
                                   "condition on a choice among other conditions")
            continue
        key = {"boolean": "answerBoolean", "integer": "answerInteger",
               "decimal": "answerDecimal"}.get(str(kind), "answerString")
        out.append({"question": qid, "operator": op, key: target})
    if len(out) > 1 and behavior is None:
        behavior = "all"
    return out, behavior


def questionnaire(instrument_id: str, version: str | None, url: str, version_label: str,
                  systems: CodeSystems) -> Resource:
    """Return an instrument definition as a FHIR Questionnaire (English text)."""
    definition = load_definition(instrument_id, version)
    items = questions(definition["id"], definition["version"])
    out = []
    for spec in definition["items"]:
        link_id = str(spec["linkId"])
        item: Resource = {"linkId": link_id,
                          "text": spec.get("text", {}).get("en", link_id),
                          "type": _ITEM_TYPES.get(spec.get("type", ""), "string"),
                          "required": bool(spec.get("required", False))}
        if spec.get("code"):
            item["code"] = [dict(c) for c in spec["code"]]
        if spec.get("unit"):
            item["extension"] = [{"url": UNIT_EXTENSION, "valueCoding": {
                "system": codes.UCUM, "code": spec["unit"]}}]
        when, behavior = _enable_when(definition["id"], spec, items, systems)
        if when:
            item["enableWhen"] = when
        if behavior:
            item["enableBehavior"] = behavior
        options = [{"valueCoding": answer_coding(definition["id"], link_id, o, systems)}
                   for o in spec.get("options", ())]
        if options:
            item["answerOption"] = options
        out.append(item)
    resource: Resource = {"resourceType": "Questionnaire", "url": url, "version": version_label,
                          "name": definition["id"].upper().replace("-", "_"),
                          "title": definition["title"]["en"], "status": "active",
                          "subjectType": ["Patient"], "item": out}
    if definition.get("code"):
        resource["code"] = [dict(c) for c in definition["code"]]
    return resource


def score_code(instrument_id: str, definition: Mapping[str, Any],
               systems: CodeSystems) -> tuple[Resource, str | None] | None:
    """Return the code of an instrument's score Observation and its UCUM unit, or None.

    LOINC's from the definition where it has one, else assets/fhir's (a declared local code).
    """
    own = definition["scoring"].get("total_code")
    if own:
        return dict(own), None
    mapped = _codes_file()["scores"]["by_instrument"].get(instrument_id)
    if not mapped:
        return None
    return _coding(mapped, systems), mapped.get("unit")


def item_observation_items(instrument_id: str) -> Sequence[str]:
    """Return the questions whose answer also goes as an Observation of its own."""
    return tuple(_codes_file().get("item_observations", {}).get("by_instrument", {})
                 .get(instrument_id, ()))


def code_systems(systems: CodeSystems) -> list[Resource]:
    """Return our local CodeSystems (scores, answer lists, referral and message types)."""
    concepts: dict[str, dict[str, str]] = {}
    for raw in _codes_file()["scores"]["by_instrument"].values():
        if str(raw["system"]).startswith(_LOCAL):
            name = str(raw["system"])[len(_LOCAL):]
            concepts.setdefault(name, {})[str(raw["code"])] = str(raw["display"])
    titles = {"scores": "Onsite Wellness scores without a LOINC code"}
    for instrument_id, _ in list_instruments():
        # Every version, newest last, so a code keeps the newest wording.
        for version in available_versions(instrument_id):
            for spec in load_definition(instrument_id, version)["items"]:
                for option in spec.get("options", ()):
                    coding = answer_coding(instrument_id, str(spec["linkId"]), option, systems)
                    name = f"{instrument_id}-answers"
                    if coding["system"] == systems.code_system(name):
                        concepts.setdefault(name, {})[coding["code"]] = coding["display"]
                        titles[name] = f"Onsite Wellness answers: {instrument_id}"
    for name, title, own in _OWN_SYSTEMS:
        concepts[name] = dict(own)
        titles[name] = title
    out = []
    for name in sorted(concepts):
        listed = concepts[name]
        out.append({"resourceType": "CodeSystem", "url": systems.code_system(name),
                    "name": name.replace("-", "_").upper(), "title": titles[name],
                    "status": "active", "content": "complete", "caseSensitive": True,
                    "count": len(listed),
                    "concept": [{"code": c, "display": d} for c, d in listed.items()]})
    return out
