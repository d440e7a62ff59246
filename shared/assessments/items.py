"""One instrument's answers, checked and scored as the server and the kiosk both must.

A complete set of answers is scored; a set with skipped questions ("Prefer not to answer") is
not scored, but what was answered is checked. ``shared.crisis.score_item`` builds the per-item
rule on these (a crisis a partial set shows is still found), so the kiosk and the server apply
the same checks and the same crisis rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from shared.assessments.engine import (
    available_versions,
    frozen_definition,
    score,
    unscored_items,
)
from shared.assessments.types import ScoreResult, ScoringError
from shared.paths import assets_dir

__all__ = [
    "NOT_SCORED_BAND",
    "ItemErrors",
    "blocking_skips",
    "check_partial",
    "check_version",
    "questions",
    "score_complete",
    "value_problem",
]

NOT_SCORED_BAND = "not_scored"


class ItemErrors(ValueError):
    """An item's answers cannot be accepted; ``errors`` name fields relative to the item."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@lru_cache(maxsize=128)
def questions(instrument_id: str, version: str | None = None) -> Mapping[str, Mapping[str, Any]]:
    """Return a definition's questions by linkId (cached: definitions never change at runtime)."""
    return _questions(str(assets_dir()), instrument_id, version)


@lru_cache(maxsize=256)
def _questions(root: str, instrument_id: str,
               version: str | None) -> Mapping[str, Mapping[str, Any]]:
    # Read-only views of the cached definition: the scoring path and every FHIR bundle ask
    # for these per item, and a deep copy each time cost more than the scoring itself.
    definition = frozen_definition(instrument_id, version)
    return MappingProxyType({str(it["linkId"]): it for it in definition["items"]})


@lru_cache(maxsize=128)
def _versions(instrument_id: str) -> tuple[str, ...] | str:
    try:
        return tuple(available_versions(instrument_id))
    except ScoringError as exc:
        return exc.message


def check_version(instrument_id: str, version: str) -> None:
    versions = _versions(instrument_id)
    if isinstance(versions, str):
        raise ItemErrors([{"field": "instrument_id", "message": versions}])
    if version not in versions:
        raise ItemErrors([{"field": "instrument_version",
                           "message": f"{instrument_id} has no version {version} "
                                      f"(this server has {', '.join(versions)})"}])


def value_problem(spec: Mapping[str, Any], value: object) -> str | None:
    """Return why one answer does not fit its question, or None when it does."""
    kind = spec.get("type")
    if kind == "choice":
        allowed = [opt["value"] for opt in spec.get("options", [])]
        # Exact types: 3.0 == 3 in Python, but the engine refuses 3.0 and so must this check.
        if isinstance(value, bool) or not any(type(value) is type(opt) and value == opt
                                              for opt in allowed):
            return f"must be one of {', '.join(str(v) for v in allowed)}"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if kind == "integer" and not isinstance(value, int):
            return "must be a whole number"
        lo, hi = spec.get("min"), spec.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            return f"must be from {lo} to {hi}"
        return None
    return None if isinstance(value, str) else "must be text"


def _check_partial(items: Mapping[str, Mapping[str, Any]], answers: Mapping[str, object],
                   skipped: Sequence[str]) -> None:
    errors: list[dict[str, str]] = []
    skipped_set = set(skipped)
    for i, link_id in enumerate(skipped):
        if link_id not in items:
            errors.append({"field": f"skipped.{i}",
                           "message": "is not a question of this instrument"})
    for link_id, value in answers.items():
        spec = items.get(link_id)
        if spec is None:
            errors.append({"field": f"answers.{link_id}",
                           "message": "is not a question of this instrument"})
        elif link_id in skipped_set:
            errors.append({"field": f"answers.{link_id}", "message": "is also marked skipped"})
        else:
            message = value_problem(spec, value)
            if message:
                errors.append({"field": f"answers.{link_id}", "message": message})
    for link_id, spec in items.items():
        if spec.get("required") and link_id not in answers and link_id not in skipped_set:
            errors.append({"field": f"answers.{link_id}",
                           "message": "is missing (answer it or list it in skipped)"})
    if errors:
        raise ItemErrors(errors)


def blocking_skips(instrument_id: str, answers: Mapping[str, object], skipped: Iterable[str],
                   version: str | None = None) -> list[str]:
    """Return the skipped questions that keep an instrument from being scored.

    Declining an unscored question (PHQ-9's difficulty question) is always allowed and leaves
    the instrument scorable; one both answered and skipped still counts, so it is refused.
    """
    optional = unscored_items(instrument_id, version) - set(answers)
    return [link for link in skipped if link not in optional]


def _scoring_field(name: str) -> str:
    return name if name in ("instrument_id", "answers") else f"answers.{name}"


def score_complete(instrument_id: str, version: str, answers: Mapping[str, object]
                   ) -> ScoreResult:
    """Score a complete set of answers, or raise ItemErrors naming the field."""
    try:
        return score(instrument_id, answers, version)
    except ScoringError as exc:
        raise ItemErrors([{"field": _scoring_field(exc.field), "message": exc.message}]
                         ) from exc


def check_partial(instrument_id: str, version: str, answers: Mapping[str, object],
                  skipped: Sequence[str]) -> None:
    """Check a partly answered set (the questions, and what was answered); raise ItemErrors."""
    _check_partial(questions(instrument_id, version), answers, skipped)
