"""Generous crisis reading of a raw, possibly malformed, submission item.

The server is strict about what it accepts and generous about what it reads as a crisis
(DESIGN.md §3.6): an item refused for any reason (an unknown instrument version, ``"3"``
instead of ``3``, a broken neighbour in its batch) must still raise the crisis its answers show.
This module reads only the trigger answers themselves, with the thresholds taken from the
instrument definitions in ``assets/`` (the newest version of each), so it works on any shape a
kiosk might send: PHQ-9 item 9 at or above its flag's minimum, or sent as a yes (JSON ``true``,
FHIR ``valueBoolean``: a kiosk that reduced "any thoughts of self-harm" to a boolean is still
telling us there were some); a systolic or diastolic reading
above the hypertensive-crisis limits. Both triggers stand on their own ("whatever the total",
"and/or"), so no other answer is needed to read them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.assessments import list_instruments, load_definition
from shared.crisis.triggers import CRISIS_TRIGGERS

__all__ = ["read_number", "triggers_in_raw"]

# Keys a kiosk or a person might use for PHQ-9 item 9: "9", "09", "item9", "q_9", "item-9".
_ITEM_KEY = re.compile(r"^(?:item|q|question)?[\s_\-.]*0*(\d+)$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_BP_ALIASES = {"systolic": ("systolic", "sbp", "sys"), "diastolic": ("diastolic", "dbp", "dia")}


@dataclass(frozen=True)
class _Thresholds:
    phq9_item: str
    phq9_min: float
    systolic_above: float
    diastolic_above: float


@lru_cache(maxsize=1)
def _thresholds() -> _Thresholds:
    """Read the trigger thresholds from the newest instrument definitions (cached)."""
    phq9 = load_definition("phq9")
    item9 = next(f["when"] for f in phq9["scoring"]["flags"] if f["id"] == "item9_positive")
    bp = load_definition("blood_pressure")["scoring"]["crisis"]
    return _Thresholds(phq9_item=str(item9["item"]), phq9_min=float(item9["min"]),
                       systolic_above=float(bp["systolic_above"]),
                       diastolic_above=float(bp["diastolic_above"]))


def _norm(text: object) -> str:
    return _norm_text(text) if isinstance(text, str) else ""


# A server reads every item it receives this way (a kiosk's backlog: thousands of items with
# the same few instrument ids and answer keys), so each text's reading is kept, in caches
# bounded whatever a body holds (docs/BENCHMARKS.md, issue 20 P6, session 11).
@lru_cache(maxsize=1024)
def _norm_text(text: str) -> str:
    return _NOT_ALNUM.sub("", text.lower())


@lru_cache(maxsize=1024)
def _key_text(key: str) -> str:
    return key.strip().lower()


@lru_cache(maxsize=1024)
def _item_number(key: str) -> str | None:
    """The question number a normalised answer key names ("9" for "item9", "q_9"), or None."""
    match = _ITEM_KEY.match(key)
    return match.group(1) if match else None


def read_number(value: object) -> float | None:
    """Read a number sent in any plausible form (3, 3.0, "3", " 3.0 ", {"value": 3}), or None."""
    if type(value) is int:  # the common case, first: not a bool, not a mapping
        return float(value)
    if isinstance(value, Mapping):
        value = value.get("value", value.get("valueInteger", value.get("valueDecimal")))
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _says_yes(value: object) -> bool:
    """Tell whether an answer is a boolean yes (``true``, ``{"value": true}``, ``valueBoolean``)."""
    if type(value) is int:
        return False
    if isinstance(value, Mapping):
        value = value.get("value", value.get("valueBoolean"))
    return value is True


def _answers(raw: Mapping[str, Any]) -> dict[str, object]:
    """Return the item's answers keyed by normalised link id, from a mapping or a FHIR-like list."""
    answers = raw.get("answers", raw.get("answer", raw.get("item")))
    out: dict[str, object] = {}
    if isinstance(answers, Mapping):
        for key, value in answers.items():
            out[_key_text(key) if type(key) is str else str(key).strip().lower()] = value
    elif isinstance(answers, list):
        for entry in answers:
            if isinstance(entry, Mapping) and "linkId" in entry:
                out[str(entry["linkId"]).strip().lower()] = entry
    return out


def _phq9_item(answers: Mapping[str, object], link: str) -> list[object]:
    return [value for key, value in answers.items() if _item_number(key) == link]


def triggers_in_raw(raw: object) -> tuple[str, ...]:
    """Return the crisis triggers (``CRISIS_TRIGGERS`` names) that a raw item's answers show."""
    if not isinstance(raw, Mapping):
        return ()
    limits = _thresholds()
    instrument = _norm(raw.get("instrument_id", raw.get("instrument")))
    answers = _answers(raw)
    found: set[str] = set()
    if instrument.startswith("phq9"):
        for value in _phq9_item(answers, limits.phq9_item):
            number = read_number(value)
            if _says_yes(value) or (number is not None and number >= limits.phq9_min):
                found.add("phq9_item9")
    if not _reads_blood_pressure(instrument):
        return _ordered(found)
    for name, above in (("systolic", limits.systolic_above),
                        ("diastolic", limits.diastolic_above)):
        for alias in _BP_ALIASES[name]:
            number = read_number(answers.get(alias))
            if number is not None and number > above:
                found.add("hypertensive_crisis")
    return _ordered(found)


def _ordered(found: set[str]) -> tuple[str, ...]:
    if not found:
        return ()
    order = [t.trigger for t in CRISIS_TRIGGERS]
    return tuple(sorted(found, key=order.index))


def _reads_blood_pressure(instrument: str) -> bool:
    """Tell whether an item's readings are a blood pressure taken now.

    A misspelt or missing instrument id still counts (the reading names are unambiguous), but
    not another known instrument: the ASCVD calculator's "systolic" is a remembered risk input.
    """
    if instrument.startswith("bloodpressure") or instrument in ("bp", ""):
        return True
    return instrument not in _known_instruments()


@lru_cache(maxsize=1)
def _known_instruments() -> frozenset[str]:
    return frozenset(_norm(i) for i, _version in list_instruments())
