"""kiosk.flow and the PHQ-9's unscored difficulty question (item 10 from version 1.1.0).

"Prefer not to answer" is always possible on it and, unlike a skip of a scored item, leaves the
PHQ-9 scored; its answer never changes the total, the band or the crisis (Kroenke 2001: the
difficulty question is not part of the score).
"""

from __future__ import annotations

import pytest

from kiosk.flow import CRISIS, MENU, QUESTION, RESULTS, Journey


def _phq9(difficulty: int | None, item9: int = 0) -> Journey:
    j = Journey()
    j.fire("start", 0.0)
    j.fire("accept", 0.0)
    j.identify("opaque-ref", 0.0)
    assert j.screen == MENU
    j.begin(["phq9"], 1.0)
    assert j.current_questions()[-1] == "10"
    while j.screen == QUESTION and j.question != "10":
        j.answer(item9 if j.question == "9" else 1, 2.0)
    if j.screen == QUESTION:
        if difficulty is None:
            j.skip(3.0)
        else:
            j.answer(difficulty, 3.0)
    return j


@pytest.mark.parametrize("difficulty", [None, 0, 1, 2, 3])
def test_difficulty_answered_or_declined_the_phq9_is_scored_alike(difficulty: int | None) -> None:
    j = _phq9(difficulty)
    assert j.screen == RESULTS
    result = j.results["phq9"]
    assert result is not None and result.total == 8 and result.band == "mild"
    assert j.crisis_triggers == []


@pytest.mark.parametrize("difficulty", [None, 0, 3])
def test_difficulty_never_raises_or_hides_the_item_9_crisis(difficulty: int | None) -> None:
    assert _phq9(difficulty, item9=1).screen == CRISIS
    assert _phq9(difficulty, item9=0).crisis_triggers == []
