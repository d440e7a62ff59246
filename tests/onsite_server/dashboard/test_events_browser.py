"""The event day in a real browser (Debian's Chromium through Playwright): a coordinator
creates an event and its slots, a kiosk booking made through the kiosk API appears on the
desk's live view without a reload, a scanned ticket typed into the scan field checks in,
then a walk-in, a no-show (asked first) who arrives late, who is coming, a check-in undone
and the printed door lists. axe-core checks each page; screenshots are saved to look at."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Booking, Event, Site, Slot
from onsite_server.services import bookings

from ..helpers import auth, gen_member, identified_member
from .conftest import axe_violations, browser_login, screenshot

ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "Pacific/Auckland",
         "America/New_York", "America/Los_Angeles", "Pacific/Honolulu")


@pytest.fixture
def database_url(journey_database_url: str) -> str:
    """This journey runs on SQLite and on PostgreSQL (see conftest.journey_database_url)."""
    return journey_database_url


@pytest.fixture
def live_url(live_https_url: str, live_tls_cert: tuple[Any, Any],
             monkeypatch: pytest.MonkeyPatch) -> str:
    """The event day runs as staff run it: over HTTPS with the server's own certificate.

    The kiosk's bookings (``requests``) trust that certificate as a paired kiosk does.
    """
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(live_tls_cert[0]))
    return live_https_url


def _midday_site(app: Flask, site: Any) -> ZoneInfo:
    """Move the site to a zone where it is mid-day, so today's slots fit in today."""
    now = datetime.now(UTC)
    name = min(ZONES, key=lambda z: abs(now.astimezone(ZoneInfo(z)).hour - 12))
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        row.timezone = name
    return ZoneInfo(name)


def _ended_booking(app: Flask, site: Any) -> str:
    """A morning slot that has ended with one seat nobody came for; return the booking id."""
    now = datetime.now(UTC).replace(microsecond=0)
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        event = Event(site_id=site.id, title="Morning screening", kind="biometric_screening")
        session.add(event)
        session.flush()
        start = now - timedelta(minutes=50)
        slot = Slot(event_id=event.id, start_at=start, end_at=start + timedelta(minutes=20),
                    capacity=2)
        session.add(slot)
        session.flush()
        view = bookings.book(session, member=gen_member(session, row, first_name="Nora"),
                             slot=slot, actor="kiosk:t", now=start - timedelta(hours=2))
        return view.booking_id


def _check(page: Any, name: str) -> None:
    screenshot(page, name)
    assert axe_violations(page) == [], name


def test_event_day_in_the_browser(app: Flask, site: Any, staff: dict[str, Any],
                                  kiosk: dict[str, Any], live_url: str, page: Any) -> None:
    from playwright.sync_api import expect

    zone = _midday_site(app, site)
    no_show_id = _ended_booking(app, site)
    browser_login(page, live_url, staff["coordinator"])

    # Create the event and its slots.
    page.goto(live_url + "/dashboard/events")
    page.get_by_role("link", name="New event").click()
    page.get_by_label("Title (English)").fill("Flu shot clinic")
    page.get_by_label("Title (Spanish)").fill("Vacuna contra la gripe")
    page.get_by_label("Service").select_option("flu_shot")
    page.get_by_label("Place").fill("Lobby B")
    _check(page, "events-new")
    page.get_by_role("button", name="Save event").click()
    expect(page.locator(".flash-success")).to_contain_text("Event created")
    local = datetime.now(UTC).astimezone(zone)
    first = local.hour + 2
    page.get_by_label("Day").fill(local.date().isoformat())
    page.get_by_label("From").fill(f"{first:02d}:00")
    page.get_by_label("To").fill(f"{first + 1:02d}:00")
    page.get_by_label("Every (minutes)").fill("15")
    page.get_by_label("Seats in each slot").fill("1")
    page.get_by_role("button", name="Add slots").click()
    expect(page.locator(".flash-success")).to_contain_text("4 slots added.")
    _check(page, "events-detail")
    with get_db(app).transaction() as session:
        slot_ids = list(session.scalars(
            select(Slot.public_id).join(Event).where(Event.title == "Flu shot clinic")
            .order_by(Slot.start_at)))
    assert len(slot_ids) == 4

    # The desk is open when a kiosk books: the live view shows it without a reload. The view
    # refreshes itself every 10 s: the page's clock (Playwright's, still running at its own
    # pace) is moved on to the next refresh instead of waiting for it.
    page.clock.install()
    page.goto(live_url + "/dashboard/checkin")
    flu_row = page.locator("#live-table tbody tr", has_text="Flu shot clinic").first
    expect(flu_row.locator("td").nth(1)).to_have_text("0")
    _, ref = identified_member(app, site, kiosk, first_name="Ana")
    booked = requests.post(live_url + "/api/v1/bookings", headers=auth(kiosk["token"]), json={
        "idempotency_key": str(uuid.uuid4()), "member_ref": ref, "slot_id": slot_ids[0]},
        timeout=10)
    assert booked.status_code == 201, booked.text
    ticket_url = booked.json()["ticket_url"]
    page.clock.run_for(10_000)
    expect(flu_row.locator("td").nth(1)).to_have_text("1", timeout=20000)

    # A USB scanner types the ticket URL into the focused field and presses Enter.
    scan = page.get_by_label("Scan or type the ticket code")
    expect(scan).to_be_focused()
    scan.type(ticket_url)
    scan.press("Enter")
    expect(page.locator("#scan-result")).to_contain_text("Checked in: Ana Tester")
    expect(scan).to_have_value("")
    expect(scan).to_be_focused()
    _check(page, "checkin-scanned")
    # The same ticket with its signature altered.
    scan.type(ticket_url[:-2] + ("AA" if ticket_url[-2:] != "AA" else "BB"))
    scan.press("Enter")
    expect(page.locator("#scan-result")).to_contain_text("forged or altered")
    screenshot(page, "checkin-refused")

    # A walk-in who is not on the roster takes the second slot's free seat.
    walk_in = page.get_by_role("region", name="Walk-in")
    walk_in.get_by_label("Employee id", exact=True).fill("W-100")
    walk_in.get_by_label("First name").fill("Walter")
    walk_in.get_by_label("Last name").fill("Inn")
    walk_in.get_by_label("Birth date").fill("1990-04-01")
    walk_in.get_by_label("Slot").select_option(slot_ids[1])
    page.get_by_role("button", name="Seat the walk-in").click()
    expect(page.locator(".flash-success")).to_contain_text("Checked in: Walter Inn")

    # The morning slot ended with a seat nobody used: mark it a no-show, after saying who.
    morning = page.locator("#live-table tbody tr", has_text="Morning screening")
    morning.get_by_role("link", name="Mark no-shows").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Mark no-shows for the slot")
    expect(page.get_by_role("table")).to_contain_text("Tester, Nora")
    _check(page, "checkin-no-shows-confirm")
    page.get_by_role("button", name="Yes, mark them as no-shows").click()
    expect(page.locator(".flash-success")).to_contain_text("1 no-shows marked.")
    _check(page, "checkin-after-no-show")
    with get_db(app).transaction() as session:
        statuses = dict(session.execute(select(Booking.public_id, Booking.status)).tuples().all())
    assert statuses[booked.json()["booking_id"]] == "checked_in"
    assert statuses[no_show_id] == "no_show"
    assert sorted(statuses.values()) == ["checked_in", "checked_in", "no_show"]

    # Nora comes after all: found by name, checked in as arrived late.
    page.get_by_label("Name, employee id or badge").fill("Nora")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Check in as arrived late Nora Tester").click()
    expect(page.locator(".flash-success")).to_contain_text(
        "Checked in as arrived late: Nora Tester")

    # Two more kiosk bookings fill the third slot and start its waitlist.
    for name in ("Bea", "Cruz"):
        _, ref = identified_member(app, site, kiosk, first_name=name)
        more = requests.post(live_url + "/api/v1/bookings", headers=auth(kiosk["token"]),
                             json={"idempotency_key": str(uuid.uuid4()), "member_ref": ref,
                                   "slot_id": slot_ids[2]}, timeout=10)
        assert more.status_code == 201, more.text

    # The rest of the pages, looked at and checked.
    page.goto(live_url + "/dashboard/events")
    _check(page, "events-list")
    page.get_by_role("link", name="Flu shot clinic").click()
    event_id = page.url.rsplit("/", 1)[1]
    page.goto(f"{live_url}/dashboard/events/{event_id}/slots/{slot_ids[2]}/cancel")
    expect(page.get_by_role("table")).to_contain_text("Tester, Cruz")
    _check(page, "events-cancel-slot")
    page.goto(f"{live_url}/dashboard/events/{event_id}/waitlist")
    expect(page.locator("ol.waitlist")).to_contain_text("Tester, Cruz")
    _check(page, "events-waitlist")

    # Who is coming: each slot's people with their state; a check-in undone with a reason.
    page.goto(f"{live_url}/dashboard/events/{event_id}/people")
    walter = page.get_by_role("row", name="Inn, Walter")
    expect(walter).to_contain_text("Checked in")
    expect(page.get_by_role("row", name="Tester, Cruz")).to_contain_text("Waitlisted")
    _check(page, "events-people")
    walter.locator("summary").click()
    walter.get_by_label("Reason for undoing the check-in").fill("checked in the wrong person")
    walter.get_by_role("button", name="Undo check-in").click()
    expect(page.locator(".flash-success")).to_contain_text("Check-in undone: Walter Inn")
    expect(page.get_by_role("row", name="Inn, Walter")).to_contain_text("Booked")
    # Printed: no navigation or buttons, a box to tick per name; per slot, a page each.
    page.emulate_media(media="print")
    # expect() waits for the print styles: an instant is_visible() once raced the re-layout
    # (the page had just come back from the undo's redirect) on a loaded machine.
    expect(page.locator("nav")).to_be_hidden()
    expect(page.get_by_role("button", name="Check in").first).to_be_hidden()
    expect(page.locator("td.tick").first).to_be_visible()
    screenshot(page, "events-people-print")
    page.goto(f"{live_url}/dashboard/events/{event_id}/people?layout=slots")
    breaks = page.locator(".door-slot").evaluate_all(
        "els => els.map(el => getComputedStyle(el).breakAfter)")
    assert breaks == ["page"] * (len(breaks) - 1) + ["auto"]
    page.emulate_media(media="screen")
    with get_db(app).transaction() as session:
        nora = session.scalars(select(Booking).where(Booking.public_id == no_show_id)).one()
        assert nora.status == "checked_in" and bookings.arrived_late(nora)
    page.goto(live_url + "/dashboard/checkin?q=tester")
    page.get_by_role("button", name="Español").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    _check(page, "checkin-es")
