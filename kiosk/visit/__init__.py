"""One member's visit, in plain Python: the journey plus what it asks of the backend.

``kiosk.flow.Journey`` decides which screen comes next; ``Visit`` adds the few things a screen
needs from the world around it (identify, queue items as each screener finishes, consent,
bookings, the advocate link) and the words for what happened (``message``, an English
gettext msgid the screen translates). The Kivy screens call only this; tests drive it with a
fake backend and no window. ``end`` and the timers wipe everything of the member here too.

A thin ``Visit`` (core.py) holds one model per area: ``signin`` (signin.py), ``questions``
(questions.py), ``results`` (results.py), ``referral`` (referral.py), ``booking``
(booking.py) and ``qr`` (qr.py), and ``go`` (moves.py) the moves that only change the screen;
every button calls one of their typed methods (``app.do(app.visit.go.start)``). words.py has
the words and checks they share. The names below are re-exported so callers keep importing
them from ``kiosk.visit``.
"""

from __future__ import annotations

from .booking import Booking
from .core import Visit
from .moves import Moves
from .qr import QrCodes
from .questions import Questions
from .referral import Referral
from .results import Results
from .signin import SignIn
from .words import (
    CONTACT_METHODS,
    CONTACT_TIMES,
    EMAIL_MAX,
    SINGLE_SCREENERS,
    CrisisSummary,
    Finding,
    FollowUpOffer,
    QrCode,
    _question_hints,
    email_problem,
    mask_email,
    parse_birth_date,
    question_unit,
)

__all__ = [
    "CONTACT_METHODS", "CONTACT_TIMES", "EMAIL_MAX", "SINGLE_SCREENERS", "Booking",
    "CrisisSummary", "Finding", "FollowUpOffer", "Moves", "QrCode", "QrCodes", "Questions",
    "Referral", "Results", "SignIn", "Visit", "_question_hints", "email_problem", "mask_email",
    "parse_birth_date", "question_unit",
]
