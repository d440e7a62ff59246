"""The results in plain words: a crisis first, never reassuring after a self-harm answer, the
member's own numbers with one next step, one answer per question asked (issue 15 §2)."""

from __future__ import annotations

import json
import re

import pytest

from kiosk.flow import CRISIS, OFFER, RESULTS
from kiosk.visit import Visit
from shared.assessments import load_definition
from shared.i18n import LANGUAGES
from shared.paths import assets_dir
from tests.kiosk.test_messages import _grade
from tests.kiosk.ui.fakes import FakeBackend

WORDS = json.loads((assets_dir() / "kiosk" / "result_words.json").read_text("utf-8"))
_FIELD = re.compile(r"\{[a-z_]*\}")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _visit(language: str = "en", **backend: bool) -> tuple[Visit, FakeBackend, Clock]:
    fake = FakeBackend(**backend)
    clock = Clock()
    visit = Visit(fake, clock=clock, language=language)
    visit.fire("start")
    visit.fire("accept")
    visit.anonymous()
    return visit, fake, clock


def _answer(visit: Visit, values: dict[str, object], default: object = 0) -> None:
    for _step in range(40):
        if visit.screen != "question":
            return
        visit.answer(values.get(visit.journey.question, default))
    raise AssertionError(f"stuck on question {visit.journey.question}")


def _phq9_with_item_9(visit: Visit, clock: Clock) -> None:
    """The issue's case: PHQ-9 alone, items 1-8 "Not at all", item 9 "Several days"."""
    visit.single("phq9")
    _answer(visit, {"9": 1})
    assert visit.screen == CRISIS
    visit.close_crisis(confirm=False)
    clock.now += 5
    assert visit.close_crisis(confirm=True) == RESULTS


def test_after_a_self_harm_answer_the_results_open_with_the_crisis_and_never_reassure() -> None:
    visit, fake, clock = _visit()
    _phq9_with_item_9(visit, clock)
    fake.depth = 0  # everything sent: staff were told
    crisis = visit.crisis_summary()
    assert crisis is not None
    assert "hurting yourself" in crisis.seen[0]
    assert "Staff here were told" in crisis.staff
    assert "988" in crisis.lines and "911" in crisis.lines
    (phq9,) = visit.findings()
    assert phq9.crisis and phq9.level == "act", "a positive item 9 is never healthy"
    shown = " ".join((phq9.level_words, phq9.said, phq9.step))
    assert "healthy" not in shown.lower() and "keep doing" not in shown.lower()
    assert "988" in phq9.step
    assert "988" in visit.crisis_reminder()  # the done screen repeats it


def test_staff_are_said_to_be_told_only_once_the_crisis_has_gone() -> None:
    visit, _fake, clock = _visit(online=False)
    _phq9_with_item_9(visit, clock)
    crisis = visit.crisis_summary()
    assert crisis is not None and "Please tell staff" in crisis.staff


def test_a_visit_without_a_crisis_has_no_crisis_card_and_no_988_reminder() -> None:
    visit, _fake, _clock = _visit()
    visit.single("phq9")
    _answer(visit, {})
    assert visit.screen == RESULTS
    assert visit.crisis_summary() is None and visit.crisis_reminder() == ""
    (phq9,) = visit.findings()
    assert phq9.level == "ok" and phq9.said.startswith("Your mood score: 0 out of 27.")


@pytest.mark.parametrize(("language", "said", "step"), [
    ("en", "Your blood pressure: 152/96. That is high (stage 2).",
     "Sit quietly for 5 minutes and measure again. If it stays high, see a doctor within a "
     "month."),
    ("es", "Su presión arterial: 152/96. Está alta (etapa 2).",
     "Siéntese tranquilo 5 minutos y vuelva a medirla. Si sigue alta, vea a un médico dentro "
     "de un mes."),
])
def test_a_finding_says_the_members_own_numbers_and_one_next_step(language: str, said: str,
                                                                   step: str) -> None:
    visit, _fake, _clock = _visit(language)
    visit.single("blood_pressure")
    _answer(visit, {"systolic": 152, "diastolic": 96})
    (bp,) = visit.findings()
    assert (bp.said, bp.step, bp.level) == (said, step, "act")


def test_a_decimal_reads_as_the_language_writes_it() -> None:
    visit, _fake, _clock = _visit("es")
    visit.single("bmi")
    visit.journey.set_units("metric")
    _answer(visit, {"height_cm": 170, "weight_kg": 80})
    (bmi,) = visit.findings()
    assert bmi.said.startswith("Su índice de masa corporal (IMC): 27,7.")


@pytest.mark.parametrize(("short", "full", "positive"), [
    ("phq2", "phq9", {"1": 2, "2": 2}), ("gad2", "gad7", {"1": 2, "2": 2})])
def test_the_full_instrument_taken_after_the_short_one_is_the_only_answer(
        short: str, full: str, positive: dict[str, int]) -> None:
    visit, _fake, _clock = _visit()
    visit.journey.begin([short], 0.0)
    _answer(visit, positive)
    assert visit.screen == OFFER
    visit.accept_offer()
    _answer(visit, {"9": 0}, default=1)
    assert visit.screen == RESULTS
    assert set(visit.journey.results) == {short, full}
    shown = [f.instrument for f in visit.findings()]
    assert shown == [full], "the short screener's card must not show beside the full one"
    assert not any(full.upper().replace("PHQ", "PHQ-").replace("GAD", "GAD-") in f.step
                   for f in visit.findings()), "no advice to take what was just taken"


def test_the_short_screener_shows_when_its_follow_up_was_declined() -> None:
    visit, _fake, _clock = _visit()
    visit.journey.begin(["phq2"], 0.0)
    _answer(visit, {"1": 2, "2": 2})
    visit.decline_offer()
    assert [f.instrument for f in visit.findings()] == ["phq2"]


def test_every_band_of_every_screener_has_words_in_both_languages() -> None:
    for iid, entry in WORDS["findings"].items():
        bands = {b["id"] for b in load_definition(iid)["scoring"]["bands"]}
        assert set(entry["bands"]) == bands, iid
        for text in (entry["measure"], *(w for b in entry["bands"].values()
                                          for w in (b["said"], b["step"]))):
            assert set(text) == set(LANGUAGES), f"{iid}: {text}"
            assert all(text[lang].strip() for lang in LANGUAGES)
            assert _FIELD.findall(text["en"]) == _FIELD.findall(text["es"]), text


def _english(node: object) -> list[str]:
    if isinstance(node, dict):
        if set(node) == set(LANGUAGES):
            return [node["en"]]
        return [t for key, value in node.items() if key != "about" for t in _english(value)]
    return []


def test_the_results_wording_reads_at_grade_8_or_below() -> None:
    sentences = [s for text in _english(WORDS)
                 for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 8]
    assert len(sentences) >= 20
    too_hard = {s: round(_grade(s), 1) for s in sentences if _grade(s) > 8}
    assert too_hard == {}
