"""The referral: the member's consent to be contacted by their advocate, how and when."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.i18n import N_

from ..backend import Refused
from .words import CONTACT_METHODS, CONTACT_TIMES, email_problem

if TYPE_CHECKING:
    from .base import VisitCore


class Referral:
    """Whether the member agreed to be contacted, by which channel, at which time of day."""

    def __init__(self, visit: VisitCore) -> None:
        self.visit = visit
        self.consented: bool | None = None
        self.contact: tuple[str, str] | None = None  # (channel, time of day) chosen
        self.contact_details: dict[str, str] = {}  # the number or address typed for it

    def holds_member_data(self) -> bool:
        """Tell whether a consent or a contact choice of the member is held."""
        return self.consented is not None or self.contact is not None

    def consent(self, method: str, contact_time: str, phone: str | None = None,
                email: str | None = None) -> bool:
        """Agree to be contacted by the advocate, by this channel at this time of day.

        A call or a text needs a phone number, an email an address: the kiosk cannot see what
        is on file, so it asks (the server refuses a consent with nothing to reach them by).
        """
        visit = self.visit
        if visit.identity is None:
            return False
        if method not in CONTACT_METHODS or contact_time not in CONTACT_TIMES:
            visit.say(N_("Please choose how and when we may contact you."))
            return False
        if method in ("phone", "text"):
            digits = "".join(ch for ch in phone or "" if ch.isdigit())
            if not 7 <= len(digits) <= 15:
                visit.say(N_("Please type your phone number, with its area code."))
                return False
            phone, email = digits, None
        else:
            email = (email or "").strip()
            problem = email_problem(email)
            if problem is not None:
                visit.say(problem)
                return False
            phone = None
        try:
            visit.backend.consent(visit.identity, consent=True, contact_method=method,
                                  contact_time=contact_time, phone=phone, email=email)
        except Refused as exc:
            visit.say(N_("That did not work: {reason}"), reason=exc.reason)
            return False
        self.contact = (method, contact_time)
        self.contact_details = {"phone": phone} if phone else {"email": email} if email else {}
        self.consented = True
        visit.say(N_("Thank you. Your advocate will contact you."))
        return True

    def decline_contact(self) -> str:
        """"No thanks": the advocate will not contact the member about this; on to the menu."""
        self.stop_contact()
        if self.consented is False:
            return self.visit.keep_message("done")  # the menu says what was recorded
        return self.visit.screen

    def stop_contact(self) -> None:
        """"Stop contacting me": withdraw consent."""
        visit = self.visit
        if visit.identity is None:
            return
        try:
            visit.backend.consent(visit.identity, consent=False)
        except Refused as exc:
            visit.say(N_("That did not work: {reason}"), reason=exc.reason)
            return
        self.consented = False
        visit.say(N_("We will not contact you about this."))

    def ask_follow_up(self) -> str:
        """Offline booking: ask the advocate to follow up instead (the consent is queued).

        The channel and time the member chose on the referral screen are used. A member who
        has not chosen goes to the referral screen to choose (and type the number or address):
        guessing "email to the address on file" fails at the server when there is none.
        """
        visit = self.visit
        if visit.identity is None:
            return visit.screen
        if self.contact is None:
            screen = visit.fire("follow_up")
            visit.say(N_("Choose how your advocate may contact you to book a time."))
            return screen
        method, when = self.contact
        try:
            visit.backend.consent(visit.identity, consent=True, contact_method=method,
                                  contact_time=when, **self.contact_details)
        except Refused as exc:
            visit.say(N_("That did not work: {reason}"), reason=exc.reason)
            return visit.screen
        self.consented = True
        visit.say(N_("Your advocate will contact you to book a time."))
        return visit.screen
