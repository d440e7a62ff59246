"""kiosk.flow offers follow-up screeners as triage says (assets/triage/rules.json), never silently.

Clinical data: PHQ-2 >= 3 is positive (Kroenke 2003) and triage offers the PHQ-9; GAD-2 >= 3
is positive (Kroenke 2007) and offers the GAD-7; a WHO-5 raw score <= 12 is poor well-being
(Topp 2015) and offers the PHQ-9; PHQ-9 item 9 >= 1 raises the crisis screen; systolic > 180
is a hypertensive crisis (2017 ACC/AHA).
"""

from __future__ import annotations

import copy
import json

import pytest

from kiosk.flow import (
    ATTRACT,
    CRISIS,
    MENU,
    OFFER,
    QUESTION,
    RESULTS,
    TABLE,
    FlowError,
    Journey,
    Timeouts,
)
from shared.paths import assets_dir
from shared.triage import TriageRules, parse_rules


def _menu(j: Journey | None = None) -> Journey:
    j = j or Journey()
    j.fire("start", 0.0)
    j.fire("accept", 0.0)
    j.identify("opaque-ref", 0.0)
    assert j.screen == MENU
    return j


def _answer_all(j: Journey, value: object, t: float = 1.0) -> None:
    iid = j.instrument
    while j.screen == QUESTION and j.instrument == iid:
        j.answer(value, t)


def test_a_positive_phq2_offers_the_phq9_and_yes_asks_it_next() -> None:
    j = _menu()
    j.begin(["phq2", "gad2"], 1.0)
    _answer_all(j, 2)
    assert j.screen == OFFER and j.offer == "phq9" and j.offer_from == "phq2"
    assert j.plan == ["phq2", "gad2"]  # offered, not added
    assert j.accept_offer(2.0) == QUESTION
    assert j.instrument == "phq9" and j.question_index == 0
    assert j.plan == ["phq2", "phq9", "gad2"] and j.offer is None


def test_no_thanks_goes_on_with_the_plan_and_is_never_offered_again() -> None:
    j = _menu()
    j.begin(["phq2", "gad2"], 1.0)
    _answer_all(j, 2)
    assert j.decline_offer(2.0) == QUESTION and j.instrument == "gad2"
    assert j.declined == ["phq9"] and "phq9" not in j.plan
    _answer_all(j, 0)  # GAD-2 negative: triage still proposes the PHQ-9 (PHQ-2 positive)
    assert j.screen == RESULTS and j.offer is None
    # The same visit, the PHQ-2 again from the menu: declined stays declined.
    j.fire("menu", 3.0)
    j.begin(["phq2"], 4.0)
    _answer_all(j, 3)
    assert j.screen == RESULTS and j.declined == ["phq9"]


def test_no_thanks_on_the_last_screener_shows_the_results() -> None:
    j = _menu()
    j.begin(["gad2"], 1.0, single=True)
    _answer_all(j, 2)
    assert j.screen == OFFER and j.offer == "gad7"
    assert j.decline_offer(2.0) == RESULTS
    assert set(j.results) == {"gad2"}


def test_a_negative_screen_offers_nothing() -> None:
    j = _menu()
    j.begin(["phq2", "gad2"], 1.0)
    _answer_all(j, 0)
    assert j.screen == QUESTION and j.instrument == "gad2"
    _answer_all(j, 1)  # GAD-2 = 2: negative
    assert j.screen == RESULTS and j.offer is None


def test_an_unscored_screener_offers_nothing() -> None:
    j = _menu()
    j.begin(["phq2"], 1.0, single=True)
    j.answer(3, 1.0)
    j.skip(1.0)
    assert j.screen == RESULTS and j.results["phq2"] is None and j.offer is None


def test_the_single_screener_path_offers_the_same_way() -> None:
    j = _menu()
    j.begin(["who5"], 1.0, single=True)
    _answer_all(j, 0)  # WHO-5 raw 0: poor well-being
    assert j.screen == OFFER and j.offer == "phq9"
    assert j.accept_offer(2.0) == QUESTION and j.plan == ["who5", "phq9"]
    _answer_all(j, 0)
    assert j.screen == RESULTS and j.results["phq9"] is not None


def test_a_screener_already_taken_is_not_offered() -> None:
    j = _menu()
    j.begin(["phq9"], 1.0, single=True)
    _answer_all(j, 0)
    j.fire("menu", 2.0)
    j.begin(["who5"], 3.0, single=True)
    _answer_all(j, 0)  # would offer the PHQ-9, but it was answered this visit
    assert j.screen == RESULTS and j.offer is None


def test_a_screener_already_planned_is_not_offered() -> None:
    j = _menu()
    j.begin(["phq2", "phq9"], 1.0)
    _answer_all(j, 3)
    assert j.screen == QUESTION and j.instrument == "phq9" and j.offer is None


def test_back_from_the_offer_reopens_the_last_question_unscored() -> None:
    j = _menu()
    j.begin(["phq2", "gad2"], 1.0)
    _answer_all(j, 2)
    assert j.screen == OFFER
    assert j.back(2.0) == QUESTION
    assert j.instrument == "phq2" and j.question == "2" and "phq2" not in j.results
    assert j.offer is None and j.declined == []
    j.answer(0, 3.0)  # a different answer: PHQ-2 = 2, negative, no offer
    assert j.screen == QUESTION and j.instrument == "gad2" and j.offer is None
    assert j.results["phq2"] is not None and j.results["phq2"].total == 2


def test_the_offer_screen_times_out_and_end_session_wipes_the_offer() -> None:
    j = _menu(Journey(timeouts=Timeouts(idle=90, countdown=20)))
    j.begin(["phq2"], 0.0)
    _answer_all(j, 2, 0.0)
    assert j.screen == OFFER and j.holds_member_data()
    assert j.tick(95.0) == "countdown"
    j.tick(111.0)
    assert j.screen == ATTRACT and not j.holds_member_data()
    assert j.offer is None and j.offer_from is None and j.declined == []


def test_end_session_forgets_what_was_declined() -> None:
    j = _menu()
    j.begin(["gad2"], 1.0, single=True)
    _answer_all(j, 3)
    j.decline_offer(2.0)
    assert j.declined == ["gad7"] and j.holds_member_data()
    assert j.fire("end", 3.0) == ATTRACT
    assert j.declined == [] and not j.holds_member_data()
    # The next member is offered the GAD-7 afresh.
    _menu(j)
    j.begin(["gad2"], 4.0, single=True)
    _answer_all(j, 3)
    assert j.screen == OFFER and j.offer == "gad7"


def _rules_offering_after_a_crisis() -> TriageRules:
    """The shipped rules plus one offer that comes with a crisis reading (rules are data)."""
    data = json.loads((assets_dir() / "triage" / "rules.json").read_text("utf-8"))
    data = copy.deepcopy(data)
    data["next_screeners"].append({"when": {"instrument": "blood_pressure",
                                            "flags": ["hypertensive_crisis"]},
                                   "offer": "gad7"})
    return parse_rules(data)


def test_a_crisis_shows_first_and_the_offer_after_it_is_closed() -> None:
    j = _menu(Journey(rules=_rules_offering_after_a_crisis()))
    j.begin(["blood_pressure", "gad2"], 1.0)
    j.answer(185, 2.0)
    j.answer(95, 2.0)
    assert j.screen == CRISIS and j.offer == "gad7"
    j.close_crisis(3.0, confirm=False)
    assert j.close_crisis(5.0, confirm=True) == OFFER
    # The crisis was seen and closed on purpose: Back does not reopen that screener.
    assert j.reopenable is None
    with pytest.raises(FlowError):
        j.back(5.0)
    assert j.accept_offer(6.0) == QUESTION and j.plan == ["blood_pressure", "gad7", "gad2"]


def test_the_crisis_screen_without_an_offer_closes_as_before() -> None:
    j = _menu()
    j.begin(["phq2", "phq9"], 1.0)
    _answer_all(j, 0)
    for link in j.current_questions():
        j.answer(1 if link == "9" else 0, 2.0)
    assert j.screen == CRISIS and j.offer is None
    j.close_crisis(3.0, confirm=False)
    assert j.close_crisis(5.0, confirm=True) == RESULTS


def test_offer_events_are_refused_elsewhere() -> None:
    j = _menu()
    with pytest.raises(FlowError):
        j.accept_offer(1.0)
    with pytest.raises(FlowError):
        j.decline_offer(1.0)
    assert TABLE[(OFFER, "accept")] == QUESTION and TABLE[(OFFER, "finished")] == RESULTS
