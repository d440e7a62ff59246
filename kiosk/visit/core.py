"""The visit itself: the journey, the backend, the line on screen, and the per-area models.

``Visit`` is thin: it holds what every area shares (the journey, the backend, the clock, the
message) and one model per area, each with typed methods a screen binds to directly:
``visit.signin``, ``visit.questions``, ``visit.results``, ``visit.referral``,
``visit.booking`` and ``visit.qr``; ``visit.go`` has the moves that only change the screen
(``Moves``, moves.py). Ending the visit builds them all afresh, so nothing of a
member outlives it. The one-class names (``visit.answer``...) stay, in ``compat.FlatNames``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from shared.schemas.catalog import CatalogResponse

from ..backend import Backend
from ..flow import ATTRACT, Journey, Timeouts
from .booking import Booking
from .compat import FlatNames
from .moves import Moves
from .qr import QrCodes
from .questions import Questions
from .referral import Referral
from .results import Results
from .signin import SignIn


class Visit(FlatNames):
    """The journey of the member at the screen, and the backend it talks to."""

    def __init__(self, backend: Backend, *, clock: Callable[[], float] = time.monotonic,
                 timeouts: Timeouts | None = None, language: str = "en") -> None:
        self.backend = backend
        self.clock = clock
        self.journey = Journey(timeouts=timeouts or Timeouts(), language=language)
        self._forget()

    def _forget(self) -> None:
        """Start afresh: a new session id, no message, and every area model new and empty."""
        self.session_id = str(uuid.uuid4())
        self.message = ""
        self.message_args: dict[str, str] = {}
        self.needs_connection = False
        # Read-aloud, switched on by the speaker button for this visit only (issue 19).
        self.read_aloud = False
        self.signin = SignIn(self)
        self.questions = Questions(self)
        self.results = Results(self)
        self.referral = Referral(self)
        self.booking = Booking(self)
        self.qr = QrCodes(self)
        self.go = Moves(self)  # holds nothing of the member; built afresh with the rest

    @property
    def screen(self) -> str:
        """The screen the journey is on."""
        return self.journey.screen

    @property
    def language(self) -> str:
        """The language of this visit."""
        return self.journey.language

    def say(self, message: str, **args: str) -> None:
        """Set the line the screen shows (an English msgid, translated by the screen)."""
        self.message = message
        self.message_args = dict(args)

    def touch(self) -> None:
        """A tap anywhere restarts the idle timer."""
        self.journey.touch(self.clock())

    def fire(self, event: str) -> str:
        """Apply a journey event; ending events wipe the visit."""
        self.say("")
        screen = self.journey.fire(event, self.clock())
        if screen == ATTRACT:
            self._wiped()
        return screen

    def keep_message(self, event: str) -> str:
        """Apply a journey event, keeping the line on screen (it says what was recorded)."""
        message, args = self.message, self.message_args
        screen = self.fire(event)
        self.say(message, **args)
        return screen

    def end(self) -> str:
        """"End session": wipe everything (the crisis screen stays until closed)."""
        screen = self.journey.end(self.clock())
        if screen == ATTRACT:
            self._wiped()
        return screen

    def tick(self) -> str | None:
        """Check the timers; "countdown" while the warning shows; wipes when one ran out."""
        was = self.journey.screen
        state = self.journey.tick(self.clock())
        if was != ATTRACT and self.journey.screen == ATTRACT:
            self._wiped()
        return state

    def _wiped(self) -> None:
        """The journey forgot the member: queue a screener still held, then forget here too."""
        # The member finished it: leaving on the offer screen must not lose it.
        self.questions.send_held()
        self._forget()

    def back(self) -> str:
        """Back: one question, or the screen's own Back (from the offer: the last question)."""
        if self.booking.pending is not None:  # Back from the confirmation: the list again
            return self.booking.back_to_list()
        self.booking.moving = None
        return self.questions.back()

    def holds_member_data(self) -> bool:
        """Tell whether anything of a member is still held."""
        return self.journey.holds_member_data() or any(
            area.holds_member_data() for area in (self.signin, self.questions, self.referral,
                                                  self.booking, self.qr))

    def catalog(self) -> CatalogResponse | None:
        """The cached catalog, or None before pairing."""
        return self.backend.catalog()

    def retention_days(self) -> int | None:
        """How many days the site keeps answers after the advocate has them (None: unknown,
        before pairing or from a server that does not say; the notice then names no number)."""
        catalog = self.catalog()
        return catalog.settings.retention_days if catalog is not None else None
