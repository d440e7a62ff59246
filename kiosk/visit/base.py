"""What every per-area model may use of the visit it belongs to (``core.Visit`` has it all).

A protocol, so the area modules need not import the ``Visit`` that builds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from shared.schemas.bookings import BookingOut
from shared.schemas.catalog import CatalogResponse

from ..backend import Backend, Identity
from ..flow import Journey


class QueuesFinished(Protocol):
    """The questions model as the results model uses it."""

    def queue_finished(self) -> None:
        """Queue the screeners just finished."""


class HoldsBooked(Protocol):
    """The booking model as the QR model uses it."""

    booked: BookingOut | None


class VisitCore(Protocol):
    """The shared state of one visit and the moves every area makes on it."""

    backend: Backend
    clock: Callable[[], float]
    journey: Journey
    session_id: str
    message: str
    needs_connection: bool

    @property
    def screen(self) -> str:
        """The screen the journey is on."""

    @property
    def language(self) -> str:
        """The language of this visit."""

    @property
    def identity(self) -> Identity | None:
        """The member's identity, when signed in."""

    @property
    def online_identity(self) -> Identity | None:
        """The identity when the server matched it."""

    @property
    def questions(self) -> QueuesFinished:
        """The screeners of this visit."""

    @property
    def booking(self) -> HoldsBooked:
        """The bookings of this visit."""

    def say(self, message: str, **args: str) -> None:
        """Set the line the screen shows."""

    def touch(self) -> None:
        """Restart the idle timer."""

    def fire(self, event: str) -> str:
        """Apply a journey event."""

    def keep_message(self, event: str) -> str:
        """Apply a journey event, keeping the line on screen."""

    def catalog(self) -> CatalogResponse | None:
        """The cached catalog."""
