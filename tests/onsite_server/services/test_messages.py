"""Booking events reach central: the Appointment as it stands, and Communications for the member
(confirmation, waitlist, promotion, cancellation, reminder, a waitlist that closed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.fhir import FhirInvalid, validate
from onsite_server.models import Booking, Member, OutboxMessage, Site, Slot
from onsite_server.services import bookings as svc
from onsite_server.services.messages import message_kinds, notify_booking, render
from onsite_server.services.sync import run_cycle

from ..helpers import gen_event, gen_member
from .test_sync import FakeCentral, _settings


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _outbox(app: Flask) -> list[tuple[str, str, dict[str, Any]]]:
    with get_db(app).transaction(write=False) as session:
        return [(r.kind, r.key, dict(r.payload)) for r in session.scalars(
            select(OutboxMessage).order_by(OutboxMessage.id))]


def _messages(app: Flask) -> list[str]:
    return [payload["kind"] for kind, _, payload in _outbox(app) if kind == "message"]


class Site1:
    """A site with members and an event, driven through the bookings service."""

    def __init__(self, app: Flask, site: Any) -> None:
        self.app = app
        self.site_id = site.id

    def member(self, language: str = "en") -> int:
        """Create a member and return their row id."""
        with get_db(self.app).transaction() as session:
            site = session.get(Site, self.site_id)
            assert site is not None
            member = gen_member(session, site)
            member.language = language
            return member.id

    def event(self, *, capacity: int = 1, start: datetime | None = None,
              title_es: str | None = None) -> int:
        """Create a one-slot event and return the slot's row id."""
        with get_db(self.app).transaction() as session:
            site = session.get(Site, self.site_id)
            assert site is not None
            event = gen_event(session, site, capacity=capacity, start=start)
            event.title_es = title_es
            event.location = "Room 2B"
            return event.slots[0].id

    def book(self, member_id: int, slot_id: int, now: datetime | None = None) -> str:
        """Book through the service and return the booking's public id."""
        with get_db(self.app).transaction() as session:
            member, slot = session.get(Member, member_id), session.get(Slot, slot_id)
            assert member is not None and slot is not None
            return svc.book(session, member=member, slot=slot, actor="test", now=now).booking_id

    def booking(self, public_id: str) -> tuple[str, datetime | None]:
        """The booking's status and reminder time."""
        with get_db(self.app).transaction(write=False) as session:
            row = session.scalars(select(Booking).where(Booking.public_id == public_id)).one()
            return row.status, row.reminded_at


@pytest.fixture
def place(app: Flask, site: Any) -> Site1:
    """A site to book at."""
    return Site1(app, site)


def test_a_booking_sends_its_appointment_and_a_confirmation(app: Flask, place: Site1) -> None:
    booking = place.book(place.member(), place.event())
    assert _messages(app) == ["confirmation"]
    central = FakeCentral()
    report = run_cycle(get_db(app).transaction, central, _settings(app))
    assert report.sent == 2 and report.dead == 0
    message = next(b for b in central.bundles if _resources(b, "Communication"))
    (patient,) = _resources(message, "Patient")
    (appointment,) = _resources(message, "Appointment")
    (communication,) = _resources(message, "Communication")
    assert appointment["identifier"][0]["value"] == booking
    assert appointment["status"] == "booked"
    assert appointment["participant"][0]["status"] == "accepted"
    assert communication["status"] == "preparation"
    assert communication["category"][0]["coding"][0]["code"] == "notification"
    assert "Flu shot clinic" in communication["payload"][0]["contentString"]
    assert "Room 2B" in communication["payload"][0]["contentString"]
    entries = {e["resource"]["resourceType"]: e for e in message["entry"]}
    assert communication["about"] == [{"reference": entries["Appointment"]["fullUrl"]}]
    assert communication["subject"] == {"reference": entries["Patient"]["fullUrl"]}
    assert entries["Appointment"]["request"]["method"] == "PUT"
    assert entries["Communication"]["request"]["ifNoneExist"].endswith(
        f"|message:{booking}:confirmation")
    assert patient["identifier"][0]["value"].startswith("M-")


def test_the_message_is_in_the_members_language_and_the_sites_time(app: Flask,
                                                                     place: Site1) -> None:
    start = datetime(2031, 3, 4, 14, 30, tzinfo=UTC)  # 09:30 in New York (EST)
    place.book(place.member("es"), place.event(start=start, title_es="Vacuna contra la gripe"))
    ((_, _, payload),) = [row for row in _outbox(app) if row[0] == "message"]
    assert payload["language"] == "es"
    assert payload["topic"] == "Cita confirmada"
    assert "Vacuna contra la gripe" in payload["text"]
    assert "2031-03-04" in payload["text"] and "09:30" in payload["text"]


def test_full_slot_waitlists_and_a_cancellation_moves_the_first_up(app: Flask,
                                                                     place: Site1) -> None:
    slot = place.event(capacity=1)
    first, second = place.member(), place.member()
    seat = place.book(first, slot)
    waiting = place.book(second, slot)
    assert _messages(app) == ["confirmation", "waitlisted"]
    with get_db(app).transaction() as session:
        row = session.scalars(select(Booking).where(Booking.public_id == seat)).one()
        svc.cancel_booking(session, row, actor="test")
    assert _messages(app) == ["confirmation", "waitlisted", "cancellation",
                              "waitlist_promotion"]
    assert place.booking(waiting)[0] == "booked"
    central = FakeCentral()
    run_cycle(get_db(app).transaction, central, _settings(app))
    statuses = {a["identifier"][0]["value"]: a["status"]
                for b in central.bundles for a in _resources(b, "Appointment")}
    assert statuses == {seat: "cancelled", waiting: "booked"}


def test_a_message_is_queued_once_per_booking_and_kind(app: Flask, place: Site1) -> None:
    booking = place.book(place.member(), place.event())
    with get_db(app).transaction() as session:
        row = session.scalars(select(Booking).where(Booking.public_id == booking)).one()
        assert notify_booking(session, row, "confirmation") is False
        assert notify_booking(session, row, "reminder") is True
    assert _messages(app) == ["confirmation", "reminder"]


def test_one_pending_appointment_row_carries_every_change(app: Flask, place: Site1) -> None:
    booking = place.book(place.member(), place.event())
    with get_db(app).transaction() as session:
        row = session.scalars(select(Booking).where(Booking.public_id == booking)).one()
        svc.check_in(session, row, actor="test")
    assert [kind for kind, _, _ in _outbox(app)].count("booking") == 1
    central = FakeCentral()
    run_cycle(get_db(app).transaction, central, _settings(app))
    # Every bundle is built from the database as it stands: the check-in is in all of them.
    assert {a["status"] for b in central.bundles for a in _resources(b, "Appointment")} == {
        "checked-in"}
    with get_db(app).transaction() as session:
        row = session.scalars(select(Booking).where(Booking.public_id == booking)).one()
        row.status = "booked"  # as if an admin undid the check-in; then a no-show
        session.flush()
        row.slot.end_at = datetime.now(UTC) - timedelta(minutes=1)
        row.slot.start_at = row.slot.end_at - timedelta(minutes=15)
    run_cycle(get_db(app).transaction, central, _settings(app))
    assert _resources(central.bundles[-1], "Appointment")[0]["status"] == "noshow"


def test_reminders_once_and_not_for_a_seat_booked_inside_the_window(app: Flask,
                                                                      place: Site1) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    early = place.book(place.member(), place.event(start=start), now=start - timedelta(days=3))
    late = place.book(place.member(), place.event(start=start),
                      now=start - timedelta(hours=2))
    with get_db(app).transaction() as session:  # the second booking was made 2 h before
        row = session.scalars(select(Booking).where(Booking.public_id == late)).one()
        row.updated_at = start - timedelta(hours=2)
    lead = timedelta(hours=24)
    with get_db(app).transaction() as session:
        assert svc.send_reminders(session, lead, now=start - timedelta(hours=30)) == 0
    with get_db(app).transaction() as session:
        assert svc.send_reminders(session, lead, now=start - timedelta(hours=1)) == 1
    with get_db(app).transaction() as session:
        assert svc.send_reminders(session, lead, now=start - timedelta(minutes=30)) == 0
    reminders = [key for kind, key, payload in _outbox(app)
                 if kind == "message" and payload["kind"] == "reminder"]
    assert reminders == [f"message:{early}:reminder"]
    assert place.booking(early)[1] is not None and place.booking(late)[1] is not None


def test_the_waitlist_closes_when_the_slot_starts(app: Flask, place: Site1) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    slot = place.event(capacity=1, start=start)
    place.book(place.member(), slot)
    waiting = place.book(place.member(), slot)
    with get_db(app).transaction() as session:
        assert svc.expire_waitlist(session, now=start - timedelta(minutes=1)) == 0
    with get_db(app).transaction() as session:
        assert svc.expire_waitlist(session, now=start + timedelta(minutes=1)) == 1
    with get_db(app).transaction() as session:
        assert svc.expire_waitlist(session, now=start + timedelta(minutes=2)) == 0
    assert place.booking(waiting)[0] == "cancelled"
    assert _messages(app)[-1] == "waitlist_expired"


def test_housekeeping_runs_the_booking_jobs(app: Flask, place: Site1) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    slot = place.event(capacity=1, start=start)
    place.book(place.member(), slot, now=start - timedelta(days=2))
    place.book(place.member(), slot, now=start - timedelta(days=2))
    with get_db(app).transaction() as session:
        for row in session.scalars(select(Booking)):
            row.updated_at = start - timedelta(days=2)
    report = run_cycle(get_db(app).transaction, FakeCentral(), _settings(app))
    assert report.reminders == 1 and report.waitlist_expired == 0
    report = run_cycle(get_db(app).transaction, FakeCentral(), _settings(app),
                       now=lambda: start + timedelta(minutes=1))
    assert report.waitlist_expired == 1


def test_a_referral_carries_the_members_bookings(app: Flask, client: Any, site: Any,
                                                 kiosk: dict[str, Any]) -> None:
    from .test_sync import PHQ9_MODERATE, _submit

    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    with get_db(app).transaction() as session:
        member = session.scalars(select(Member)).one()
        member_id = member.id
    booking = Site1(app, site).book(member_id, Site1(app, site).event())
    central = FakeCentral()
    run_cycle(get_db(app).transaction, central, _settings(app))
    referral = next(b for b in central.bundles if _resources(b, "ServiceRequest"))
    (appointment,) = _resources(referral, "Appointment")
    assert appointment["identifier"][0]["value"] == booking


def test_every_message_kind_renders_in_both_languages() -> None:
    start = datetime(2030, 1, 2, 15, 0, tzinfo=UTC)
    for kind in message_kinds():
        for language in ("en", "es"):
            message = render(kind, language, event="Flu shot", start=start,
                             timezone="America/Chicago", place=None)
            assert message.language == language and "{" not in message.text
            assert "Flu shot" in message.text and "09:00" in message.text
    assert render("reminder", "fr", event="X", start=start, timezone="UTC",
                  place=None).language == "en"
    with pytest.raises(ValueError, match="kind"):
        render("party", "en", event="X", start=start, timezone="UTC", place=None)


def test_our_code_check_refuses_a_communication_category_we_do_not_send() -> None:
    resource = {"resourceType": "Communication", "status": "preparation",
                "category": [{"coding": [{"code": "gossip"}]}]}
    with pytest.raises(FhirInvalid, match="category"):
        validate(resource)
