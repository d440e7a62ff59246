"""Crisis in a partly answered instrument: a skip never hides a crisis, nor creates one."""

from __future__ import annotations

import pytest

from shared.crisis import crisis_flags, crisis_in_partial

PHQ9_BASE = {str(i): 1 for i in range(1, 10)}


def _without(answers: dict[str, object], *keys: str) -> dict[str, object]:
    return {k: v for k, v in answers.items() if k not in keys}


def test_only_crisis_instruments_have_crisis_flags() -> None:
    assert crisis_flags("phq9") == {"item9_positive"}
    assert crisis_flags("blood_pressure") == {"hypertensive_crisis"}
    assert crisis_flags("gad7") == frozenset()


@pytest.mark.parametrize(("answers", "skipped", "expected"), [
    # DESIGN.md §3: PHQ-9 item 9 >= 1 is a crisis whatever the total, so skipping item 4
    # cannot hide it.
    ({**_without(PHQ9_BASE, "4"), "9": 2}, ["4"], {"item9_positive"}),
    # Skipping item 9 itself is "prefer not to answer": the gentle notice, never a crisis.
    (_without(PHQ9_BASE, "9"), ["9"], set()),
    ({**_without(PHQ9_BASE, "2", "4", "6"), "9": 0}, ["2", "4", "6"], set()),
], ids=["item9-answered", "item9-skipped", "item9-zero"])
def test_phq9(answers: dict[str, object], skipped: list[str], expected: set[str]) -> None:
    assert crisis_in_partial("phq9", answers, skipped) == expected


@pytest.mark.parametrize(("answers", "skipped", "expected"), [
    # AHA: systolic > 180 and/or diastolic > 120 is a hypertensive crisis; one reading suffices.
    ({"diastolic": 125}, ["systolic"], {"hypertensive_crisis"}),
    ({"diastolic": 120}, ["systolic"], set()),  # not above 120
    ({"systolic": 181}, ["diastolic"], {"hypertensive_crisis"}),
    ({"systolic": 180}, ["diastolic"], set()),  # a missing diastolic may itself be > 120
    ({"diastolic": 95}, ["systolic"], set()),
], ids=["dia-125", "dia-120", "sys-181", "sys-180", "dia-95"])
def test_blood_pressure(answers: dict[str, object], skipped: list[str],
                        expected: set[str]) -> None:
    assert crisis_in_partial("blood_pressure", answers, skipped) == expected


def test_nothing_skipped_or_no_crisis_instrument_is_empty() -> None:
    assert crisis_in_partial("phq9", {**PHQ9_BASE, "9": 3}, []) == frozenset()
    assert crisis_in_partial("gad7", {"1": 3}, ["2"]) == frozenset()
