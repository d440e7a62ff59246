"""Signing in: the member's id and birth date, or no sign-in, and an offline claim's contact."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.i18n import N_

from ..backend import Identity, Offline, Refused
from .words import email_problem, parse_birth_date

if TYPE_CHECKING:
    from .base import VisitCore


class SignIn:
    """Who the member is this visit: signed in online, waiting for the server, or anonymous."""

    def __init__(self, visit: VisitCore) -> None:
        self.visit = visit
        self.identity: Identity | None = None
        self.claim_contact_given = False  # an offline sign-in's phone or email, for staff

    def holds_member_data(self) -> bool:
        """Tell whether the member's identity is held."""
        return self.identity is not None

    def identify(self, typed_id: str, typed_birth_date: str) -> bool:
        """Sign the member in; False (with a message) when that did not work."""
        visit = self.visit
        typed_id = typed_id.strip()
        if not typed_id:
            visit.say(N_("Please type your employee or badge number."))
            return False
        born = parse_birth_date(typed_birth_date)
        if born is None:
            visit.say(N_("Please type your date of birth as 8 numbers: month, day, year."))
            return False
        try:
            identity = visit.backend.identify(typed_id, born)
        except Refused:
            visit.say(N_("We could not find you with that number and date of birth. "
                      "Please check them, or continue without signing in."))
            return False
        except Offline:
            visit.say(N_("We cannot check your number right now. "
                      "You can continue without signing in."))
            return False
        self.identity = identity
        visit.journey.identify(identity.member_ref or identity.pending or "pending",
                               visit.clock())
        visit.say("")  # an earlier try's "We could not find you" is over
        if not identity.online:
            # Honest: nothing is checked yet, and a miss would file the answers without a name.
            visit.say(N_("This kiosk is offline, so we could not check your number and date of "
                      "birth yet. We will check them when it is back online. If they do not "
                      "match, your results cannot reach your advocate: leave a phone number or "
                      "email so staff can reach you."))
        return True

    @property
    def signed_in_name(self) -> str | None:
        """The first name the server matched, for "Signed in as Ana" (None offline or anonymous)."""
        if self.identity is None or not self.identity.online:
            return None
        return self.identity.first_name or None

    @property
    def offline_claim(self) -> bool:
        """True while the member's sign-in waits for the server to check it."""
        return self.identity is not None and self.identity.pending is not None

    def claim_contact(self, phone: str | None = None, email: str | None = None) -> bool:
        """Add a phone number or email to an offline sign-in, for staff should it not match."""
        if self.identity is None or self.identity.pending is None:
            return False
        if phone is not None:
            digits = "".join(ch for ch in phone if ch.isdigit())
            if not 7 <= len(digits) <= 15:
                self.visit.say(N_("Please type your phone number, with its area code."))
                return False
            contact: dict[str, str] = {"phone": digits}
        else:
            typed = (email or "").strip()
            problem = email_problem(typed)
            if problem is not None:
                self.visit.say(problem)
                return False
            contact = {"email": typed}
        self.identity = self.visit.backend.claim_contact(self.identity, **contact)
        self.claim_contact_given = True
        self.visit.say(N_("Thank you. If your details do not match, staff will use this to "
                          "reach you."))
        return True

    def anonymous(self) -> str:
        """Continue without signing in."""
        self.identity = None
        return self.visit.journey.go_anonymous(self.visit.clock())

    @property
    def identified(self) -> bool:
        """True when the member signed in (online or waiting for the connection)."""
        return self.identity is not None

    @property
    def online_identity(self) -> Identity | None:
        """The identity when the server matched it (booking and the advocate link need it)."""
        return self.identity if self.identity is not None and self.identity.online else None
