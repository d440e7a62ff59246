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
``__init__`` does, so callers keep importing them from ``kiosk.ui.screens``.
"""

from __future__ import annotations

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

__all__ = [
    "ADMIN_TAPS", "ADMIN_TAP_WINDOW", "DOB_DIGITS", "EMAIL_KEYS", "FEET", "FEET_INCHES_QUESTION",
    "ID_CHARS", "ID_DIGIT_KEYS", "ID_LETTER_KEYS", "ID_MAX", "AdminPinScreen", "AdminScreen",
    "AttractScreen", "BookingScreen", "ContactPads", "CrisisScreen", "DoneScreen",
    "IdentifyScreen", "MenuScreen", "OfferScreen", "PrivacyScreen", "QrScreen",
    "QuestionScreen", "ReferralScreen", "ResultsScreen", "SetupScreen",
]
