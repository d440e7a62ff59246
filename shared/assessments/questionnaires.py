"""Scorers for the questionnaire instruments; every cut-off comes from the definition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from shared.assessments.scorers_base import Scored, Scorer
from shared.assessments.types import (
    ScoringError,
    reject_unknown,
    require_choice,
    require_int,
)


def _threshold(spec: Any, strata: Mapping[str, str], what: str) -> float:
    """Resolve a cut-off that is either a number or a mapping keyed by the stratum's value."""
    if isinstance(spec, Mapping):
        if len(strata) != 1:
            raise RuntimeError(f"{what}: a stratified cut-off needs exactly one stratify_by item")
        (value,) = strata.values()
        spec = spec[value]
    if isinstance(spec, bool) or not isinstance(spec, int | float):
        raise RuntimeError(f"{what}: cut-off must be a number, got {spec!r}")
    return float(spec)


def _enabled(item: Mapping[str, Any], resolved: Mapping[str, int]) -> bool:
    """Evaluate a FHIR-style enableWhen (all conditions must hold) against earlier answers."""
    for cond in item.get("enableWhen", ()):
        given = resolved[cond["question"]]
        target = cond["answer"]
        op = cond["operator"]
        if op == ">":
            ok = given > target
        elif op == "!=":
            ok = given != target
        elif op == "=":
            ok = given == target
        else:
            raise RuntimeError(f"item {item['linkId']}: unsupported operator {op!r}")
        if not ok:
            return False
    return True


def is_scored(item: Mapping[str, Any]) -> bool:
    """Tell whether an item counts towards the score (items are scored unless "scored": false)."""
    return item.get("scored", True) is not False


T = TypeVar("T")


class _WorkedOut(Generic[T]):
    """What is worked out from a frozen (read-only) definition or item, kept for it.

    Keyed by the source's id, holding the source so that the id cannot be reused while the
    entry lives; emptied when full. A mutable source may change under a cache: never kept.
    """

    def __init__(self, most: int) -> None:
        self._kept: dict[int, tuple[Mapping[str, Any], T]] = {}
        self._most = most

    def get(self, source: Mapping[str, Any]) -> T | None:
        """What was kept for this very source, if anything."""
        kept = self._kept.get(id(source))
        return kept[1] if kept is not None and kept[0] is source else None

    def keep(self, source: Mapping[str, Any], value: T) -> T:
        """Keep value for source if it is frozen; return value."""
        if isinstance(source, MappingProxyType):
            if len(self._kept) >= self._most:
                self._kept.clear()
            self._kept[id(source)] = (source, value)
        return value


# Each item's option values, sorted, asked for at every answer scored. The engine's definitions
# are frozen (read-only) and cached, so an item's values are worked out once: sorting them per
# answer was a quarter of scoring a PHQ-9 (docs/BENCHMARKS.md, issue 20 P6, session 10).
_OPTION_VALUES: _WorkedOut[list[int]] = _WorkedOut(4096)


def _option_values(item: Mapping[str, Any]) -> list[int]:
    """Return an item's option values, sorted (the caller must not change the list)."""
    cached = _OPTION_VALUES.get(item)
    if cached is not None:
        return cached
    return _OPTION_VALUES.keep(item, sorted(int(o["value"]) for o in item["options"]))


def _choice_value(answers: Mapping[str, object], item: Mapping[str, Any]) -> int:
    """Validate a given answer against an item's option values."""
    key = item["linkId"]
    values = _option_values(item)
    value = require_int(answers, key, values[0], values[-1])
    if value not in values:
        raise ScoringError(key, f"must be one of {values}, got {value}")
    return value


def _scale_answer(
    answers: Mapping[str, object], item: Mapping[str, Any], resolved: Mapping[str, int]
) -> int:
    """Validate one scale item, honouring its skip rule."""
    key = item["linkId"]
    values = _option_values(item)
    lo, hi = values[0], values[-1]
    if not _enabled(item, resolved):
        skipped = int(item["disabledValue"])
        if key not in answers:
            return skipped
        value = require_int(answers, key, lo, hi)
        if value != skipped:
            # The member said e.g. "never" to drinking and then reported drinks: we do not
            # guess which answer is the true one.
            raise ScoringError(
                key, f"must be omitted or {skipped} given the answer to the earlier question"
            )
        return value
    value = require_int(answers, key, lo, hi)
    if value not in values:
        raise ScoringError(key, f"must be one of {values}, got {value}")
    return value


@dataclass(frozen=True)
class _SumPlan:
    """What ``score_sum`` reads of a frozen definition, worked out once per definition.

    Scoring read each item's kind, options and skip rule and each band's cut-offs through the
    definition's read-only mappings at every answer; a server re-scoring a kiosk's backlog
    does that thousands of times with the same definition (docs/BENCHMARKS.md, issue 20 P6,
    session 11). The plan keeps only what the definition says; every answer is still checked
    in the same order, with the same messages.
    """

    known: frozenset[str]
    # (kind, linkId, item, the stratum's choices, the values a scale item always accepts):
    # kind "unscored", "stratum" or "scale", in item order. The accepted values are those of
    # a scale item with no skip rule: any such whole number is taken as it is, anything else
    # goes through ``_scale_answer`` (and its messages).
    steps: tuple[tuple[str, str, Mapping[str, Any], tuple[str, ...], frozenset[int]], ...]
    multiplier: int
    # (band id, min, max): floats, or None where a cut-off depends on the stratum.
    bands: tuple[tuple[str, Any, Any, float | None, float | None], ...]


_PLANS: _WorkedOut[_SumPlan] = _WorkedOut(256)


def _sum_plan(definition: Mapping[str, Any]) -> _SumPlan:
    """Return the plan of a summed questionnaire; cached for frozen (read-only) definitions."""
    cached = _PLANS.get(definition)
    if cached is not None:
        return cached
    scoring = definition["scoring"]
    items = definition["items"]
    strat_key = scoring.get("stratify_by")
    score_keys = scoring.get("score_items")
    steps: list[tuple[str, str, Mapping[str, Any], tuple[str, ...], frozenset[int]]] = []
    for item in items:
        key = item["linkId"]
        if not is_scored(item):
            steps.append(("unscored", key, item, (), frozenset()))
        elif key == strat_key:
            steps.append(("stratum", key, item, tuple(str(o["value"]) for o in item["options"]),
                          frozenset()))
        elif score_keys is None or key in score_keys:
            always = frozenset() if item.get("enableWhen") else frozenset(_option_values(item))
            steps.append(("scale", key, item, (), always))
        else:
            raise RuntimeError(f"{definition['id']}: item {key} is neither scored nor a stratum")
    bands = tuple(
        (b["id"], b["min"], b["max"],
         None if isinstance(b["min"], Mapping) else _threshold(b["min"], {}, b["id"]),
         None if isinstance(b["max"], Mapping) else _threshold(b["max"], {}, b["id"]))
        for b in scoring["bands"])
    plan = _SumPlan(known=frozenset(item["linkId"] for item in items), steps=tuple(steps),
                    multiplier=int(scoring.get("multiplier", 1)), bands=bands)
    return _PLANS.keep(definition, plan)


def score_sum(definition: Mapping[str, Any], answers: Mapping[str, object]) -> Scored:
    """Score a summed questionnaire (PHQ, GAD, WHO-5, AUDIT-C) from its definition."""
    scoring = definition["scoring"]
    plan = _sum_plan(definition)
    if not answers.keys() <= plan.known:
        reject_unknown(answers, plan.known)
    resolved: dict[str, int] = {}
    strata: dict[str, str] = {}
    unscored: dict[str, int] = {}
    for kind, key, item, choices, always in plan.steps:
        if kind == "scale":
            value = answers.get(key)
            # type() is int: neither a bool nor anything else _scale_answer would refuse.
            resolved[key] = (value if type(value) is int and value in always
                             else _scale_answer(answers, item, resolved))
        elif kind == "stratum":
            strata[key] = require_choice(answers, key, choices)
        elif key in answers:
            # Validated when given, but never summed, banded or flagged, and never required
            # (PHQ-9's difficulty question: the member may always prefer not to answer).
            unscored[key] = _choice_value(answers, item)

    raw = sum(resolved.values())
    total = raw * plan.multiplier

    band = None
    for band_id, lo_spec, hi_spec, lo, hi in plan.bands:
        if lo is None:
            lo = _threshold(lo_spec, strata, band_id)
        if hi is None:
            hi = _threshold(hi_spec, strata, band_id)
        if lo <= total <= hi:
            band = band_id
            break
    if band is None:
        raise RuntimeError(f"{definition['id']}: no band covers total {total}")

    flags: set[str] = set()
    for flag in scoring.get("flags", ()):
        when = flag["when"]
        if "item" in when:
            hit = resolved[when["item"]] >= when["min"]
        elif "total_min" in when:
            hit = total >= _threshold(when["total_min"], strata, flag["id"])
        elif "total_max" in when:
            hit = total <= _threshold(when["total_max"], strata, flag["id"])
        else:
            raise RuntimeError(f"{definition['id']}: unsupported flag rule {dict(when)!r}")
        if hit:
            flags.add(flag["id"])

    details: dict[str, Any] = {"items": resolved, "raw_total": raw, **strata}
    if unscored:
        details["unscored"] = unscored
    return Scored(total, band, frozenset(flags), details)


SCORERS: dict[str, Scorer] = {"sum": score_sum}
