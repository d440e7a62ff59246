"""shared.assessments.items: the per-item rule the kiosk and the server both apply."""

from __future__ import annotations

import pytest

from shared.assessments.items import NOT_SCORED_BAND, ItemErrors, questions
from shared.crisis import score_item

PHQ9 = {str(i): 1 for i in range(1, 10)}


def test_complete_answers_are_scored() -> None:
    stored, triage = score_item("phq9", "1.0.0", PHQ9)
    assert stored is not None and stored is triage
    assert stored.total == 9 and "item9_positive" in stored.flags


def test_skipped_answers_are_not_scored_but_a_crisis_is_found() -> None:
    answers = {k: v for k, v in PHQ9.items() if k != "4"}
    stored, triage = score_item("phq9", "1.0.0", answers, ["4"])
    assert stored is None
    assert triage is not None and triage.band == NOT_SCORED_BAND
    assert triage.flags == frozenset({"item9_positive"})


def test_skipping_item_9_is_not_a_crisis() -> None:
    answers = {k: v for k, v in PHQ9.items() if k != "9"}
    assert score_item("phq9", "1.0.0", answers, ["9"]) == (None, None)


@pytest.mark.parametrize(("instrument", "version", "answers", "skipped", "fields"), [
    ("phq9", "9.9.9", PHQ9, [], ["instrument_version"]),
    ("phq99", "1.0.0", PHQ9, [], ["instrument_id"]),
    ("phq9", "1.0.0", {**PHQ9, "1": 7}, [], ["answers.1"]),
    ("phq9", "1.0.0", {**PHQ9, "1": 1.0}, ["4"], ["answers.1", "answers.4"]),
    ("phq9", "1.0.0", {"1": 1}, ["12"], ["skipped.0", "answers.2", "answers.3", "answers.4",
                                         "answers.5", "answers.6", "answers.7", "answers.8",
                                         "answers.9"]),
])
def test_errors_name_each_field(instrument: str, version: str, answers: dict[str, object],
                                skipped: list[str], fields: list[str]) -> None:
    with pytest.raises(ItemErrors) as caught:
        score_item(instrument, version, answers, skipped)
    assert sorted(e["field"] for e in caught.value.errors) == sorted(fields)


def test_questions_are_by_link_id() -> None:
    assert list(questions("blood_pressure", "1.0.0")) == ["systolic", "diastolic"]
