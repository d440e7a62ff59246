"""The journey's screens: thin views over ``kiosk.visit.Visit``; layout lives in ``kv/``.

Each screen reads what to show from the visit in ``refresh`` and calls the app for every
action (``app.do(self.visit.<area>.<method>, ...)``), which moves the visit and then shows
whatever screen it is on.
Widgets that depend on the member's answers (answer buttons, results, QR codes) are built
here; everything fixed is in the screen's kv file with its text bound to ``tr``.

One module per part of the visit: ``entry`` (attract, privacy, sign-in), ``contact`` (the
menu, the referral and their phone and email pads), ``questions`` (a question, a follow-up's
offer), ``results`` (results, crisis, thank-you), ``booking`` (booking, QR codes) and
``admin`` (pairing, the PIN, the sync status). The names below are re-exported, as h11's
``__init__`` does, so callers keep importing them from ``kiosk.ui.screens``; each module is
imported when one of its names is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .admin import AdminPinScreen, AdminScreen, SetupScreen
    from .booking import BookingScreen, QrScreen
    from .contact import EMAIL_KEYS, ContactPads, MenuScreen, ReferralScreen
    from .entry import (
        ADMIN_TAP_WINDOW,
        ADMIN_TAPS,
        DOB_DIGITS,
        ID_CHARS,
        ID_DIGIT_KEYS,
        ID_LETTER_KEYS,
        ID_MAX,
        AttractScreen,
        IdentifyScreen,
        PrivacyScreen,
    )
    from .questions import FEET, FEET_INCHES_QUESTION, OfferScreen, QuestionScreen
    from .results import CrisisScreen, DoneScreen, ResultsScreen

# Each name's module, imported on first use (PEP 562): the attract screen draws the kiosk's
# first frame with entry.py alone, and the other modules (and the visit's pydantic schemas
# some of them import) load after it (kiosk/ui/app.py).
MODULES = {
    "AdminPinScreen": "admin", "AdminScreen": "admin", "SetupScreen": "admin",
    "BookingScreen": "booking", "QrScreen": "booking",
    "EMAIL_KEYS": "contact", "ContactPads": "contact", "MenuScreen": "contact",
    "ReferralScreen": "contact",
    "ADMIN_TAP_WINDOW": "entry", "ADMIN_TAPS": "entry", "DOB_DIGITS": "entry",
    "ID_CHARS": "entry", "ID_DIGIT_KEYS": "entry", "ID_LETTER_KEYS": "entry", "ID_MAX": "entry",
    "AttractScreen": "entry", "IdentifyScreen": "entry", "PrivacyScreen": "entry",
    "FEET": "questions", "FEET_INCHES_QUESTION": "questions", "OfferScreen": "questions",
    "QuestionScreen": "questions",
    "CrisisScreen": "results", "DoneScreen": "results", "ResultsScreen": "results",
}


def __getattr__(name: str) -> Any:
    """Import a re-exported name's module when the name is first asked for."""
    module = MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


def load_all() -> None:
    """Import every screen module now (after the first frame: the first tap need not wait)."""
    for module in sorted(set(MODULES.values())):
        import_module(f"{__name__}.{module}")


__all__ = [
    "ADMIN_TAPS", "ADMIN_TAP_WINDOW", "DOB_DIGITS", "EMAIL_KEYS", "FEET", "FEET_INCHES_QUESTION",
    "ID_CHARS", "ID_DIGIT_KEYS", "ID_LETTER_KEYS", "ID_MAX", "AdminPinScreen", "AdminScreen",
    "AttractScreen", "BookingScreen", "ContactPads", "CrisisScreen", "DoneScreen",
    "IdentifyScreen", "MenuScreen", "OfferScreen", "PrivacyScreen", "QrScreen",
    "QuestionScreen", "ReferralScreen", "ResultsScreen", "SetupScreen",
]
