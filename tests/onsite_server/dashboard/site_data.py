"""One of everything at a site, for the tests that check a site's data stays with its staff.

``gen_site_data`` fills a site with a kiosk, a member with a booking and a crisis referral, an
anonymous crisis alert, two dead letters, an operational alert and audit entries, each with a
text that names the site (``markers``): a page shown to another site's staff must contain
none of them, and a change made by them must leave ``snapshot`` as it was.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from onsite_server.db import get_db
from onsite_server.models import (
    Alert,
    Booking,
    CrisisAlert,
    Event,
    Kiosk,
    OutboxMessage,
    Referral,
    Site,
    Submission,
    User,
    utcnow,
)
from onsite_server.services import audit

from ..helpers import gen_event, gen_member


@dataclass
class SiteData:
    """The ids of one site's rows (to put in URLs) and the texts that must not leak."""

    site_id: int
    tag: str
    ids: dict[str, Any] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)

    def personal(self) -> dict[str, str]:
        """The markers that name a person or what they did (never shown to an employer)."""
        return {k: v for k, v in self.markers.items() if k in PERSONAL}


# Member names, staff emails, an audit entry's address: an employer sees none of them.
PERSONAL = frozenset({"member", "victim_email", "audit_address"})


def gen_site_data(app: Flask, site: Site | int, tag: str) -> SiteData:
    """Fill the site with one of everything; tag makes its texts unique to it."""
    site_id = site if isinstance(site, int) else site.id
    data = SiteData(site_id, tag)
    with get_db(app).transaction() as session:
        the_site = session.get(Site, site_id)
        assert the_site is not None
        kiosk = Kiosk(site_id=site_id, label=f"Kiosk{tag}", place=f"Lobby{tag}",
                      token_hash=uuid.uuid4().hex + uuid.uuid4().hex)
        session.add(kiosk)
        member = gen_member(session, the_site, first_name=f"Member{tag}")
        event = gen_event(session, the_site, title=f"Event{tag}")
        session.flush()
        slot = event.slots[0]
        slot.booked_count = 1
        booking = Booking(member_id=member.id, event_id=event.id, slot_id=slot.id,
                          status="booked")
        referral = Referral(member_id=member.id, priority="crisis", status="new",
                            proposal={"crisis": [{"trigger": "phq9_item9"}]})
        session.add_all([booking, referral])
        session.flush()
        session.add(Submission(
            idempotency_key=str(uuid.uuid4()), request_hash="0" * 64, kiosk_id=kiosk.id,
            member_id=member.id, instrument_id="phq9", instrument_version="1", answers={},
            result={"score": 20, "band": "severe"}, crisis=True,
            taken_at=utcnow() - timedelta(minutes=5), response={}, referral_id=referral.id))
        crisis = CrisisAlert(kiosk_id=kiosk.id, trigger="phq9_item9")
        dead_booking = OutboxMessage(kind="booking", key=f"booking:{tag}:v1", payload={},
                                     booking_id=booking.id, status="dead", attempts=3,
                                     last_error=f"HTTP 422: Refused{tag}")
        dead_referral = OutboxMessage(kind="referral", key=f"referral:{tag}:v1", payload={},
                                      referral_id=referral.id, priority=0, status="dead",
                                      attempts=1, last_error=f"HTTP 422: Crisis{tag}")
        alert = Alert(kind="crisis_dead_letter", message=f"CRISIS referral Alert{tag} refused",
                      site_id=site_id)
        victim = User(email=f"victim{tag.lower()}@test.example", name=f"Victim{tag}",
                      role="coordinator", password_hash="!", site_id=site_id)
        session.add_all([crisis, dead_booking, dead_referral, alert, victim])
        session.flush()
        audit.record(session, f"user:{victim.id}", "auth.login", f"user:{victim.id}",
                     detail={"address": f"203.0.113.{site_id}"})
        audit.record(session, f"kiosk:{kiosk.public_id}", "referral.updated",
                     f"referral:{referral.public_id}")
        data.ids = {"kiosk": kiosk.public_id, "member": member.public_id,
                    "event": event.public_id, "slot": slot.public_id,
                    "booking": booking.public_id, "referral": referral.public_id,
                    "crisis_alert": crisis.id, "alert": alert.id, "victim": victim.id,
                    "dead_booking": dead_booking.id, "dead_referral": dead_referral.id}
        data.markers = {
            "member": f"Member{tag}", "event": f"Event{tag}", "kiosk": f"Kiosk{tag}",
            "dead_booking": f"Refused{tag}", "dead_referral": f"Crisis{tag}",
            "alert": f"Alert{tag}", "victim_email": victim.email,
            "audit_address": f"203.0.113.{site_id}", "place": f"Lobby{tag}"}
    return data


def snapshot(app: Flask, data: SiteData) -> dict[str, Any]:
    """What another site's staff must never change at this site."""
    with get_db(app).transaction() as session:
        return _snapshot(session, data)


def _snapshot(session: Session, data: SiteData) -> dict[str, Any]:
    ids = data.ids
    kiosk = session.scalars(select(Kiosk).where(Kiosk.public_id == ids["kiosk"])).one()
    event = session.scalars(select(Event).where(Event.public_id == ids["event"])).one()
    booking = session.scalars(select(Booking).where(Booking.public_id == ids["booking"])).one()
    referral = session.scalars(select(Referral).where(
        Referral.public_id == ids["referral"])).one()
    crisis = session.get(CrisisAlert, ids["crisis_alert"])
    alert = session.get(Alert, ids["alert"])
    victim = session.get(User, ids["victim"])
    site = session.get(Site, data.site_id)
    assert crisis is not None and alert is not None and victim is not None and site
    return {
        "kiosk_revoked": kiosk.revoked_at, "event": (event.title, event.cancelled),
        "slots": [(s.capacity, s.cancelled, s.booked_count) for s in event.slots],
        "booking": (booking.status, booking.checked_in_at),
        "referral": (referral.status, referral.crisis_acknowledged_at),
        "crisis_alert": crisis.acknowledged_at, "alert": alert.cleared_at,
        "outbox": sorted((m.key, m.status) for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(
                (ids["dead_booking"], ids["dead_referral"]))))),
        "victim": (victim.active, victim.password_hash, victim.session_epoch,
                   victim.totp_secret),
        "site": dict(site.settings or {}),
        "users": sorted(session.scalars(select(User.email).where(User.site_id == site.id))),
    }


def pdf_text(pdf: bytes) -> str:
    """The text of a PDF (poppler's pdftotext; scripts/bootstrap.sh test installs it)."""
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: scripts/bootstrap.sh test installs poppler-utils")
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True,
                          check=True, timeout=60)
    return done.stdout.decode("utf-8", "replace")
