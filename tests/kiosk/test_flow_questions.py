"""kiosk.flow's choice of questions: units, enableWhen, and height and weight asked once.

Clinical data: the ADA risk test asks about gestational diabetes of women only (Bang 2009);
its height and weight are the same measurements as the BMI's.
"""

from __future__ import annotations

import pytest

from kiosk.flow import MENU, QUESTION, RESULTS, Journey


def _menu() -> Journey:
    j = Journey()
    j.fire("start", 0.0)
    j.fire("accept", 0.0)
    j.identify("ref", 0.0)
    assert j.screen == MENU
    return j


def test_metric_by_default_imperial_when_chosen() -> None:
    j = _menu()
    j.begin(["bmi"], 1.0, single=True)
    assert j.current_questions() == ["height_cm", "weight_kg"]
    j.set_units("imperial")
    assert j.current_questions() == ["height_in", "weight_lb"]
    with pytest.raises(ValueError, match="units"):
        j.set_units("furlongs")


@pytest.mark.parametrize(("sex", "asked"), [("male", False), ("female", True)])
def test_gestational_diabetes_is_asked_of_women_only(sex: str, asked: bool) -> None:
    j = _menu()
    j.begin(["ada_risk"], 1.0, single=True)
    j.answer(45, 2.0)
    j.answer(sex, 2.0)
    assert ("gestational_diabetes" in j.current_questions()) is asked
    assert "bmi" not in j.current_questions()


def test_height_and_weight_from_the_bmi_carry_into_the_ada_test() -> None:
    j = _menu()
    j.begin(["bmi", "ada_risk"], 1.0)
    j.answer(170, 2.0)
    j.answer(70, 2.0)
    assert j.screen == QUESTION and j.instrument == "ada_risk"
    assert "height_cm" not in j.current_questions()
    for value in (45, "male", True, False, True):
        j.answer(value, 3.0)
    assert j.screen == RESULTS
    assert j.answers["ada_risk"]["height_cm"] == 170 and j.results["ada_risk"] is not None


def test_an_answer_to_a_question_no_longer_asked_is_dropped() -> None:
    j = _menu()
    j.begin(["ada_risk"], 1.0, single=True)
    j.answer(45, 2.0)
    j.answer("female", 2.0)
    j.answer(True, 2.0)  # gestational diabetes: yes
    j.back(2.0)
    j.back(2.0)
    j.answer("male", 2.0)  # now the question does not apply
    j.set_units("imperial")
    for value in (True, False, True, 66, 180):
        j.answer(value, 3.0)
    assert j.screen == RESULTS
    assert "gestational_diabetes" not in j.answers["ada_risk"]
    assert j.results["ada_risk"] is not None
