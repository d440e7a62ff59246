"""A fake Backend for the screens: a catalog, a roster of one, bookings, a switchable network.

It records every call so tests can check what the screens asked for (and that a crisis was
queued before its screen showed). ``online = False`` makes it answer as the real service does
offline: identify holds the typed id (``pending``), bookings and the advocate link raise
``Offline``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kiosk.backend import Identity, Offline, Refused, SyncStatus
from shared.assessments import available_versions, load_definition
from shared.qr import vcard
from shared.schemas.bookings import BookingOut
from shared.schemas.catalog import CatalogResponse
from shared.schemas.members import AdvocateLinkResponse
from shared.triage import CRISIS_TRIGGERS, crisis_guidance

MEMBER = ("E1001", "1985-03-14")
LINK_URL = "http://127.0.0.1:8701/connect/fake-token-for-E1001"


def fake_catalog(*, full_slot: bool = False) -> CatalogResponse:
    """A catalog with every instrument, one event with two slots (one full when asked)."""
    start = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    slots = []
    for i, seats in enumerate((4, 0 if full_slot else 2)):
        begin = start + timedelta(minutes=30 * i)
        slots.append({"id": str(uuid.UUID(int=i + 1)), "start_at": begin.isoformat(),
                      "end_at": (begin + timedelta(minutes=30)).isoformat(),
                      "start_local": (begin - timedelta(hours=5)).isoformat()[:19] + "-05:00",
                      "end_local": (begin - timedelta(hours=4, minutes=30)).isoformat()[:19]
                      + "-05:00", "capacity": 4, "seats_left": seats})
    instruments = []
    for iid in ("phq2", "phq9", "gad2", "gad7", "blood_pressure", "bmi", "ada_risk", "audit_c",
                "who5"):
        version = available_versions(iid)[-1]
        instruments.append({"id": iid, "version": version,
                            "definition": load_definition(iid, version)})
    return CatalogResponse.model_validate({
        "site": {"slug": "demo", "name": "Riverside Plant", "timezone": "America/Chicago"},
        "instruments": instruments,
        "events": [{"id": "ev-1", "kind": "screening",
                    "title": {"en": "Flu shots and blood pressure checks",
                              "es": "Vacunas contra la gripe y control de la presión"},
                    "location": "Room 2", "slots": slots}],
        "settings": {"languages": ["en", "es"],
                     # Not the server's default of 90: the privacy notice must say this one.
                     "retention_days": 30,
                     "timeouts": {"idle_seconds": 90, "idle_countdown_seconds": 20,
                                  "session_cap_seconds": 900, "crisis_screen_seconds": 300,
                                  "sync_seconds": 30},
                     "branding": {"name": "Riverside Wellness", "color": "#0a5ea8"},
                     "local_crisis_resources": [
                         {"label": {"en": "Riverside Crisis Center",
                                    "es": "Riverside Crisis Center"},
                          "phone": "+1 555 0199"}]},
        "crisis": [crisis_guidance(t.trigger).as_dict() for t in CRISIS_TRIGGERS],
    })


class FakeBackend:
    """Implements kiosk.backend.Backend in memory."""

    def __init__(self, *, paired: bool = True, online: bool = True,
                 full_slot: bool = False) -> None:
        self.paired = paired
        self.online = online
        self._catalog = fake_catalog(full_slot=full_slot)
        self.calls: list[tuple[str, Any]] = []
        self.submitted: list[dict[str, Any]] = []
        self.booked: list[BookingOut] = []
        self.depth = 0
        self.phones: list[str | None] = []
        self.emails: list[str | None] = []

    def catalog(self) -> CatalogResponse | None:
        """The catalog once paired."""
        return self._catalog if self.paired else None

    def identify(self, employee_id: str, birth_date: str) -> Identity:
        """E1001 with the demo birth date matches; offline, the typed id waits."""
        self.calls.append(("identify", employee_id))
        if not self.online:
            return Identity(pending="pending-1")
        if (employee_id.upper(), birth_date) != MEMBER:
            raise Refused("no member matches", field="employee_id")
        return Identity(member_ref="ref-E1001", first_name="Ana", language="es")

    def submit(self, identity: Identity | None, items: Sequence[Mapping[str, Any]],
               *, crisis: bool) -> None:
        """Record the items as queued."""
        self.calls.append(("submit", crisis))
        for item in items:
            self.submitted.append({**item, "crisis": crisis,
                                   "member": identity.member_ref if identity else None})
        self.depth += len(items)

    def crisis_alert(self, trigger: Literal["phq9_item9", "hypertensive_crisis"]) -> None:
        """Record an anonymous alert."""
        self.calls.append(("crisis_alert", trigger))

    def consent(self, identity: Identity, *, consent: bool, contact_method: str | None = None,
                contact_time: str | None = None, phone: str | None = None,
                email: str | None = None) -> None:
        """Record the consent (refused as the server would, with no number or address)."""
        if consent and contact_method in ("phone", "text") and not phone:
            raise Refused("is required: no phone number is on file", field="phone")
        if consent and contact_method == "email" and not email:
            raise Refused("is required: no email address is on file", field="email")
        self.calls.append(("consent", (consent, contact_method, contact_time)))
        self.phones.append(phone)
        self.emails.append(email)

    def claim_contact(self, identity: Identity, *, phone: str | None = None,
                      email: str | None = None) -> Identity:
        """Record the contact left with an offline sign-in; a new handle, as the service gives."""
        self.calls.append(("claim_contact", phone or email))
        return Identity(pending=f"{identity.pending}+contact")

    def _need_online(self) -> None:
        if not self.online:
            raise Offline("the fake is offline")

    def advocate_link(self, identity: Identity) -> AdvocateLinkResponse:
        """The member's advocate."""
        self._need_online()
        return AdvocateLinkResponse.model_validate({
            "advocate": {"name": "Dana Whitfield", "phone": "+1 555 0100",
                         "email": "dana@example.org", "languages": ["en", "es"]},
            "link_url": LINK_URL,
            "vcard": vcard("Dana Whitfield", phone="+1 555 0100", email="dana@example.org")})

    def bookings(self, identity: Identity) -> list[BookingOut]:
        """The member's bookings."""
        self._need_online()
        return [b for b in self.booked if b.status != "cancelled"]

    def book(self, identity: Identity, slot_id: str) -> BookingOut:
        """Book a seat, or the waitlist for a full slot."""
        self._need_online()
        slot = next(s for e in self._catalog.events for s in e.slots if s.id == slot_id)
        full = slot.seats_left == 0
        booking = BookingOut.model_validate({
            "booking_id": str(uuid.uuid4()), "status": "waitlisted" if full else "booked",
            "slot_id": slot_id, "event_id": "ev-1",
            "event_title": "Flu shots and blood pressure checks",
            "start_at": slot.start_at.isoformat(), "end_at": slot.end_at.isoformat(),
            "waitlist_position": 1 if full else None,
            "ticket": None if full else "tkt", "ticket_url": None if full else
            "http://127.0.0.1:8701/tickets/fake-ticket"})
        self.booked.append(booking)
        self.calls.append(("book", slot_id))
        return booking

    def cancel(self, identity: Identity, booking_id: str) -> BookingOut:
        """Cancel a booking."""
        self._need_online()
        for i, b in enumerate(self.booked):
            if b.booking_id == booking_id:
                self.booked[i] = b.model_copy(update={"status": "cancelled"})
                self.calls.append(("cancel", booking_id))
                return self.booked[i]
        raise Refused("no such booking", field="booking_id")

    def reschedule(self, identity: Identity, booking_id: str, slot_id: str) -> BookingOut:
        """Move a booking."""
        self.cancel(identity, booking_id)
        return self.book(identity, slot_id)

    def status(self) -> SyncStatus:
        """Paired, online, and the number of items queued."""
        return SyncStatus(paired=self.paired, online=self.online, outbox_depth=self.depth,
                          sent_since_backlog=self.depth // 2, backlog_at_start=self.depth,
                          last_errors=("connection refused (fake)",) if not self.online else ())

    def sync_now(self) -> None:
        """Record the request; online, what is queued is sent, as the sync worker sends it."""
        self.calls.append(("sync_now", None))
        if self.online:
            # A tour's end waits for its queue to drain (kiosk.cli._drain): a queue that never
            # did made every tour on this fake wait out the drain's 30 s.
            self.depth = 0

    def pair(self, server_url: str, pairing_code: str) -> None:
        """Pair with the right code."""
        if pairing_code != "GOOD-CODE":
            raise Refused("unknown pairing code", field="pairing_code")
        self.paired = True
