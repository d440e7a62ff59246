"""What the kiosk's screens may ask of the world: one interface, two sides of the house.

The screens (``kiosk/ui``) call only this ``Backend``; ``kiosk/service.py`` implements it
over the outbox, the sync worker and the API client, and tests hand in a fake. Every
method returns at once: anything that needs the network either answers from what is cached
or raises ``Offline`` so the screen can say so, and nothing here is called on the UI thread
for longer than a local SQLite write.

Member data passed in here is the current visit's; the backend keeps it only inside the
encrypted outbox (never in memory beyond the call) so a wipe of the ``Journey`` leaves
nothing behind on the screen side.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # pydantic and the schemas cost ~0.1 s: not on the kiosk's start path
    from shared.schemas.bookings import BookingOut
    from shared.schemas.catalog import CatalogResponse
    from shared.schemas.members import AdvocateLinkResponse


class Offline(Exception):
    """The server cannot be reached now; the screen should say so and offer what works offline."""


class Refused(Exception):
    """The server answered but refused (a full slot, an unknown member): ``reason`` says why."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class Identity:
    """Who the member is for this visit.

    ``member_ref`` when the server matched them online; ``pending`` when the kiosk was
    offline and the typed id and birth date wait (encrypted, in the outbox only) for the
    server to match them when the items arrive. ``pending`` holds an opaque handle, never
    the typed id itself.
    """

    member_ref: str | None = None
    first_name: str | None = None
    language: str | None = None
    pending: str | None = None

    @property
    def online(self) -> bool:
        """True when the server matched the member and returned a reference."""
        return self.member_ref is not None


@dataclass(frozen=True)
class SyncStatus:
    """What the admin screen shows about the connection and the backlog."""

    paired: bool
    online: bool
    outbox_depth: int
    sent_since_backlog: int = 0  # for the drain's progress bar
    backlog_at_start: int = 0
    last_sync_at: str | None = None  # ISO 8601, UTC
    last_errors: Sequence[str] = field(default_factory=tuple)
    # Set when the server refuses this app version (426): the version it needs at least.
    update_required: str | None = None
    app_version: str = ""


class Backend(Protocol):
    """Everything the screens need, answered without blocking the UI thread."""

    def catalog(self) -> CatalogResponse | None:
        """The cached catalog (instruments, events, settings), or None when never paired."""

    def identify(self, employee_id: str, birth_date: str) -> Identity:
        """Match a member online, or hold the typed id for a match on arrival when offline.

        Raises ``Refused`` when the server answers that nobody matches (online only).
        """

    def submit(self, identity: Identity | None, items: Sequence[Mapping[str, Any]],
               *, crisis: bool) -> None:
        """Queue a visit's scored items in the outbox, crisis first; never raises Offline."""

    def crisis_alert(self, trigger: Literal["phq9_item9", "hypertensive_crisis"]) -> None:
        """Queue an anonymous crisis alert for onsite staff, ahead of everything else."""

    def consent(self, identity: Identity, *, consent: bool, contact_method: str | None = None,
                contact_time: str | None = None, phone: str | None = None,
                email: str | None = None) -> None:
        """Queue the member's referral consent (or its withdrawal) beside their items.

        Raises ``Refused`` naming the field when the server would refuse it (consent needs
        ``contact_method`` and ``contact_time``; an anonymous visit has nothing to consent to).
        """

    def claim_contact(self, identity: Identity, *, phone: str | None = None,
                      email: str | None = None) -> Identity:
        """Seal a phone number or email with an offline sign-in; return the identity to use.

        It travels with the typed id to the server, which shows it to staff when the id does
        not match anyone, so the member can still be reached.
        """

    def advocate_link(self, identity: Identity) -> AdvocateLinkResponse:
        """The member's advocate and the link and vCard QR contents; raises Offline."""

    def bookings(self, identity: Identity) -> list[BookingOut]:
        """The member's current bookings; raises Offline."""

    def book(self, identity: Identity, slot_id: str) -> BookingOut:
        """Book a seat (or join the waitlist when full); raises Offline or Refused."""

    def cancel(self, identity: Identity, booking_id: str) -> BookingOut:
        """Cancel one of the member's bookings; raises Offline or Refused."""

    def reschedule(self, identity: Identity, booking_id: str, slot_id: str) -> BookingOut:
        """Move a booking to another slot; raises Offline or Refused."""

    def status(self) -> SyncStatus:
        """The connection and outbox state for the admin screen."""

    def sync_now(self) -> None:
        """Ask the sync worker to try at once (returns immediately)."""

    def pair(self, server_url: str, pairing_code: str) -> None:
        """Pair with a server (blocking; admin screen only); raises Offline or Refused."""


class DeferredBackend:
    """How to build the kiosk's ``Backend`` after its first frame, and what shows before it.

    Building the real backend imports pydantic and the shared schemas and opens the outbox:
    a fifth of a cold start that the attract screen does not need. Until the app builds it
    (kiosk/ui/app.py: after the first frame, or at once for a tap that comes sooner), this
    answers only what the attract screen shows and whether the kiosk looks set up, from the
    files the real backend reads (``CatalogCache``'s JSON, the pairing file), without pydantic.
    """

    def __init__(self, build: Callable[[], Backend], *, catalog_path: Path | None = None,
                 pairing_path: Path | None = None) -> None:
        self._build = build
        self.catalog_path = catalog_path
        self.pairing_path = pairing_path
        self.built: Backend | None = None

    def build(self) -> Backend:
        """Build the backend (once) and return it."""
        if self.built is None:
            self.built = self._build()
        return self.built

    def branding(self) -> str:
        """The site's name from the cached catalog as stored, or "" when there is none to read.

        What the validated catalog says replaces it once the backend is built; a catalog that
        does not validate fails then, as it did at start before.
        """
        if self.catalog_path is None:
            return ""
        try:
            stored = json.loads(self.catalog_path.read_text(encoding="utf-8"))
            name = stored["body"]["settings"]["branding"]["name"]
        except (OSError, ValueError, KeyError, TypeError):
            return ""  # none cached, or torn: the backend will say what it holds
        return name if isinstance(name, str) else ""

    def looks_paired(self) -> bool:
        """Whether a pairing is stored (the backend, once built, says whether it is valid)."""
        return self.pairing_path is not None and self.pairing_path.is_file()
