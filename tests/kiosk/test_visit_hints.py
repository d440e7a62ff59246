"""The blood-pressure question tells a member without a recent reading what to do."""

from __future__ import annotations

from kiosk.flow import QUESTION
from kiosk.visit import Visit, _question_hints
from tests.kiosk.test_messages import _grade
from tests.kiosk.ui.fakes import FakeBackend


def test_the_blood_pressure_question_says_measure_here_or_skip() -> None:
    visit = Visit(FakeBackend())
    visit.fire("start")
    visit.fire("accept")
    visit.anonymous()
    visit.single("blood_pressure")
    assert visit.screen == QUESTION and visit.journey.question == "systolic"
    said = visit.preamble()
    assert "cuff at this event" in said and "Prefer not to answer" in said
    visit.journey.language = "es"
    assert "tensiómetro" in visit.preamble() and "Prefiero no responder" in visit.preamble()
    assert all(_grade(hint["en"]) <= 8 for hint in _question_hints().values())
