"""Factories for the emulator tests: onsite-like keys and tokens, Bundles, the keys Binary."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from central_emulator.store import KEYS_CONTENT_TYPE, REVOKED_CONTENT_TYPE
from onsite_server.fhir import (
    MemberFacts,
    ReferralFacts,
    Systems,
    referral_bundle,
    referral_entries,
)
from shared.tokens import KeyRing, Purpose, SigningKey, mint

SYSTEMS = Systems("https://onsite.example/ids/demo")


@dataclass
class SiteKeys:
    """An onsite server's signing keys, one per purpose, and its public ring."""

    link: SigningKey = field(default_factory=lambda: SigningKey.generate(Purpose.ADVOCATE_LINK))
    ticket: SigningKey = field(default_factory=lambda: SigningKey.generate(Purpose.TICKET))

    def ring(self) -> KeyRing:
        """The public keys as the onsite server publishes them."""
        ring = KeyRing()
        ring.add(self.link.public, Purpose.ADVOCATE_LINK)
        ring.add(self.ticket.public, Purpose.TICKET)
        return ring

    def link_token(self, advocate: str = "adv-001", *, lifetime: timedelta = timedelta(days=365),
                   now: datetime | None = None, token_id: str | None = None) -> str:
        """An advocate-link token for a member's public id."""
        return mint(self.link, {"subject": "4b7e2c1a-0000-4000-8000-000000000001",
                                "advocate": advocate}, lifetime=lifetime, now=now,
                    token_id=token_id)

    def ticket_token(self, booking: str, slot: str = "slot-1") -> str:
        """A ticket token for a booking id."""
        return mint(self.ticket, {"subject": booking, "slot": slot}, lifetime=timedelta(days=30))


def _b64(data: Any) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def key_entries(keys: SiteKeys, site: str = "demo",
                revoked: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The two Binary entries an onsite server adds to each transaction."""
    return [
        {"resource": {"resourceType": "Binary", "id": f"onsite-keys-{site}",
                      "contentType": KEYS_CONTENT_TYPE, "data": _b64(keys.ring().jwks())},
         "request": {"method": "PUT", "url": f"Binary/onsite-keys-{site}"}},
        {"resource": {"resourceType": "Binary", "id": f"onsite-revoked-{site}",
                      "contentType": REVOKED_CONTENT_TYPE, "data": _b64(list(revoked))},
         "request": {"method": "PUT", "url": f"Binary/onsite-revoked-{site}"}},
    ]


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    """A transaction Bundle of the given entries."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def referral(member_id: str = "M-1002", *, priority: str = "routine",
             authored: datetime | None = None, advocate: str | None = None,
             public_id: str | None = None, consent: bool | None = True) -> dict[str, Any]:
    """A referral Bundle as the onsite server builds it (no submissions)."""
    facts = ReferralFacts(public_id=public_id or str(uuid.uuid4()), version=1, status="new",
                          priority=priority, programs=("health_coaching",), consent=consent,
                          advocate_id=advocate,
                          authored_at=authored or datetime(2026, 12, 1, 9, tzinfo=UTC))
    return referral_bundle(MemberFacts(member_id=member_id, public_id=str(uuid.uuid4())),
                           facts, (), SYSTEMS)


def referral_update(client: Any, member_id: str = "M-1002", *, priority: str = "routine",
                    public_id: str, consent: bool | None = True,
                    forwarded: bool = True) -> dict[str, Any]:
    """A referral Bundle as the sync worker sends it once central may hold it: the shared
    ServiceRequest and Task read from central (a Flask test client) and merged."""
    facts = ReferralFacts(public_id=public_id, version=2, status="sent", priority=priority,
                          programs=("health_coaching",), consent=consent, forwarded=forwarded,
                          authored_at=datetime(2026, 12, 1, 9, tzinfo=UTC))
    entries = referral_entries(MemberFacts(member_id=member_id, public_id=str(uuid.uuid4())),
                               facts, (), SYSTEMS)
    held = {}
    for item in entries.owned:
        found = client.get(f"/fhir/{item.kind}",
                           query_string={"identifier": f"{item.system}|{item.value}"}).json
        if found.get("entry"):
            held[item.full_url] = found["entry"][0]["resource"]
    return entries.bundle(held)


def appointment_entry(booking: str, *, start: str = "2026-12-02T09:00:00-05:00",
                      end: str = "2026-12-02T09:15:00-05:00") -> dict[str, Any]:
    """A conditional update of a booked Appointment, identified by the booking id."""
    system = SYSTEMS("booking")
    return {"resource": {
        "resourceType": "Appointment", "status": "booked",
        "identifier": [{"system": system, "value": booking}],
        "description": "Flu shot clinic", "start": start, "end": end,
        "participant": [{"actor": {"reference": "Location/lobby-b", "display": "Lobby B"},
                         "status": "accepted"}]},
        "request": {"method": "PUT", "url": f"Appointment?identifier={system}|{booking}"}}
