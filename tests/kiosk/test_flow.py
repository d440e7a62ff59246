"""kiosk.flow walked without a window: every path, every timer, and the wipe.

Clinical data: PHQ-2 >= 3 is positive (Kroenke 2003) and triage offers the PHQ-9; GAD-2 >= 3
is positive (Kroenke 2007) and triage offers the GAD-7; PHQ-9 item 9 >= 1 raises the crisis
screen.
"""

from __future__ import annotations

import pytest

from kiosk.flow import (
    ATTRACT,
    BOOKING,
    CRISIS,
    DONE,
    IDENTIFY,
    MENU,
    OFFER,
    PRIVACY,
    QR,
    QUESTION,
    REFERRAL,
    RESULTS,
    TABLE,
    FlowError,
    Journey,
    Timeouts,
)


def _to_menu(j: Journey, *, identified: bool = True, t: float = 0.0) -> None:
    j.fire("start", t)
    j.fire("accept", t)
    if identified:
        j.identify("opaque-ref", t)
    else:
        j.go_anonymous(t)
    assert j.screen == MENU


def _answer_all(j: Journey, value: object, t: float) -> None:
    iid = j.instrument
    while j.screen == QUESTION and j.instrument == iid:
        j.answer(value, t)


def test_identified_checkup_with_follow_ups_then_referral_booking_qr() -> None:
    j = Journey()
    _to_menu(j)
    j.begin(["phq2", "gad2"], 1.0)
    assert j.screen == QUESTION and j.progress() == (1, 2)
    _answer_all(j, 2, 2.0)  # PHQ-2 = 4: positive, the PHQ-9 is offered
    assert j.screen == OFFER and j.offer == "phq9" and j.plan == ["phq2", "gad2"]
    assert j.accept_offer(2.5) == QUESTION and j.instrument == "phq9"
    assert j.plan == ["phq2", "phq9", "gad2"]
    for link in j.current_questions():
        j.answer(1 if link != "9" else 0, 3.0)
    _answer_all(j, 0, 4.0)  # GAD-2 = 0: negative
    assert j.screen == RESULTS
    assert j.results["phq9"] is not None and j.results["phq9"].total == 8
    assert j.results["gad2"] is not None and j.results["gad2"].band
    assert j.fire("continue", 5.0) == REFERRAL
    assert j.fire("done", 6.0) == MENU
    assert j.fire("booking", 7.0) == BOOKING
    assert j.fire("booked", 8.0) == QR
    assert j.fire("done", 9.0) == DONE
    assert j.fire("timeout", 10.0) == ATTRACT


def test_anonymous_members_get_results_but_no_referral_booking_or_link() -> None:
    j = Journey()
    _to_menu(j, identified=False)
    for event in ("booking", "advocate"):
        with pytest.raises(FlowError):
            j.fire(event, 1.0)
    j.begin(["phq2"], 1.0)
    _answer_all(j, 0, 2.0)
    assert j.screen == RESULTS
    assert j.fire("continue", 3.0) == MENU  # no referral offer


def test_item_9_shows_the_crisis_screen_which_closes_in_two_steps() -> None:
    j = Journey()
    _to_menu(j)
    j.begin(["phq9", "gad2"], 1.0)
    for link in j.current_questions():
        j.answer(2 if link == "9" else 0, 2.0)
    assert j.screen == CRISIS and j.crisis_triggers == ["phq9_item9"]
    with pytest.raises(FlowError):
        j.close_crisis(3.0, confirm=True)  # the first step is required
    assert j.close_crisis(3.0, confirm=False) == CRISIS
    assert j.close_crisis(5.0, confirm=True) == QUESTION  # the GAD-2 still to answer
    assert j.instrument == "gad2"


def test_the_crisis_screen_ignores_a_confirm_that_comes_with_the_first_step() -> None:
    # A double-tap is two taps about 0.1 s apart: it must never be both steps (issue 15).
    j = Journey()
    _to_menu(j)
    j.begin(["phq9"], 1.0)
    for link in j.current_questions():
        j.answer(1 if link == "9" else 0, 2.0)
    assert j.screen == CRISIS
    j.close_crisis(10.0, confirm=False)
    assert j.close_crisis(10.1, confirm=True) == CRISIS and j.crisis_close_armed
    j.close_crisis(11.0, confirm=False)  # a further first step does not restart the wait
    assert not j.crisis_confirm_ready(10.0 + j.timeouts.crisis_confirm - 0.01)
    assert j.close_crisis(10.0 + j.timeouts.crisis_confirm, confirm=True) == RESULTS


def test_a_skipped_item_9_is_not_a_crisis_and_the_screener_is_not_scored() -> None:
    j = Journey()
    _to_menu(j)
    j.begin(["phq9"], 1.0)
    for link in j.current_questions():
        if link == "9":
            j.skip(2.0)
        else:
            j.answer(1, 2.0)
    assert j.screen == RESULTS and j.crisis_triggers == [] and j.results["phq9"] is None


def test_a_hypertensive_crisis_reading() -> None:
    j = Journey()
    _to_menu(j, identified=False)
    j.begin(["blood_pressure"], 1.0, single=True)
    j.answer(185, 2.0)
    j.answer(95, 3.0)
    assert j.screen == CRISIS and j.crisis_triggers == ["hypertensive_crisis"]
    j.close_crisis(4.0, confirm=False)
    assert j.close_crisis(6.0, confirm=True) == RESULTS


def test_back_moves_within_a_screener_then_to_the_menu() -> None:
    j = Journey()
    _to_menu(j)
    j.begin(["phq2"], 1.0)
    j.answer(1, 2.0)
    assert j.question == "2"
    assert j.back(3.0) == QUESTION and j.question == "1"
    assert j.back(4.0) == MENU


def test_idle_countdown_a_tap_cancels_it_and_the_timeout_wipes() -> None:
    j = Journey(timeouts=Timeouts(idle=90, countdown=20))
    _to_menu(j, t=0.0)
    j.begin(["phq2"], 0.0)
    j.answer(3, 10.0)
    assert j.tick(99.0) is None
    assert j.tick(100.0) == "countdown" and j.countdown_left(105.0) == pytest.approx(15.0)
    j.touch(106.0)
    assert j.tick(110.0) is None
    assert j.tick(216.0) is None  # 110 s idle: past idle + countdown
    assert j.screen == ATTRACT and not j.holds_member_data()


def test_the_session_cap_ends_even_a_busy_visit() -> None:
    j = Journey(timeouts=Timeouts(session_cap=900))
    _to_menu(j, t=0.0)
    j.touch(899.0)
    j.tick(900.0)
    assert j.screen == ATTRACT and not j.holds_member_data()


def test_the_crisis_screen_ignores_idle_and_end_session_until_its_own_time() -> None:
    j = Journey(timeouts=Timeouts(idle=90, countdown=20, crisis_screen=300))
    _to_menu(j, t=0.0)
    j.begin(["phq9"], 0.0)
    for _link in j.current_questions():
        j.answer(1, 1.0)
    assert j.screen == CRISIS
    assert j.tick(200.0) is None and j.screen == CRISIS  # idle would have fired at 111 s
    assert j.end(201.0) == CRISIS  # "End session" does not take the guidance away
    j.tick(301.0)
    assert j.screen == ATTRACT and not j.holds_member_data()


def test_end_session_wipes_everything_and_back_cannot_reach_it() -> None:
    j = Journey(language="es")
    _to_menu(j)
    j.language = "en"
    j.begin(["phq2"], 1.0)
    j.answer(2, 2.0)
    assert j.holds_member_data()
    assert j.fire("end", 3.0) == ATTRACT
    assert not j.holds_member_data() and j.language == "es"
    with pytest.raises(FlowError):
        j.back(4.0)  # the attract screen has no way back into the last visit


@pytest.mark.parametrize("screen", [PRIVACY, IDENTIFY, MENU, QUESTION, OFFER, RESULTS,
                                    REFERRAL, BOOKING, QR, DONE])
def test_every_screen_but_crisis_ends_on_end_session(screen: str) -> None:
    j = Journey()
    j.identified = True
    j.member_ref = "ref"
    j.screen = screen
    assert j.fire("end", 1.0) == ATTRACT and not j.holds_member_data()


def test_the_table_names_only_known_screens() -> None:
    from kiosk.flow import SCREENS

    for (source, _event), target in TABLE.items():
        assert source in SCREENS and target in SCREENS
