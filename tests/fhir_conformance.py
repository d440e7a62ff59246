"""Independent checks of what we send to central, for the tests: none of it uses our builders.

``check_response`` holds a QuestionnaireResponse against the Questionnaire it names, item by
item, with the rules of FHIR R4 (http://hl7.org/fhir/R4/questionnaireresponse.html and
questionnaire.html: an answer's value[x] by item type, answerOption, required, repeats,
enableWhen and enableBehavior, and no answer for an item that is not enabled). It reads only
the two resources, so it cannot share a mistake with ``onsite_server.fhir.instruments``.

``fhirjs_validate`` runs FHIR.js (npm ``fhir``, the base R4 definitions) over resources.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Questionnaire.item.type -> the one QuestionnaireResponse answer value[x] it allows (R4
# "Questionnaire.item.type" table; open-choice allows a Coding or a string).
VALUE_BY_TYPE: Mapping[str, tuple[str, ...]] = {
    "boolean": ("valueBoolean",), "decimal": ("valueDecimal",), "integer": ("valueInteger",),
    "date": ("valueDate",), "dateTime": ("valueDateTime",), "time": ("valueTime",),
    "string": ("valueString",), "text": ("valueString",), "url": ("valueUri",),
    "choice": ("valueCoding",), "open-choice": ("valueCoding", "valueString"),
    "attachment": ("valueAttachment",), "reference": ("valueReference",),
    "quantity": ("valueQuantity",),
}
_ANSWER_KEYS = ("answerBoolean", "answerDecimal", "answerInteger", "answerDate",
                "answerDateTime", "answerTime", "answerString", "answerCoding",
                "answerQuantity", "answerReference")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(value: Any, target: Any) -> bool:
    """Equal as FHIR compares answers: Codings by system and code, numbers by value."""
    if isinstance(target, dict) and "code" in target:
        return (isinstance(value, dict) and value.get("code") == target.get("code")
                and value.get("system") == target.get("system"))
    if _number(value) and _number(target):
        return bool(value == target)
    return type(value) is type(target) and bool(value == target)


def _value(answer: Mapping[str, Any]) -> Any:
    keys = [k for k in answer if k.startswith("value")]
    return answer[keys[0]] if len(keys) == 1 else None


def _condition(cond: Mapping[str, Any], given: Sequence[Mapping[str, Any]]) -> bool:
    """One enableWhen against the answers to its question (R4 QuestionnaireItemOperator)."""
    op = cond["operator"]
    keys = [k for k in _ANSWER_KEYS if k in cond]
    if len(keys) != 1:
        raise AssertionError(f"enableWhen on {cond.get('question')}: needs one answer[x]")
    target = cond[keys[0]]
    if op == "exists":
        return bool(given) == bool(target)
    values = [_value(a) for a in given]
    if not values:
        return False  # a condition on an unanswered question is not met
    if op == "=":
        return any(_same(v, target) for v in values)
    if op == "!=":
        return not any(_same(v, target) for v in values)
    if isinstance(target, dict):
        raise AssertionError(f"enableWhen on {cond['question']}: {op} cannot compare a Coding")
    compare = {">": lambda a, b: a > b, "<": lambda a, b: a < b,
               ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}[op]
    return any(compare(v, target) for v in values)


def _enabled(item: Mapping[str, Any], answers_by_link: Mapping[str, Sequence[Any]]) -> bool:
    conds = item.get("enableWhen") or []
    if not conds:
        return True
    results = [_condition(c, answers_by_link.get(c["question"], ())) for c in conds]
    behavior = item.get("enableBehavior")
    if len(conds) > 1 and behavior not in ("all", "any"):
        raise AssertionError(f"item {item['linkId']}: several enableWhen need enableBehavior")
    return any(results) if behavior == "any" else all(results)


def check_response(questionnaire: Mapping[str, Any], response: Mapping[str, Any]) -> list[str]:
    """Return every way the response does not answer the Questionnaire (empty: it does)."""
    problems: list[str] = []
    canonical = f"{questionnaire['url']}|{questionnaire['version']}"
    if response.get("questionnaire") not in (canonical, questionnaire["url"]):
        problems.append(f"questionnaire: {response.get('questionnaire')!r} is not {canonical}")
    items = {i["linkId"]: i for i in questionnaire.get("item", [])}
    order = list(items)
    given = response.get("item", [])
    answers_by_link: dict[str, list[Any]] = {}
    positions: list[int] = []
    for entry in given:
        link = entry.get("linkId")
        if link not in items:
            problems.append(f"item {link}: not an item of the Questionnaire")
            continue
        if link in answers_by_link:
            problems.append(f"item {link}: listed twice")
        answers_by_link[link] = list(entry.get("answer", []))
        positions.append(order.index(link))
    if positions != sorted(positions):
        problems.append("item: not in the Questionnaire's order")
    for entry in given:
        link = entry.get("linkId")
        item = items.get(link)
        if item is None:
            continue
        if "text" in entry and entry["text"] != item.get("text"):
            problems.append(f"item {link}: text {entry['text']!r} is not {item.get('text')!r}")
        answers = entry.get("answer", [])
        if not answers:
            problems.append(f"item {link}: present with no answer")
        if len(answers) > 1 and not item.get("repeats"):
            problems.append(f"item {link}: {len(answers)} answers to a question that does "
                            "not repeat")
        allowed = VALUE_BY_TYPE.get(item["type"], ())
        for answer in answers:
            keys = [k for k in answer if k.startswith("value")]
            if len(keys) != 1 or keys[0] not in allowed:
                problems.append(f"item {link}: answered with {keys} where a {item['type']} "
                                f"takes {list(allowed)}")
                continue
            value = answer[keys[0]]
            if keys[0] == "valueInteger" and (isinstance(value, bool)
                                              or not isinstance(value, int)):
                problems.append(f"item {link}: valueInteger {value!r} is not an integer")
            if keys[0] == "valueDecimal" and (isinstance(value, bool)
                                              or not isinstance(value, int | float)):
                problems.append(f"item {link}: valueDecimal {value!r} is not a number")
            if keys[0] == "valueBoolean" and not isinstance(value, bool):
                problems.append(f"item {link}: valueBoolean {value!r} is not true or false")
            options = [o.get("valueCoding") for o in item.get("answerOption", [])]
            if keys[0] == "valueCoding" and options and not any(
                    _same(value, o) for o in options if o):
                problems.append(f"item {link}: {value.get('system')}|{value.get('code')} is "
                                "not one of its answerOptions")
        if not _enabled(item, answers_by_link):
            problems.append(f"item {link}: answered although its enableWhen turns it off")
    if response.get("status") == "completed":
        for link, item in items.items():
            if item.get("required") and _enabled(item, answers_by_link) \
                    and not answers_by_link.get(link):
                problems.append(f"item {link}: required and enabled, but not answered")
    return problems


def fhirjs_validate(resources: Iterable[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """Return FHIR.js's error and warning messages for each resource, in order.

    FHIR.js validates against the base R4 StructureDefinitions and their required value sets.
    The test command installs it from package-lock.json (scripts/bootstrap.sh).
    """
    node = shutil.which("node")
    script = ROOT / "tests" / "fhirjs_validate.js"
    if node is None or not (ROOT / "node_modules" / "fhir" / "package.json").is_file():
        raise AssertionError("FHIR.js is missing: run scripts/bootstrap.sh test (npm ci)")
    done = subprocess.run([node, str(script)], input=json.dumps(list(resources)),
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise AssertionError(f"FHIR.js failed: {done.stderr[-2000:]}")
    result: list[list[dict[str, Any]]] = json.loads(done.stdout)
    return result
