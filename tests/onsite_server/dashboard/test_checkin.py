"""The check-in desk: scans (JSON for the page's script, or a plain form post), refusals with
their reason, search, walk-ins, no-shows, and a live view that does not count as activity."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from onsite_server import devserver
from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import AuditLog, Booking, Event, Member, Site, Slot
from onsite_server.services import bookings
from onsite_server.services.signing import KeyStore
from onsite_server.services.tickets import TicketIssuer
from shared.tokens import Purpose

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
    return view.booking_id, url or ""  # a waitlisted booking has no ticket


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


def _scan_noting_sql(app: Flask, desk: FlaskClient, ticket: str) -> tuple[Any, list[str]]:
    """Scan a ticket at the desk; the answer, and each SQL statement it ran (lower case)."""
    html = desk.get("/dashboard/checkin").get_data(as_text=True)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    engine = get_db(app).engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        resp = desk.post("/dashboard/checkin/scan", data={"ticket": ticket},
                         headers={"Accept": "application/json", "X-CSRFToken": csrf_token(html)})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return resp, statements


def test_a_scan_reads_its_booking_once_and_checks_it_in_with_one_update(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    """What a scan asks of the database (issue 20 P7): the session check is one query (the
    session row with its user); the ticket's booking is read once, with its member, slot and
    event, and checked in by one conditional UPDATE. No list of revoked tickets, no locking
    re-read, no lazy re-reads of what was loaded."""
    booking_id, url = _book(app, site, day["slots"][1])
    resp, statements = _scan_noting_sql(app, as_coordinator, url)
    assert resp.status_code == 200 and resp.get_json()["result"]["status"] == "checked_in"
    assert _status(app, booking_id) == "checked_in"
    selects = [s for s in statements if s.startswith("select")]
    assert len([s for s in selects if " from booking" in s]) == 1, selects
    # Session 10: no site read either (the booking's row names its site and zone).
    assert not [s for s in selects if re.search(r" from (slot|member|event|site)\b", s)], \
        selects
    assert len([s for s in statements if s.startswith("update booking")]) == 1, statements
    users = [s for s in selects if "user_account" in s]
    assert len(users) == 1 and "user_session" in users[0], users
    # Everything is read before the first write; on SQLite, before the write lock is taken,
    # which then covers the check-in's three writes alone.
    first_write = next(i for i, s in enumerate(statements)
                       if s.startswith(("update", "insert", "begin")))
    assert not [s for s in statements[first_write:] if s.startswith("select")], statements
    assert [s.split()[0] + " " + s.split()[2] if s.startswith("insert") else s.split()[0]
            for s in statements[first_write:] if not s.startswith("begin")] == [
        "update", "insert audit_log", "insert outbox_message"], statements
    # The answer's time is the slot's start at the site, as before.
    start = datetime.fromisoformat(resp.get_json()["result"]["start_at"])
    assert f" at {start.astimezone(ZoneInfo(day['zone'])):%H:%M}." in \
        resp.get_json()["message"]


def test_a_scans_three_writes_are_handed_to_the_driver_compiled_once(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    """The check-in's UPDATE, audit row and Appointment row are SQL compiled once per
    database and run by the driver (``services.statements.Prepared``): at the door no
    SQLAlchemy statement is looked up or compiled for them (issue 20 P7, session 12). What
    they store is what a check-in by search stores
    (``test_a_scan_records_what_a_check_in_by_search_records``)."""
    booking_id, url = _book(app, site, day["slots"][1])
    html = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)
    writes: list[tuple[str, bool]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any,
             _many: bool) -> None:
        words = statement.split()
        if words[0].upper() in ("INSERT", "UPDATE"):
            table = words[2] if words[0].upper() == "INSERT" else words[1]
            writes.append((f"{words[0].upper()} {table.strip(chr(34))}",
                           context.compiled is None))

    engine = get_db(app).engine
    event.listen(engine, "after_cursor_execute", seen)
    try:
        resp = as_coordinator.post("/dashboard/checkin/scan", data={"ticket": url},
                                   headers={"Accept": "application/json",
                                            "X-CSRFToken": csrf_token(html)})
    finally:
        event.remove(engine, "after_cursor_execute", seen)
    assert resp.status_code == 200 and resp.get_json()["result"]["status"] == "checked_in"
    assert _status(app, booking_id) == "checked_in"
    assert writes == [("UPDATE booking", True), ("INSERT audit_log", True),
                      ("INSERT outbox_message", True)], writes


def test_a_refused_scan_takes_no_write_lock(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    """A ticket that does not verify, or names no booking here, is refused from reads alone:
    it writes nothing and, on SQLite, never queues for the write lock (session 10)."""
    _, url = _book(app, site, day["slots"][1])
    token = url.rsplit("/", 1)[1]
    forged = url[:-len(token)] + token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    resp, statements = _scan_noting_sql(app, as_coordinator, forged)
    assert resp.status_code == 409 and resp.get_json()["reason"] == "forged"
    assert not [s for s in statements if s.startswith(("begin", "update", "insert"))], \
        statements


def _keys_cli(app: Flask, *args: str) -> str:
    """Run `onsite-server keys ...` as its own process on the app's database and key folder,
    the way an operator (or another node) changes the keys under a running server."""
    env = {**os.environ, "ONSITE_DATABASE_URL": str(app.config["DATABASE_URL"]),
           "ONSITE_INSTANCE_PATH": app.instance_path,
           "ONSITE_SIGNING_KEY_DIR": str(app.config["SIGNING_KEY_DIR"])}
    proc = devserver.run(env, "keys", *args, timeout=120)
    # retire exits 2 when central cannot be told (none here); the key is retired all the same.
    assert proc.returncode in (0, 2) and proc.stdout, proc.stderr
    return proc.stdout


def test_a_key_retired_by_another_process_is_refused_at_the_next_scan(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    first, first_url = _book(app, site, day["slots"][1], first_name="Ana")
    second, second_url = _book(app, site, day["slots"][1], first_name="Bea")
    kid = KeyStore(Path(app.config["SIGNING_KEY_DIR"])).current_kid(Purpose.TICKET)
    assert _scan(as_coordinator, first_url).get_json()["ok"]  # the server now holds its ring
    assert f"retired ticket key {kid}" in _keys_cli(app, "retire", kid)
    body = _scan(as_coordinator, second_url).get_json()
    assert not body["ok"] and body["reason"] == "forged"
    assert (_status(app, first), _status(app, second)) == ("checked_in", "booked")


def test_a_key_rotated_by_another_process_verifies_at_the_next_scan(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    _, first_url = _book(app, site, day["slots"][1], first_name="Ana")
    assert _scan(as_coordinator, first_url).get_json()["ok"]  # the server now holds its ring
    store = KeyStore(Path(app.config["SIGNING_KEY_DIR"]))
    old = store.current_kid(Purpose.TICKET)
    assert "new ticket key" in _keys_cli(app, "rotate", "--purpose", "ticket")
    second, second_url = _book(app, site, day["slots"][1], first_name="Bea")
    assert store.current_kid(Purpose.TICKET) != old  # signed with the new key
    body = _scan(as_coordinator, second_url).get_json()
    assert body["ok"] and body["result"]["status"] == "checked_in"
    assert _status(app, second) == "checked_in"


@pytest.mark.parametrize(("mangle", "reason"), [
    (lambda url: url[:-2] + ("AA" if url[-2:] != "AA" else "BB"), "forged"),
    (lambda url: "not a ticket at all", "malformed"),
])
@pytest.mark.sqlite_only
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


def _selected(html: str, name: str) -> str | None:
    select_html = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    for option in select_html.split("<option")[1:]:
        if " selected" in option.split(">", 1)[0]:
            return option.split('value="', 1)[1].split('"', 1)[0]
    return None


def test_a_walk_in_is_offered_the_next_slot_with_a_free_seat(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    running, later = day["slots"][1], day["slots"][2]
    html = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)
    assert _selected(html, "slot_id") == running  # running, with seats: fine
    _book(app, site, running)
    _book(app, site, running)
    html = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)
    assert _selected(html, "slot_id") == later  # not the first one, running and full
    assert "full, started" in html


def test_a_refused_walk_in_is_shown_beside_the_form(app: Flask, as_coordinator: FlaskClient,
                                                    site: Any, day: dict[str, Any]) -> None:
    running = day["slots"][1]
    _book(app, site, running)
    _book(app, site, running)
    resp = post_form(as_coordinator, "/dashboard/checkin/walk-in", {
        "employee_id": "W-10", "first_name": "Walt", "last_name": "Late",
        "birth_date": "1990-04-01", "slot_id": running}, page="/dashboard/checkin")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    walkin = html.split('id="walkin"', 1)[1]
    box = walkin.split('id="walkin-refusal"', 1)[1].split("</div>", 1)[0]
    assert "later slot" in box and 'href="#slot_id"' in box
    # The refusal takes the focus, and nothing else asks for it.
    assert 'id="walkin-refusal" role="alert" tabindex="-1" autofocus' in walkin
    assert html.count("autofocus") == 1
    assert 'class="flashes"' not in html


@pytest.mark.sqlite_only
def test_a_walk_in_form_missing_fields_names_them(as_coordinator: FlaskClient,
                                                  day: dict[str, Any]) -> None:
    resp = post_form(as_coordinator, "/dashboard/checkin/walk-in",
                     {"first_name": "X", "slot_id": day["slots"][1]}, page="/dashboard/checkin")
    assert resp.status_code == 422 and 'id="employee_id-error"' in resp.get_data(as_text=True)


def test_no_shows_after_the_slot(app: Flask, as_coordinator: FlaskClient, site: Any,
                                 day: dict[str, Any]) -> None:
    ended = day["slots"][0]
    view_id, _ = _book(app, site, ended, first_name="Absent")
    html = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)
    # The ended slot offers the step that asks first; nothing on the desk marks in one tap.
    assert f"/dashboard/checkin/no-shows?slot_id={ended}" in html
    assert 'action="/dashboard/checkin/no-shows"' not in html
    ask = as_coordinator.get(f"/dashboard/checkin/no-shows?slot_id={ended}")
    text = ask.get_data(as_text=True)
    assert ask.status_code == 200 and "Tester, Absent" in text and "will be marked" in text
    assert _status(app, view_id) == "booked"  # asking changed nothing
    resp = post_form(as_coordinator, "/dashboard/checkin/no-shows", {"slot_id": ended},
                     page=f"/dashboard/checkin/no-shows?slot_id={ended}",
                     follow_redirects=True)
    assert "1 no-shows marked." in resp.get_data(as_text=True)
    assert _status(app, view_id) == "no_show"
    running = post_form(as_coordinator, "/dashboard/checkin/no-shows",
                        {"slot_id": day["slots"][1]}, page="/dashboard/checkin/no-shows",
                        follow_redirects=True)
    assert "has not ended" in running.get_data(as_text=True)
    assert as_coordinator.get("/dashboard/checkin/no-shows?slot_id=nope").status_code == 404


def test_a_no_show_who_comes_is_checked_in_as_arrived_late(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any]) -> None:
    ended = day["slots"][0]
    booking_id, url = _book(app, site, ended, first_name="Tardy")
    with get_db(app).transaction() as session:
        assert bookings.mark_no_shows(session) == 1  # housekeeping
    body = _scan(as_coordinator, url).get_json()
    assert (body["ok"], body["reason"]) == (False, "no_show")
    # The refusal offers the one step that helps: check them in as arrived late.
    assert body["late_url"] == f"/dashboard/checkin/bookings/{booking_id}/late"
    html = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)
    late = as_coordinator.post(body["late_url"], headers={
        "Accept": "application/json", "X-CSRFToken": csrf_token(html)}).get_json()
    assert late["ok"] and late["result"]["late"]
    assert late["message"].startswith("Checked in as arrived late: Tardy Tester")
    assert _status(app, booking_id) == "checked_in"
    people = as_coordinator.get(f"/dashboard/events/{day['event']}/people")
    row = people.get_data(as_text=True).split("Tester, Tardy", 1)[1].split("</tr>", 1)[0]
    assert "Checked in, arrived late" in row and "Undo check-in" in row
    # Found by search instead of a scan, a no-show offers the same button.
    other_id, _ = _book(app, site, ended, first_name="Zoe", employee_id="E-LATE")
    with get_db(app).transaction() as session:
        bookings.mark_no_shows(session)
    found = as_coordinator.get("/dashboard/checkin?q=E-LATE").get_data(as_text=True)
    assert f"/dashboard/checkin/bookings/{other_id}/late" in found


def test_a_check_in_is_undone_only_with_a_reason(app: Flask, as_coordinator: FlaskClient,
                                                 site: Any, day: dict[str, Any]) -> None:
    booking_id, url = _book(app, site, day["slots"][1], first_name="Oops")
    _scan(as_coordinator, url)
    people = f"/dashboard/events/{day['event']}/people"
    path = f"/dashboard/checkin/bookings/{booking_id}/undo"
    refused = post_form(as_coordinator, path, {"reason": "  ", "next": people}, page=people,
                        follow_redirects=True)
    assert refused.request.path == people
    assert "Reason for undoing the check-in: is required" in refused.get_data(as_text=True)
    assert _status(app, booking_id) == "checked_in"
    done = post_form(as_coordinator, path, {"reason": "scanned the wrong ticket",
                                            "next": people}, page=people, follow_redirects=True)
    assert "Check-in undone: Oops Tester is booked again." in done.get_data(as_text=True)
    assert _status(app, booking_id) == "booked"
    with get_db(app).transaction() as session:
        audit = session.scalars(select(AuditLog).where(
            AuditLog.action == "booking.check_in_undone")).one()
        assert audit.detail["reason"] == "scanned the wrong ticket"
        assert audit.actor.startswith("user:")
    # An address off this server is not followed.
    again = post_form(as_coordinator, path, {"reason": "x", "next": "https://evil.example/"},
                      page=people)
    assert again.headers["Location"].endswith("/dashboard/checkin")


def test_who_is_coming_shows_each_slot_with_states(app: Flask, as_coordinator: FlaskClient,
                                                   site: Any, day: dict[str, Any]) -> None:
    _book(app, site, day["slots"][2], first_name="Booked")
    _book(app, site, day["slots"][2], first_name="Second")
    _book(app, site, day["slots"][2], first_name="Waiting")
    _, url = _book(app, site, day["slots"][1], first_name="Came")
    _scan(as_coordinator, url)
    html = as_coordinator.get(f"/dashboard/events/{day['event']}/people").get_data(
        as_text=True)
    for slot in day["slots"]:
        assert f'id="slot-{slot}"' in html
    rows = {name: html.split(f"Tester, {name}", 1)[1].split("</tr>", 1)[0]
            for name in ("Booked", "Came", "Waiting")}
    assert ">Booked<" in rows["Booked"] and ">Checked in<" in rows["Came"]
    assert ">Waitlisted<" in rows["Waiting"] and "(1)" in rows["Waiting"]
    desk = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)
    assert f"/dashboard/events/{day['event']}/people#slot-{day['slots'][1]}" in desk
    detail = as_coordinator.get(f"/dashboard/events/{day['event']}").get_data(as_text=True)
    assert f'href="/dashboard/events/{day["event"]}/people"' in detail
    slots = as_coordinator.get(f"/dashboard/events/{day['event']}/people?layout=slots")
    assert 'class="people layout-slots"' in slots.get_data(as_text=True)


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
    override(app, CENTRAL_URL=f"http://127.0.0.1:{port}/fhir", CENTRAL_ALLOW_INSECURE_HTTP=True,
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


def test_a_scan_reads_its_field_without_building_a_form(
        app: Flask, as_coordinator: FlaskClient, site: Any, day: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan reads its one field directly (a WTForms form cost a tenth of its CPU) and its
    answer is built without deep copies; the CSRF token is still checked before the view."""
    import flask_wtf

    from onsite_server.services import checkin as checkin_service

    _, url = _book(app, site, day["slots"][1])
    html = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("built on the scan's path")

    monkeypatch.setattr(flask_wtf.FlaskForm, "__init__", refuse)
    monkeypatch.setattr(checkin_service, "asdict", refuse)
    headers = {"Accept": "application/json"}
    # No CSRF token: refused before the view, as every dashboard POST without one.
    assert as_coordinator.post("/dashboard/checkin/scan", data={"ticket": url},
                               headers=headers).status_code == 400
    headers["X-CSRFToken"] = csrf_token(html)
    too_long = as_coordinator.post("/dashboard/checkin/scan", data={"ticket": "x" * 2001},
                                   headers=headers)
    assert too_long.status_code == 422 and too_long.get_json()["reason"] == "malformed"
    resp = as_coordinator.post("/dashboard/checkin/scan", data={"ticket": url}, headers=headers)
    assert resp.status_code == 200
    result = resp.get_json()["result"]
    assert result["status"] == "checked_in" and result["already"] is False
    assert datetime.fromisoformat(result["checked_in_at"]).tzinfo is not None
