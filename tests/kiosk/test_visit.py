"""kiosk.visit without a window: sign-in, queueing as screeners finish, results, booking, QR.

Clinical data: PHQ-9 item 9 >= 1 is a crisis whatever the total (DESIGN.md 3.6); 152/96 mmHg is
stage 2 hypertension (2017 ACC/AHA), which gets the re-measure advice; a skipped PHQ-9 item 9
is not a crisis, leaves the PHQ-9 unscored and earns the gentle 988 notice.
"""

from __future__ import annotations

import pytest

from kiosk.flow import (
    ATTRACT,
    BOOKING,
    CRISIS,
    IDENTIFY,
    MENU,
    OFFER,
    QR,
    QUESTION,
    REFERRAL,
    RESULTS,
)
from kiosk.visit import Visit, email_problem, mask_email, parse_birth_date
from tests.kiosk.ui.fakes import LINK_URL, FakeBackend


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _visit(**backend: bool) -> tuple[Visit, FakeBackend]:
    fake = FakeBackend(**backend)
    visit = Visit(fake, clock=Clock())
    visit.fire("start")
    visit.fire("accept")
    assert visit.screen == IDENTIFY
    return visit, fake


def _signed_in(**backend: bool) -> tuple[Visit, FakeBackend]:
    visit, fake = _visit(**backend)
    assert visit.identify("e1001", "03141985")
    assert visit.screen == MENU
    return visit, fake


@pytest.mark.parametrize(("typed", "iso"), [
    ("03141985", "1985-03-14"), ("02/29/2000", "2000-02-29"), ("02291999", None), ("1985", None),
    ("13011990", None), ("01011899", None)])
def test_birth_dates_are_typed_month_day_year(typed: str, iso: str | None) -> None:
    assert parse_birth_date(typed) == iso


def test_sign_in_problems_say_what_to_do_and_stay_on_the_screen() -> None:
    visit, _ = _visit()
    assert not visit.identify("", "03141985") and "badge number" in visit.message
    assert not visit.identify("E1001", "0314") and "8 numbers" in visit.message
    assert not visit.identify("E9999", "03141985") and "could not find you" in visit.message
    assert visit.screen == IDENTIFY and visit.identity is None


def test_offline_sign_in_holds_the_id_for_the_server_and_says_so() -> None:
    visit, _ = _signed_in(online=False)
    assert visit.identity is not None and visit.identity.pending and not visit.identity.online
    assert "back online" in visit.message
    visit.load_bookings()
    assert visit.needs_connection
    assert visit.qr_codes() == []


def test_each_screener_is_queued_as_it_ends_and_a_crisis_before_its_screen() -> None:
    visit, fake = _signed_in()
    visit.checkup()
    for _ in range(2):
        visit.answer(2)  # PHQ-2 = 4: the PHQ-9 is offered
    assert visit.screen == OFFER
    visit.accept_offer()
    assert [s["instrument_id"] for s in fake.submitted] == ["phq2"]
    while visit.journey.question != "9":
        visit.answer(0)
    visit.answer(1)
    visit.answer(0)  # difficulty: the PHQ-9 ends with item 9 positive
    assert visit.screen == CRISIS
    crisis_item = fake.submitted[-1]
    assert crisis_item["instrument_id"] == "phq9" and crisis_item["crisis"] is True
    assert crisis_item["member"] == "ref-E1001"
    assert crisis_item["session_id"] == fake.submitted[0]["session_id"]
    assert visit.crisis()[0]["trigger"] == "phq9_item9"
    # The site's own line comes after the fixed 988/911 guidance, never instead of it.
    assert any("988" in r["label"] for r in visit.crisis()[0]["resources"])
    assert visit.local_crisis_resources() == ["Riverside Crisis Center: +1 555 0199"]
    visit.close_crisis(confirm=False)
    visit.clock.now += 5  # read it first: the second step waits a moment (issue 15)
    visit.close_crisis(confirm=True)
    assert visit.screen == QUESTION and visit.journey.instrument == "gad2"


def test_numbers_outside_the_range_are_refused_with_the_range() -> None:
    visit, fake = _signed_in()
    visit.single("blood_pressure")
    visit.answer(400)
    assert visit.screen == QUESTION and "50" in visit.message_args.get("low", "")
    visit.answer(152)
    visit.answer(96)
    assert visit.screen == RESULTS
    (row,) = visit.findings()
    assert row.level == "act" and "measure again" in row.step and "stage 2" in row.said
    assert fake.submitted[-1]["answers"] == {"systolic": 152, "diastolic": 96}


def test_imperial_units_ask_inches_and_pounds_only() -> None:
    visit, fake = _signed_in()
    visit.single("bmi")
    visit.journey.set_units("imperial")
    assert visit.journey.current_questions() == ["height_in", "weight_lb"]
    visit.answer(66)
    visit.answer(180)
    assert visit.screen == RESULTS
    assert fake.submitted[-1]["answers"] == {"height_in": 66, "weight_lb": 180}
    assert visit.journey.results["bmi"] is not None


def test_a_skipped_item_9_is_unscored_with_the_gentle_notice_not_the_crisis() -> None:
    visit, fake = _signed_in()
    visit.single("phq9")
    while visit.journey.question != "9":
        visit.answer(0)
    visit.skip()
    visit.answer(0)
    assert visit.screen == RESULTS
    assert [r.level for r in visit.findings()] == ["not_scored"]
    assert any("988" in notice for notice in visit.notices())
    assert fake.submitted[-1]["crisis"] is False and fake.submitted[-1]["skipped"] == ["9"]


def test_anonymous_items_carry_no_identity_and_results_lead_back_to_the_menu() -> None:
    visit, fake = _visit()
    visit.anonymous()
    visit.single("gad2")
    visit.answer(0)
    visit.answer(0)
    assert fake.submitted[-1]["member"] is None
    assert visit.after_results() == MENU


def test_consent_and_stop_contacting_me_are_queued() -> None:
    visit, fake = _signed_in()
    assert not visit.consent("pigeon", "morning")
    assert not visit.consent("text", "evening") and "phone number" in visit.message
    assert visit.consent("text", "evening", phone="(555) 010-2030")
    assert fake.phones[-1] == "5550102030"
    assert visit.consent("email", "any", phone="ignored", email=" ana.b+kiosk@example.org ")
    assert fake.phones[-1] is None and fake.emails[-1] == "ana.b+kiosk@example.org"
    visit.stop_contact()
    assert [c for c in fake.calls if c[0] == "consent"] == [
        ("consent", (True, "text", "evening")), ("consent", (True, "email", "any")),
        ("consent", (False, None, None))]


def test_booking_then_the_qr_codes_with_the_ticket() -> None:
    visit, fake = _signed_in()
    visit.fire("booking")
    visit.load_bookings()
    assert not visit.needs_connection
    visit.choose_event("ev-1")
    slot = visit.slots()[0]
    assert visit.book_slot(slot.id) == QR
    kinds = [(c.kind, c.content) for c in visit.qr_codes()]
    assert kinds[1] == ("advocate", LINK_URL)
    assert [k for k, _ in kinds] == ["ticket", "advocate", "vcard"]


def test_a_full_slot_offers_the_waitlist() -> None:
    visit, _ = _signed_in(full_slot=True)
    visit.fire("booking")
    visit.choose_event("ev-1")
    full = visit.slots()[1]
    assert full.seats_left == 0
    assert visit.book_slot(full.id) == QR
    assert visit.booked is not None and visit.booked.status == "waitlisted"
    assert "waitlist" in visit.message


def test_cancel_and_reschedule_an_existing_booking() -> None:
    visit, fake = _signed_in()
    visit.fire("booking")
    visit.choose_event("ev-1")
    first, second = visit.slots()
    visit.book(first.id)
    visit.load_bookings()
    (booking,) = visit.bookings
    visit.start_moving(booking.booking_id)
    assert visit.event is not None and visit.moving is not None
    assert visit.book(second.id)
    visit.load_bookings()
    assert [b.slot_id for b in visit.bookings] == [second.id]
    visit.cancel(visit.bookings[0].booking_id)
    assert visit.bookings == [] and "cancelled" in visit.message


def test_nothing_is_booked_or_cancelled_before_the_member_confirms() -> None:
    visit, fake = _signed_in()
    visit.fire("booking")
    visit.load_bookings()
    visit.choose_event("ev-1")
    first, second = visit.slots()
    visit.choose_slot(first.id)
    assert visit.pending_slot() == first and visit.booked is None and fake.booked == []
    visit.keep()  # "Choose another time"
    assert visit.pending is None and fake.booked == []
    visit.choose_slot(second.id)
    visit.back()  # Back from the confirmation shows the times again, still in booking
    assert visit.screen == BOOKING and visit.pending is None and visit.event is not None
    visit.choose_slot("not-a-slot")
    assert visit.pending is None
    visit.choose_slot(second.id)
    assert visit.confirm() == QR and visit.booked is not None
    assert visit.booked.slot_id == second.id
    visit.fire("back")
    visit.fire("booking")
    visit.load_bookings()
    (booking,) = visit.bookings
    visit.choose_cancel(booking.booking_id)
    assert visit.pending_cancel() == booking and visit.holds_member_data()
    visit.keep()  # "No, keep it"
    visit.load_bookings()
    assert [b.booking_id for b in visit.bookings] == [booking.booking_id]
    visit.choose_cancel(booking.booking_id)
    assert visit.confirm() == BOOKING
    assert visit.bookings == [] and "cancelled" in visit.message


def test_a_pending_confirmation_is_wiped_with_the_visit() -> None:
    visit, _ = _signed_in()
    visit.fire("booking")
    visit.load_bookings()
    visit.choose_event("ev-1")
    visit.choose_slot(visit.slots()[0].id)
    assert visit.pending is not None
    visit.end()
    assert visit.screen == ATTRACT and visit.pending is None and not visit.holds_member_data()


def test_offline_booking_sends_a_member_who_has_not_chosen_to_the_referral_screen() -> None:
    visit, fake = _signed_in()
    fake.online = False
    visit.fire("booking")
    visit.load_bookings()
    assert visit.screen == BOOKING and visit.needs_connection
    assert visit.ask_follow_up() == REFERRAL
    assert "Choose how" in visit.message
    assert not [c for c in fake.calls if c[0] == "consent"]  # nothing guessed, nothing queued
    assert visit.consent("email", "afternoon", email="ana@example.org")
    assert fake.emails[-1] == "ana@example.org"
    assert visit.fire("done") == MENU


def test_offline_booking_reuses_the_contact_already_chosen() -> None:
    visit, fake = _signed_in()
    assert visit.consent("text", "evening", phone="555 010 2030")
    fake.online = False
    visit.fire("booking")
    visit.load_bookings()
    assert visit.ask_follow_up() == BOOKING
    assert fake.calls[-1] == ("consent", (True, "text", "evening"))
    assert fake.phones[-1] == "5550102030" and "book a time" in visit.message


@pytest.mark.parametrize("typed", ["", "ana", "ana@", "ana@example", "@example.org",
                                   "ana@@example.org", "ana maria@example.org",
                                   "a" * 65 + "@example.org"])
def test_email_consent_is_refused_with_a_clear_message(typed: str) -> None:
    visit, fake = _signed_in()
    assert not visit.consent("email", "any", email=typed)
    assert "email address" in visit.message
    assert not [c for c in fake.calls if c[0] == "consent"] and visit.contact is None


@pytest.mark.parametrize("typed", ["ana@example.org", "a.b-c_d+e@mail.example.co.uk",
                                   "7001@example.com"])
def test_the_server_pattern_decides_what_is_an_email(typed: str) -> None:
    from shared.schemas.referrals import ConsentRequest

    assert email_problem(typed) is None
    ConsentRequest.model_validate({"idempotency_key": "7f1d6d0e-4f1c-4a8e-9c57-2f8a9d6c1b11",
                                   "member_ref": "ref", "consent": True,
                                   "contact_method": "email", "contact_time": "any",
                                   "email": typed})


def test_an_email_being_typed_shows_only_its_last_key_and_the_domain() -> None:
    assert mask_email("") == ""
    assert mask_email("a") == "a"
    assert mask_email("ana") == "\u2022\u2022a"
    assert mask_email("ana@ex") == "\u2022\u2022\u2022@ex"


def test_end_session_forgets_everything_and_back_cannot_reach_it() -> None:
    visit, _ = _signed_in()
    visit.fire("booking")
    visit.choose_event("ev-1")
    visit.book(visit.slots()[0].id)
    visit.qr_codes()
    first_session = visit.session_id
    assert visit.holds_member_data()
    assert visit.end() == ATTRACT
    assert not visit.holds_member_data() and visit.session_id != first_session
    with pytest.raises(ValueError):
        visit.back()


def test_the_idle_timeout_wipes_the_visit() -> None:
    visit, _ = _signed_in()
    visit.clock = lambda: 10_000.0
    assert visit.tick() is None
    assert visit.screen == ATTRACT and not visit.holds_member_data()


def _phq2_offer(visit: Visit) -> None:
    visit.checkup()
    visit.answer(2)
    visit.answer(2)  # PHQ-2 = 4: positive
    assert visit.screen == OFFER


def test_the_offer_names_the_screener_its_length_and_topic() -> None:
    visit, _ = _signed_in()
    _phq2_offer(visit)
    offer = visit.follow_up_offer()
    assert offer is not None and offer.instrument == "phq9"
    assert offer.questions == 10 and offer.minutes == 2 and offer.topic == "mood"
    assert "PHQ-9" in offer.title
    visit.journey.language = "es"
    spanish = visit.follow_up_offer()
    assert spanish is not None and spanish.topic == "el estado de ánimo"


def test_the_screener_that_raised_the_offer_is_queued_once_the_offer_is_answered() -> None:
    visit, fake = _signed_in()
    _phq2_offer(visit)
    assert fake.submitted == [] and visit.held is not None  # Back may still change it
    assert visit.decline_offer() == QUESTION and visit.journey.instrument == "gad2"
    assert [s["instrument_id"] for s in fake.submitted] == ["phq2"] and visit.held is None


def test_back_from_the_offer_reopens_the_question_and_sends_only_the_new_answer() -> None:
    visit, fake = _signed_in()
    _phq2_offer(visit)
    assert visit.back() == QUESTION and visit.journey.question == "2"
    assert visit.held is None and fake.submitted == []
    visit.answer(0)  # PHQ-2 = 2: negative, no offer
    assert visit.screen == QUESTION and visit.journey.instrument == "gad2"
    (item,) = fake.submitted
    assert item["instrument_id"] == "phq2" and item["answers"] == {"1": 2, "2": 0}


@pytest.mark.parametrize("leave", ["end", "idle"])
def test_leaving_on_the_offer_screen_queues_the_finished_screener_then_wipes(leave: str) -> None:
    visit, fake = _signed_in()
    _phq2_offer(visit)
    if leave == "end":
        assert visit.end() == ATTRACT
    else:
        visit.clock = lambda: 10_000.0
        visit.tick()
    assert visit.screen == ATTRACT and not visit.holds_member_data()
    assert [s["instrument_id"] for s in fake.submitted] == ["phq2"]
    assert fake.submitted[0]["member"] == "ref-E1001"


def test_a_crisis_is_queued_at_once_even_when_a_follow_up_is_offered_after_it() -> None:
    from tests.kiosk.test_flow_offers import _rules_offering_after_a_crisis

    visit, fake = _signed_in()
    visit.journey.rules = _rules_offering_after_a_crisis()
    visit.single("blood_pressure")
    visit.answer(185)
    visit.answer(95)
    assert visit.screen == CRISIS and visit.held is None
    assert fake.submitted[-1]["instrument_id"] == "blood_pressure"
    assert fake.submitted[-1]["crisis"] is True
    visit.close_crisis(confirm=False)
    visit.clock.now += 5
    assert visit.close_crisis(confirm=True) == OFFER
    assert visit.follow_up_offer() is not None and len(fake.submitted) == 1
    assert visit.decline_offer() == RESULTS and len(fake.submitted) == 1


def test_the_privacy_notice_reads_the_sites_retention_from_the_catalog() -> None:
    visit, fake = _visit()
    assert visit.retention_days() == 30  # the catalog's figure, not a number of the kiosk's
    fake._catalog = fake._catalog.model_copy(update={
        "settings": fake._catalog.settings.model_copy(update={"retention_days": None})})
    assert visit.retention_days() is None  # a server that does not say: no number is shown
    fake.paired = False
    assert visit.retention_days() is None
