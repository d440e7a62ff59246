"""The flat names the screens' reading code, the spoken words and the tests know a visit by.

Each is the per-area model's own typed method or value (``visit.answer`` is
``visit.questions.answer``), so callers written against the one-class ``Visit`` keep working
while new code names the area (every button does: ``app.do(app.visit.booking.confirm)``,
never a name in a string). ``_Via`` keeps each method's signature for the type checker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast, overload

from shared.schemas.bookings import BookingOut
from shared.schemas.catalog import CatalogEvent
from shared.schemas.members import AdvocateLinkResponse

from ..backend import Identity
from .booking import Booking
from .qr import QrCodes
from .questions import Questions
from .referral import Referral
from .results import Results
from .signin import SignIn

P = ParamSpec("P")
R = TypeVar("R")
AREAS = ("signin", "questions", "results", "referral", "booking", "qr")


class _Via(Generic[P, R]):
    """A Visit method that is an area model's method: ``_Via("booking", Booking.confirm)``."""

    def __init__(self, area: str, method: Callable[Concatenate[Any, P], R]) -> None:
        assert area in AREAS, area
        self.area = area
        self.method = method

    @overload
    def __get__(self, visit: None, owner: type) -> _Via[P, R]: ...

    @overload
    def __get__(self, visit: object, owner: type) -> Callable[P, R]: ...

    def __get__(self, visit: object, owner: type) -> Any:
        if visit is None:
            return self
        # The area model's own bound method: the same object a screen binding it directly gets.
        return cast(Callable[P, R], getattr(getattr(visit, self.area), self.method.__name__))


class FlatNames:
    """The one-class Visit's names, each answered by the area that owns it."""

    signin: SignIn
    questions: Questions
    results: Results
    referral: Referral
    booking: Booking
    qr: QrCodes

    # sign-in
    identify = _Via("signin", SignIn.identify)
    claim_contact = _Via("signin", SignIn.claim_contact)
    anonymous = _Via("signin", SignIn.anonymous)
    # screeners and follow-ups
    checkup = _Via("questions", Questions.checkup)
    single = _Via("questions", Questions.single)
    answer = _Via("questions", Questions.answer)
    answer_from_device = _Via("questions", Questions.answer_from_device)
    skip = _Via("questions", Questions.skip)
    follow_up_offer = _Via("questions", Questions.follow_up_offer)
    accept_offer = _Via("questions", Questions.accept_offer)
    decline_offer = _Via("questions", Questions.decline_offer)
    question_text = _Via("questions", Questions.question_text)
    preamble = _Via("questions", Questions.preamble)
    instrument_title = _Via("questions", Questions.instrument_title)
    options = _Via("questions", Questions.options)
    # results and crisis
    findings = _Via("results", Results.findings)
    crisis_summary = _Via("results", Results.crisis_summary)
    crisis_reminder = _Via("results", Results.crisis_reminder)
    next_step_words = _Via("results", Results.next_step_words)
    results_legend = _Via("results", Results.results_legend)
    staff_told = _Via("results", Results.staff_told)
    notices = _Via("results", Results.notices)
    crisis = _Via("results", Results.crisis)
    local_crisis_resources = _Via("results", Results.local_crisis_resources)
    close_crisis = _Via("results", Results.close_crisis)
    after_results = _Via("results", Results.after_results)
    # referral
    consent = _Via("referral", Referral.consent)
    decline_contact = _Via("referral", Referral.decline_contact)
    stop_contact = _Via("referral", Referral.stop_contact)
    ask_follow_up = _Via("referral", Referral.ask_follow_up)
    # booking
    events = _Via("booking", Booking.events)
    slots = _Via("booking", Booking.slots)
    event_title = _Via("booking", Booking.event_title)
    event_description = _Via("booking", Booking.event_description)
    when = _Via("booking", Booking.when)
    when_where = _Via("booking", Booking.when_where)
    booking_event = _Via("booking", Booking.booking_event)
    booking_summary = _Via("booking", Booking.booking_summary)
    choose_event = _Via("booking", Booking.choose_event)
    load_bookings = _Via("booking", Booking.load_bookings)
    choose_slot = _Via("booking", Booking.choose_slot)
    choose_cancel = _Via("booking", Booking.choose_cancel)
    pending_slot = _Via("booking", Booking.pending_slot)
    pending_cancel = _Via("booking", Booking.pending_cancel)
    confirm = _Via("booking", Booking.confirm)
    keep = _Via("booking", Booking.keep)
    book = _Via("booking", Booking.book)
    book_slot = _Via("booking", Booking.book_slot)
    cancel = _Via("booking", Booking.cancel)
    start_moving = _Via("booking", Booking.start_moving)
    # QR codes
    qr_codes = _Via("qr", QrCodes.qr_codes)

    # What each area holds, read by the screens and the tests under the old names.
    @property
    def identity(self) -> Identity | None:
        """The member's identity (sign-in)."""
        return self.signin.identity

    @property
    def signed_in_name(self) -> str | None:
        """The first name the server matched (sign-in)."""
        return self.signin.signed_in_name

    @property
    def offline_claim(self) -> bool:
        """True while the sign-in waits for the server (sign-in)."""
        return self.signin.offline_claim

    @property
    def identified(self) -> bool:
        """True when the member signed in (sign-in)."""
        return self.signin.identified

    @property
    def online_identity(self) -> Identity | None:
        """The identity the server matched (sign-in)."""
        return self.signin.online_identity

    @property
    def claim_contact_given(self) -> bool:
        """An offline sign-in's phone or email was given (sign-in)."""
        return self.signin.claim_contact_given

    @property
    def submitted(self) -> list[str]:
        """The screeners queued for the server (questions)."""
        return self.questions.submitted

    @property
    def held(self) -> tuple[dict[str, Any], bool] | None:
        """A finished screener the offer screen's Back can reopen (questions)."""
        return self.questions.held

    @property
    def consented(self) -> bool | None:
        """Whether the member agreed to be contacted (referral)."""
        return self.referral.consented

    @property
    def contact(self) -> tuple[str, str] | None:
        """The channel and time of day chosen (referral)."""
        return self.referral.contact

    @property
    def bookings(self) -> list[BookingOut]:
        """The member's bookings (booking)."""
        return self.booking.bookings

    @property
    def booked(self) -> BookingOut | None:
        """The booking just made (booking)."""
        return self.booking.booked

    @property
    def event(self) -> CatalogEvent | None:
        """The event whose slots show (booking)."""
        return self.booking.event

    @property
    def moving(self) -> BookingOut | None:
        """The booking being rescheduled (booking)."""
        return self.booking.moving

    @property
    def pending(self) -> tuple[str, str] | None:
        """A booking or cancellation waiting for the member's yes (booking)."""
        return self.booking.pending

    @property
    def site_timezone(self) -> str:
        """The site's time zone (booking)."""
        return self.booking.site_timezone

    @property
    def advocate(self) -> AdvocateLinkResponse | None:
        """The advocate link fetched this visit (QR codes)."""
        return self.qr.advocate
