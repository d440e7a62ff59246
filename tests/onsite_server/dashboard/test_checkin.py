"""The check-in desk: scans (JSON for the page's script, or a plain form post), refusals with
their reason, search, walk-ins, no-shows, and a live view that does not count as activity."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Booking, Event, Member, Site, Slot
from onsite_server.services import bookings
from onsite_server.services.signing import KeyStore
from onsite_server.services.tickets import TicketIssuer

from ..helpers import gen_member
from .helpers import csrf_token, post_form

ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "Pacific/Auckland",
         "America/New_York", "America/Los_Angeles", "Pacific/Honolulu")


@pytest.fixture
def day(app: Flask, site: Any) -> dict[str, Any]:
    """Today's event at the site (moved to a zone where it is mid-day now): a slot that has
    ended, one running, one later; each with 2 seats."""
    now = datetime.now(UTC).replace(microsecond=0)
    zone = min(ZONES, key=lambda z: abs(now.astimezone(ZoneInfo(z)).hour - 12))
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        row.timezone = zone
        event = Event(site_id=site.id, title="Flu shot clinic", title_es="Vacuna",
                      kind="flu_shot")
        session.add(event)
        session.flush()
        starts = [now - timedelta(minutes=40), now - timedelta(minutes=5),
                  now + timedelta(minutes=30)]
        slots = [Slot(event_id=event.id, start_at=s, end_at=s + timedelta(minutes=20),
                      capacity=2) for s in starts]
        session.add_all(slots)
        session.flush()
        return {"event": event.public_id, "slots": [s.public_id for s in slots],
                "zone": zone}


def _book(app: Flask, site: Any, slot_id: str, first_name: str = "Ana",
          employee_id: str | None = None) -> tuple[str, str]:
    """Book a seat as a kiosk would (before the slot starts); return (booking id, ticket URL)."""
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        slot = bookings.find_slot(session, site.id, slot_id)
        member = gen_member(session, row, first_name=first_name, employee_id=employee_id)
        view = bookings.book(session, member=member, slot=slot, actor="kiosk:t",
                             now=slot.start_at - timedelta(hours=1))
    issuer = TicketIssuer(keys=KeyStore(Path(app.config["SIGNING_KEY_DIR"])),
                          web_url="https://central.example", grace=timedelta(days=1))
    _, url = issuer.ticket(view.booking_id, slot_id, view.status, view.end_at)
    assert url
    return view.booking_id, url


def _status(app: Flask, booking_id: str) -> str:
    with get_db(app).transaction() as session:
        return session.scalars(select(Booking.status).where(
            Booking.public_id == booking_id)).one()


def _scan(client: FlaskClient, text: str) -> Any:
    html = client.get("/dashboard/checkin").get_data(as_text=True)
    return client.post("/dashboard/checkin/scan", data={"ticket": text},
                       headers={"Accept": "application/json", "X-CSRFToken": csrf_token(html)})


def test_a_scanned_ticket_checks_in(app: Flask, as_coordinator: FlaskClient, site: Any,
                                    day: dict[str, Any]) -> None:
    booking_id, url = _book(app, site, day["slots"][1])
    resp = _scan(as_coordinator, url + "\r\n")
    body = resp.get_json()
    assert resp.status_code == 200 and body["ok"] and body["result"]["status"] == "checked_in"
    assert body["message"].startswith("Checked in: Ana Tester, Flu shot clinic at ")
    assert _status(app, booking_id) == "checked_in"
    again = _scan(as_coordinator, url).get_json()
    assert again["ok"] and again["result"]["already"] and "already checked in" in \
        again["message"]


@pytest.mark.parametrize(("mangle", "reason"), [
    (lambda url: url[:-2] + ("AA" if url[-2:] != "AA" else "BB"), "forged"),
    (lambda url: "not a ticket at all", "malformed"),
])
def test_a_bad_scan_is_refused_with_its_reason(app: Flask, as_coordinator: FlaskClient,
                                               site: Any, day: dict[str, Any],
                                               mangle: Any, reason: str) -> None:
    booking_id, url = _book(app, site, day["slots"][1])
    resp = _scan(as_coordinator, mangle(url))
    body = resp.get_json()
    assert resp.status_code == 409 and body["reason"] == reason and not body["ok"]
    assert _status(app, booking_id) == "booked"


def test_a_cancelled_bookings_ticket_is_refused(app: Flask, as_coordinator: FlaskClient,
                                                site: Any, day: dict[str, Any]) -> None:
    booking_id, url = _book(app, site, day["slots"][2])
    with get_db(app).transaction() as session:
        bookings.cancel_booking(session, bookings.find_booking(session, site.id, booking_id),
                                "kiosk:t")
    body = _scan(as_coordinator, url).get_json()
    assert body["reason"] == "revoked" and "cancelled" in body["message"]


def test_without_script_the_scan_form_posts_and_flashes(app: Flask, as_coordinator: FlaskClient,
                                                        site: Any, day: dict[str, Any]) -> None:
    booking_id, url = _book(app, site, day["slots"][1], first_name="Beto")
    resp = post_form(as_coordinator, "/dashboard/checkin/scan", {"ticket": url},
                     page="/dashboard/checkin", follow_redirects=True)
    assert "Checked in: Beto Tester" in resp.get_data(as_text=True)
    assert _status(app, booking_id) == "checked_in"


def test_search_then_check_in_without_a_ticket(app: Flask, as_coordinator: FlaskClient,
                                               site: Any, day: dict[str, Any]) -> None:
    booking_id, _ = _book(app, site, day["slots"][2], first_name="Chloe", employee_id="E777")
    html = as_coordinator.get("/dashboard/checkin?q=e777").get_data(as_text=True)
    assert "Tester, Chloe" in html and f"/dashboard/checkin/bookings/{booking_id}" in html
    post_form(as_coordinator, f"/dashboard/checkin/bookings/{booking_id}", {},
              page="/dashboard/checkin")
    assert _status(app, booking_id) == "checked_in"
    short = as_coordinator.get("/dashboard/checkin?q=c").get_data(as_text=True)
    assert 'id="q-error"' in short


def test_a_walk_in_not_on_the_roster_takes_a_free_seat(app: Flask, as_coordinator: FlaskClient,
                                                       site: Any, day: dict[str, Any]) -> None:
    resp = post_form(as_coordinator, "/dashboard/checkin/walk-in", {
        "employee_id": "W-9", "first_name": "Walter", "last_name": "Inn",
        "birth_date": "1990-04-01", "slot_id": day["slots"][1]}, page="/dashboard/checkin",
        follow_redirects=True)
    assert "Checked in: Walter Inn" in resp.get_data(as_text=True)
    with get_db(app).transaction() as session:
        member = session.scalars(select(Member).where(Member.employee_id == "W-9")).one()
        status = session.scalars(select(Booking.status).where(
            Booking.member_id == member.id)).one()
    assert status == "checked_in"


def test_a_walk_in_found_by_search_joins_a_full_slots_waitlist(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    later = day["slots"][2]
    _book(app, site, later)
    _book(app, site, later)
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        member_id = gen_member(session, row, first_name="Dana").public_id
    page = f"/dashboard/checkin?walkin={member_id}"
    assert "For: Dana Tester" in as_coordinator.get(page).get_data(as_text=True)
    resp = post_form(as_coordinator, "/dashboard/checkin/walk-in",
                     {"member_id": member_id, "slot_id": later}, page=page,
                     follow_redirects=True)
    assert "Dana Tester is on the waitlist" in resp.get_data(as_text=True)


def test_a_walk_in_form_missing_fields_names_them(as_coordinator: FlaskClient,
                                                  day: dict[str, Any]) -> None:
    resp = post_form(as_coordinator, "/dashboard/checkin/walk-in",
                     {"first_name": "X", "slot_id": day["slots"][1]}, page="/dashboard/checkin")
    assert resp.status_code == 422 and 'id="employee_id-error"' in resp.get_data(as_text=True)


def test_no_shows_after_the_slot(app: Flask, as_coordinator: FlaskClient, site: Any,
                                 day: dict[str, Any]) -> None:
    ended = day["slots"][0]
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        slot = bookings.find_slot(session, site.id, ended)
        view = bookings.book(session, member=gen_member(session, row), slot=slot,
                             actor="kiosk:t", now=slot.start_at - timedelta(hours=1))
    html = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)
    assert f'name="slot_id" value="{ended}"' in html  # the ended slot offers its button
    resp = post_form(as_coordinator, "/dashboard/checkin/no-shows", {"slot_id": ended},
                     page="/dashboard/checkin", follow_redirects=True)
    assert "1 no-shows marked." in resp.get_data(as_text=True)
    assert _status(app, view.booking_id) == "no_show"
    running = post_form(as_coordinator, "/dashboard/checkin/no-shows",
                        {"slot_id": day["slots"][1]}, page="/dashboard/checkin",
                        follow_redirects=True)
    assert "has not ended" in running.get_data(as_text=True)


def test_the_live_view_refreshes_without_counting_as_activity(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    _, url = _book(app, site, day["slots"][1])
    _scan(as_coordinator, url)
    with as_coordinator.session_transaction() as sess:
        sess["seen"] = time.time() - 20 * 60
    live = as_coordinator.get("/dashboard/checkin/live.json",
                              headers={"Accept": "application/json"}).get_json()
    with as_coordinator.session_transaction() as sess:
        seen_after_poll = sess["seen"]
    assert time.time() - seen_after_poll >= 20 * 60 - 5  # the poll did not touch the clock
    (event,) = live["events"]
    assert [s["state"] for s in event["slots"]] == ["ended", "running", "upcoming"]
    assert live["totals"]["checked_in"] == 1 and event["slots"][1]["taken"] == 1
    as_coordinator.get("/dashboard/checkin")
    with as_coordinator.session_transaction() as sess:
        assert time.time() - sess["seen"] < 60  # opening the page is activity


def test_check_in_keeps_working_while_central_is_down(app: Flask, as_coordinator: FlaskClient,
                                                      site: Any, day: dict[str, Any]) -> None:
    """Nothing listens at central's address: a sync cycle fails to reach it, yet a scan is
    verified with the server's own keys and recorded; its Appointment waits in the outbox."""
    import socket

    from click.testing import CliRunner

    from onsite_server.cli import main
    from onsite_server.models import OutboxMessage

    with socket.socket() as probe:  # a port that was free a moment ago: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.config.update(CENTRAL_URL=f"http://127.0.0.1:{port}/fhir", CENTRAL_ALLOW_INSECURE_HTTP=True,
                      CENTRAL_TOKEN_URL=f"http://127.0.0.1:{port}/auth/token")
    booking_id, url = _book(app, site, day["slots"][1])
    synced = CliRunner().invoke(main, ["sync", "--once"], obj={"app": app})
    assert synced.exit_code == 0, synced.output
    assert '"sent": 0' in synced.output  # central was not reached
    body = _scan(as_coordinator, url).get_json()
    assert body["ok"] and body["result"]["status"] == "checked_in"
    assert _status(app, booking_id) == "checked_in"
    with get_db(app).transaction() as session:
        waiting = session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == "booking", OutboxMessage.sent_at.is_(None))).all()
        assert waiting, "the check-in's Appointment should wait for central"
