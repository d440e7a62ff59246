"""The journey's screens and its transition table: ``(screen, event) -> screen``.

In the spirit of h11's ``_state.py``: which screen comes next is this one table, and
``journey.Journey.fire`` applies it (with the guards named here).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Screens, in the order a full identified visit meets them.
ATTRACT, PRIVACY, IDENTIFY, MENU, QUESTION, RESULTS = (
    "attract", "privacy", "identify", "menu", "question", "results")
CRISIS, REFERRAL, BOOKING, QR, DONE = "crisis", "referral", "booking", "qr", "done"
OFFER = "offer"
SCREENS = (ATTRACT, PRIVACY, IDENTIFY, MENU, QUESTION, OFFER, RESULTS, CRISIS, REFERRAL,
           BOOKING, QR, DONE)

# (screen, event) -> next screen. Events not listed for a screen are refused (FlowError),
# except the ones every screen takes: see ANYWHERE.
TABLE: Mapping[tuple[str, str], str] = MappingProxyType({
    (ATTRACT, "start"): PRIVACY,
    (PRIVACY, "accept"): IDENTIFY,
    (PRIVACY, "back"): ATTRACT,
    (IDENTIFY, "identified"): MENU,
    (IDENTIFY, "anonymous"): MENU,
    (IDENTIFY, "back"): PRIVACY,
    (MENU, "checkup"): QUESTION,
    (MENU, "single"): QUESTION,
    (MENU, "booking"): BOOKING,
    (MENU, "advocate"): QR,
    (QUESTION, "back"): MENU,  # Back on the first question of a screener
    (QUESTION, "finished"): RESULTS,
    (QUESTION, "crisis"): CRISIS,
    (QUESTION, "offer"): OFFER,  # triage offers a follow-up screener
    (OFFER, "accept"): QUESTION,  # the follow-up is next in the plan
    (OFFER, "decline"): QUESTION,  # declined: the plan goes on
    (OFFER, "finished"): RESULTS,  # declined, and nothing left to answer
    (OFFER, "back"): QUESTION,  # the last question of the screener that raised the offer
    (CRISIS, "closed"): RESULTS,
    (CRISIS, "resume"): QUESTION,  # closed with screeners still to answer
    (CRISIS, "offer"): OFFER,  # closed with a follow-up waiting to be offered
    (RESULTS, "continue"): REFERRAL,  # anonymous members go to the menu instead
    (RESULTS, "menu"): MENU,
    (REFERRAL, "done"): MENU,
    (BOOKING, "booked"): QR,
    (BOOKING, "back"): MENU,
    (BOOKING, "follow_up"): REFERRAL,  # offline: choose how the advocate may reach you
    (QR, "done"): DONE,
    (QR, "back"): MENU,
    (MENU, "finish"): DONE,
    (DONE, "timeout"): ATTRACT,
})
# Events every screen takes: they end the visit (the crisis screen excepted, see end()).
ANYWHERE = frozenset({"end", "idle_timeout", "cap_timeout"})
# What anonymous members cannot reach (no referral, booking or advocate link).
IDENTIFIED_ONLY = frozenset({REFERRAL, BOOKING, QR})


class FlowError(ValueError):
    """An event the current screen does not take."""
