"""Readings from a cuff or scale in the visit, without a window: the answers they give, and the
device each queued screener carries (typed answers carry none: they are self-reported)."""

from __future__ import annotations

from kiosk.flow import QUESTION, RESULTS
from tests.kiosk.test_visit import _signed_in

CUFF = {"kind": "blood_pressure", "manufacturer": "Acme", "model": "BP-1", "serial": "123"}
SCALE = {"kind": "weight", "manufacturer": "Acme", "model": "WS-1", "serial": "456"}


def test_a_cuff_reading_answers_both_questions_and_travels_with_its_device() -> None:
    visit, fake = _signed_in()
    visit.single("blood_pressure")
    assert visit.answer_from_device({"systolic": 152, "diastolic": 96}, CUFF) == RESULTS
    item = fake.submitted[-1]
    assert item["answers"] == {"systolic": 152, "diastolic": 96}
    assert item["devices"] == [{**CUFF, "link_ids": ["diastolic", "systolic"]}]


def test_typed_readings_carry_no_device() -> None:
    visit, fake = _signed_in()
    visit.single("blood_pressure")
    visit.answer(152)
    visit.answer(96)
    assert "devices" not in fake.submitted[-1]


def test_the_scale_answers_the_weight_not_a_typed_height() -> None:
    visit, fake = _signed_in()
    visit.single("bmi")
    visit.journey.set_units("metric")
    visit.answer(170)  # the height, typed
    assert visit.answer_from_device({"weight_kg": 81.6, "height_cm": 178}, SCALE) == RESULTS
    assert fake.submitted[-1]["devices"] == [{**SCALE, "link_ids": ["weight_kg"]}]
    # The scale's height is not used: the member typed theirs before the weight.
    assert fake.submitted[-1]["answers"] == {"height_cm": 170, "weight_kg": 81.6}


def test_a_changed_answer_drops_the_device() -> None:
    visit, fake = _signed_in()
    visit.single("blood_pressure")
    visit.answer_from_device({"systolic": 400, "diastolic": 96}, CUFF)  # out of range
    assert visit.screen == QUESTION and visit.journey.question == "systolic"
    visit.answer(150)
    visit.answer(95)
    assert "devices" not in fake.submitted[-1]
