"""The journey's plain moves: the buttons that only take the member to the next screen.

One typed method per event of ``kiosk.flow``'s table that a button fires with nothing else to
record, so a kv file binds ``app.do(app.visit.go.start)`` instead of an event's name: a tool
can follow it, and a misspelt move fails at once, not on the tap. Moves that record something
(an answer, a consent, a booking) belong to their area's model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import VisitCore


class Moves:
    """Screen-to-screen moves that carry nothing but the tap (``visit.go``)."""

    def __init__(self, visit: VisitCore) -> None:
        self.visit = visit

    def start(self) -> str:
        """The attract screen's Start: the privacy notice."""
        return self.visit.fire("start")

    def accept_privacy(self) -> str:
        """"I have read this and agree": signing in comes next."""
        return self.visit.fire("accept")

    def to_booking(self) -> str:
        """The menu's booking (identified members only)."""
        return self.visit.fire("booking")

    def to_advocate(self) -> str:
        """The menu's advocate link and contact card (identified members only)."""
        return self.visit.fire("advocate")

    def finish(self) -> str:
        """The menu's "I am finished": the thank-you screen."""
        return self.visit.fire("finish")

    def done(self) -> str:
        """Done with the referral (back to the menu) or the QR codes (the thank-you)."""
        return self.visit.fire("done")
