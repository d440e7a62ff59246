"""Crisis detection in a partly answered instrument (the member skipped some questions).

A screener with a skipped item is not scored, but a crisis in what was answered must still be
seen (DESIGN.md §3, crisis): PHQ-9 item 9 answered 2 with item 4 skipped, or a diastolic of
125 with the systolic left blank. A crisis flag counts only if every valid way of filling the
blanks raises it, so a skip never creates a crisis and never hides one.

``score_item`` is the per-item rule both the kiosk and the server apply: a complete set of
answers is scored; a set with skipped questions is not, but what was answered is checked and
a crisis it shows is still found.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.assessments import ScoreResult, ScoringError, score
from shared.assessments.items import (
    NOT_SCORED_BAND,
    blocking_skips,
    check_partial,
    check_version,
    questions,
    score_complete,
)
from shared.crisis.triggers import CRISIS_TRIGGERS

# Beyond this many combinations of fills, only the lowest fill is tried (a rare, wide skip).
_MAX_COMBINATIONS = 512


def crisis_flags(instrument_id: str) -> frozenset[str]:
    """Return the crisis flags an instrument can raise (empty for most instruments)."""
    return frozenset(t.flag for t in CRISIS_TRIGGERS if t.instrument == instrument_id)


def crisis_in_partial(
    instrument_id: str,
    answers: Mapping[str, object],
    skipped: Iterable[str],
    version: str | None = None,
) -> frozenset[str]:
    """Return the crisis flags raised by every valid completion of the skipped items."""
    wanted = crisis_flags(instrument_id)
    if not wanted:
        return frozenset()
    # An unscored item (PHQ-9's difficulty question) cannot change a flag, so it is no blank.
    skipped = blocking_skips(instrument_id, answers, skipped, version)
    if not skipped:
        return frozenset()
    items = questions(instrument_id, version)
    choices = [_fills(items[link], answers) for link in skipped]
    if any(not c for c in choices):
        return frozenset()
    combos: Iterable[tuple[object, ...]] = itertools.product(*choices)
    size = 1
    for c in choices:
        size *= len(c)
    if size > _MAX_COMBINATIONS:
        combos = [tuple(c[0] for c in choices)]
    common: frozenset[str] | None = None
    for combo in combos:
        filled = {**answers, **dict(zip(skipped, combo, strict=True))}
        try:
            flags = score(instrument_id, filled, version).flags & wanted
        except ScoringError:
            continue  # not a possible completion (e.g. a systolic below the diastolic)
        common = flags if common is None else common & flags
        if not common:
            return frozenset()
    return common or frozenset()


def _fills(spec: Mapping[str, Any], answers: Mapping[str, object]) -> list[object]:
    """Candidate values for a skipped item: every option, or the bounds and the neighbours of
    the answered numbers (where a rule across two fields, such as diastolic < systolic, turns)."""
    if spec.get("type") == "choice":
        return [o["value"] for o in spec.get("options", [])
                if isinstance(o["value"], int) and not isinstance(o["value"], bool)]
    if spec.get("type") not in ("integer", "decimal"):
        return []
    lo, hi = spec.get("min"), spec.get("max")
    if lo is None or hi is None:
        return []
    values = {lo, hi}
    for value in answers.values():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.update(v for v in (value - 1, value + 1) if lo <= v <= hi)
    return sorted(values)


def score_item(instrument_id: str, version: str, answers: Mapping[str, object],
               skipped: Sequence[str] = ()) -> tuple[ScoreResult | None, ScoreResult | None]:
    """Return (result to store, result for triage), or raise ItemErrors naming each field.

    The stored result is None when scored questions were skipped (the screener is not scored:
    declining an unscored one, such as the PHQ-9 difficulty question, is no such skip); the
    triage result then carries only the crisis flags that every completion would raise.
    """
    check_version(instrument_id, version)
    if not blocking_skips(instrument_id, answers, skipped, version):
        result = score_complete(instrument_id, version, answers)
        return result, result
    check_partial(instrument_id, version, answers, skipped)
    found = crisis_in_partial(instrument_id, answers, skipped, version)
    if not found:
        return None, None
    return None, ScoreResult(instrument=instrument_id, version=version, total=None,
                             band=NOT_SCORED_BAND, flags=found)
