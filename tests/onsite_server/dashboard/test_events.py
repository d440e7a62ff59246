"""Events pages: create and edit, slot runs, capacity, cancel with the members shown, waitlist,
roster CSV and calendar; who may open them; another site's rows answer 404."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from onsite_server.db import get_db
from onsite_server.models import (
    AuditLog,
    Booking,
    Event,
    Member,
    OutboxMessage,
    Site,
    Slot,
    utcnow,
)
from onsite_server.services import bookings

from ..helpers import gen_event, gen_member, gen_site
from .helpers import csrf_token, post_form


def _tomorrow(site: Any) -> str:
    return (utcnow().astimezone(ZoneInfo(site.timezone)) + timedelta(days=1)).date().isoformat()


def _new_event(client: FlaskClient, **fields: str) -> str:
    data = {"title": "Flu shot clinic", "title_es": "Vacuna contra la gripe", "kind": "flu_shot",
            "location": "Lobby B", **fields}
    resp = post_form(client, "/dashboard/events/new", data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    return resp.headers["Location"].rsplit("/", 1)[1]


def _event(app: Flask, public_id: str) -> Event:
    with get_db(app).transaction() as session:
        event = session.scalars(select(Event).where(Event.public_id == public_id)).one()
        session.expunge(event)
    return event


def _slots(app: Flask, public_id: str) -> list[Slot]:
    with get_db(app).transaction() as session:
        rows = session.scalars(select(Slot).join(Event).where(Event.public_id == public_id)
                               .order_by(Slot.start_at)).all()
        session.expunge_all()
    return list(rows)


def _book(app: Flask, site: Any, slot_public_id: str, n: int = 1) -> list[str]:
    out = []
    with get_db(app).transaction() as session:
        site_row = session.get(Site, site.id)
        assert site_row is not None
        slot = bookings.find_slot(session, site.id, slot_public_id)
        for _ in range(n):
            member = gen_member(session, site_row, first_name=f"Pat{len(out)}")
            out.append(bookings.book(session, member=member, slot=slot, actor="kiosk:t")
                       .booking_id)
    return out


def test_create_an_event_and_generate_slots(app: Flask, as_coordinator: FlaskClient,
                                            site: Any) -> None:
    event_id = _new_event(as_coordinator)
    detail = as_coordinator.get(f"/dashboard/events/{event_id}")
    assert detail.status_code == 200 and "Flu shot clinic" in detail.get_data(as_text=True)
    url = f"/dashboard/events/{event_id}/slots"
    resp = post_form(as_coordinator, url, {"day": _tomorrow(site), "start": "09:00",
                                           "end": "12:00", "every": "15", "capacity": "2"},
                     page=f"/dashboard/events/{event_id}")
    assert resp.status_code == 302
    slots = _slots(app, event_id)
    zone = ZoneInfo(site.timezone)
    assert len(slots) == 12 and all(s.capacity == 2 for s in slots)
    assert slots[0].start_at.astimezone(zone).strftime("%H:%M") == "09:00"
    assert slots[-1].end_at.astimezone(zone).strftime("%H:%M") == "12:00"
    listed = as_coordinator.get("/dashboard/events").get_data(as_text=True)
    assert "Flu shot clinic" in listed and "0 / 24" in listed


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"start": "12:00", "end": "09:00"}, "end", "Choose an end after the start."),
    # A night shift's clinic, 22:00 to 02:00: the form says how to make it.
    ({"start": "22:00", "end": "02:00"}, "end",
     "add the hours after midnight as slots on the next day"),
    ({"every": "1"}, "every", "Number must be between 5 and 480."),
    ({"day": "2001-01-01"}, "start", "is in the past"),
    # 2037-03-08, spring forward in New York: 02:30 never happens. Not read as 03:30.
    ({"day": "2037-03-08", "start": "01:00", "end": "02:30"}, "end",
     "2037-03-08 02:30 does not exist in America/New_York"),
    # Not a 500: 23:00 on the last day of 9999 in New York is past the end of Python's years.
    ({"day": "9999-12-31", "start": "23:00", "end": "23:30"}, "day",
     "must be between 2000-01-01 and 2999-12-31"),
    ({"day": "0001-01-01"}, "day", "must be between 2000-01-01 and 2999-12-31"),
])
@pytest.mark.sqlite_only
def test_a_bad_slot_run_is_shown_next_to_its_field(as_coordinator: FlaskClient, site: Any,
                                                   data: dict[str, str], field: str,
                                                   message: str) -> None:
    event_id = _new_event(as_coordinator)
    form = {"day": _tomorrow(site), "start": "09:00", "end": "12:00", "every": "15",
            "capacity": "2", **data}
    resp = post_form(as_coordinator, f"/dashboard/events/{event_id}/slots", form,
                     page=f"/dashboard/events/{event_id}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f'id="{field}-error"' in html and message in html


@pytest.mark.sqlite_only
def test_event_form_names_a_missing_title(as_coordinator: FlaskClient) -> None:
    resp = post_form(as_coordinator, "/dashboard/events/new", {"title": " ", "kind": "coaching"})
    assert resp.status_code == 422 and 'id="title-error"' in resp.get_data(as_text=True)


def test_edit_an_event(app: Flask, as_coordinator: FlaskClient) -> None:
    event_id = _new_event(as_coordinator)
    resp = post_form(as_coordinator, f"/dashboard/events/{event_id}/edit",
                     {"title": "Biometrics", "title_es": "", "kind": "biometric_screening",
                      "location": "2A", "description": ""})
    assert resp.status_code == 302
    event = _event(app, event_id)
    assert (event.title, event.kind, event.location, event.title_es) == (
        "Biometrics", "biometric_screening", "2A", None)


def test_an_event_takes_a_spanish_description_the_kiosk_shows(
        app: Flask, as_coordinator: FlaskClient) -> None:
    event_id = _new_event(as_coordinator)
    page = f"/dashboard/events/{event_id}/edit"
    form = as_coordinator.get(page).get_data(as_text=True)
    assert 'name="description_es"' in form
    resp = post_form(as_coordinator, page, {
        "title": "Flu shot clinic", "title_es": "Vacunas contra la gripe", "kind": "flu_shot",
        "location": "Room B", "description": "Bring your insurance card.",
        "description_es": "  Traiga su tarjeta del seguro. "})
    assert resp.status_code == 302
    event = _event(app, event_id)
    assert (event.description, event.description_es) == (
        "Bring your insurance card.", "Traiga su tarjeta del seguro.")
    detail = as_coordinator.get(f"/dashboard/events/{event_id}").get_data(as_text=True)
    assert '<dd lang="es">Traiga su tarjeta del seguro.</dd>' in detail
    too_long = post_form(as_coordinator, page, {
        "title": "Flu shot clinic", "kind": "flu_shot", "description_es": "x" * 2001})
    assert too_long.status_code == 422 and 'id="description_es-error"' in \
        too_long.get_data(as_text=True)


def test_capacity_never_below_seats_taken(app: Flask, as_coordinator: FlaskClient,
                                          site: Any) -> None:
    with get_db(app).transaction() as session:
        event = gen_event(session, session.get(Site, site.id), capacity=3)  # type: ignore[arg-type]
        event_id, slot_id = event.public_id, event.slots[0].public_id
    _book(app, site, slot_id, 2)
    page = f"/dashboard/events/{event_id}"
    url = f"{page}/slots/{slot_id}/capacity"
    refused = post_form(as_coordinator, url, {"capacity": "1"}, page=page,
                        follow_redirects=True).get_data(as_text=True)
    assert "2 seats are taken" in refused
    post_form(as_coordinator, url, {"capacity": "5"}, page=page)
    assert _slots(app, event_id)[0].capacity == 5


def test_cancel_a_slot_shows_and_tells_the_members(app: Flask, as_coordinator: FlaskClient,
                                                   site: Any) -> None:
    with get_db(app).transaction() as session:
        event = gen_event(session, session.get(Site, site.id), slots=2, capacity=1)  # type: ignore[arg-type]
        event_id, slot_id = event.public_id, event.slots[0].public_id
    booked = _book(app, site, slot_id, 2)  # one seated, one waitlisted
    page = f"/dashboard/events/{event_id}/slots/{slot_id}/cancel"
    preview = as_coordinator.get(page).get_data(as_text=True)
    assert "Tester, Pat0" in preview and "Tester, Pat1" in preview
    assert "Members with a booking or waiting for a seat: 2." in preview
    assert _slots(app, event_id)[0].cancelled is False  # a GET changes nothing
    done = post_form(as_coordinator, page, {}, follow_redirects=True).get_data(as_text=True)
    assert "2 members will be told" in done
    with get_db(app).transaction() as session:
        told = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "message")).all()
        cancelled = {m.payload["booking"] for m in told if m.payload["kind"] == "cancellation"}
        statuses = set(session.scalars(select(Booking.status)))
    assert cancelled == set(booked) and statuses == {"cancelled"}


def test_cancel_the_whole_event(app: Flask, as_coordinator: FlaskClient, site: Any) -> None:
    with get_db(app).transaction() as session:
        event = gen_event(session, session.get(Site, site.id), slots=3)  # type: ignore[arg-type]
        event_id = event.public_id
        slot_ids = [s.public_id for s in event.slots]
    _book(app, site, slot_ids[1])
    page = f"/dashboard/events/{event_id}/cancel"
    assert "waiting for a seat: 1." in as_coordinator.get(page).get_data(as_text=True)
    post_form(as_coordinator, page, {})
    assert _event(app, event_id).cancelled
    assert all(s.cancelled for s in _slots(app, event_id))


def test_waitlist_and_promotion(app: Flask, as_coordinator: FlaskClient, site: Any) -> None:
    with get_db(app).transaction() as session:
        event = gen_event(session, session.get(Site, site.id), capacity=1)  # type: ignore[arg-type]
        event_id, slot_id = event.public_id, event.slots[0].public_id
    _seated, first, second = _book(app, site, slot_id, 3)
    page = f"/dashboard/events/{event_id}/waitlist"
    html = as_coordinator.get(page).get_data(as_text=True)
    assert html.index("Pat1") < html.index("Pat2") and "Promote" not in html
    post_form(as_coordinator, f"/dashboard/events/{event_id}/slots/{slot_id}/capacity",
              {"capacity": "2"}, page=f"/dashboard/events/{event_id}")
    with get_db(app).transaction() as session:
        status = dict(session.execute(select(Booking.public_id, Booking.status)).tuples().all())
    assert (status[first], status[second]) == ("booked", "waitlisted")
    post_form(as_coordinator, f"/dashboard/events/{event_id}/slots/{slot_id}/capacity",
              {"capacity": "3"}, page=f"/dashboard/events/{event_id}")
    with get_db(app).transaction() as session:
        assert session.scalars(select(Booking.status).where(
            Booking.public_id == second)).one() == "booked"


def test_roster_csv_and_calendar(app: Flask, as_coordinator: FlaskClient, site: Any) -> None:
    with get_db(app).transaction() as session:
        event = gen_event(session, session.get(Site, site.id), slots=2)  # type: ignore[arg-type]
        event_id, slot_id = event.public_id, event.slots[0].public_id
    _book(app, site, slot_id, 2)
    with get_db(app).transaction() as session:
        # Names as people have them: Excel must not show José as JosÃ©.
        session.execute(update(Member).where(Member.first_name == "Pat1")
                        .values(first_name="José", last_name="عبد الله 🌟"))
    resp = as_coordinator.get(f"/dashboard/events/{event_id}/roster.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    # A UTF-8 byte-order mark, as Excel's own "CSV UTF-8": without it Excel reads cp1252.
    assert resp.get_data().startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["date", "start", "end", "last_name", "first_name", "status"]
    assert sorted((r[4], r[3]) for r in rows[1:]) == [("José", "عبد الله 🌟"), ("Pat0", "Tester")]
    with get_db(app).transaction() as session:
        audited = session.scalars(select(AuditLog.action).where(
            AuditLog.action == "event.roster_exported")).all()
    assert len(audited) == 1
    ics = as_coordinator.get(f"/dashboard/events/{event_id}/calendar.ics")
    text = ics.get_data(as_text=True)
    assert ics.mimetype == "text/calendar" and text.count("BEGIN:VEVENT") == 2
    assert text.startswith("BEGIN:VCALENDAR\r\n")


@pytest.mark.parametrize("path", ["/dashboard/events", "/dashboard/events/new",
                                  "/dashboard/checkin", "/dashboard/checkin/live.json"])
@pytest.mark.sqlite_only
def test_advocates_and_visitors_are_kept_out(client: FlaskClient, as_advocate: FlaskClient,
                                             path: str) -> None:
    assert as_advocate.get(path).status_code == 403
    visitor = client.get(path)
    assert visitor.status_code == 302 and visitor.headers["Location"].startswith("/login")
    assert client.get(path, headers={"Accept": "application/json"}).status_code == 403


def test_admins_may_run_events(as_admin: FlaskClient) -> None:
    assert as_admin.get("/dashboard/events").status_code == 200


def test_another_sites_event_is_not_found(app: Flask, as_coordinator: FlaskClient) -> None:
    with get_db(app).transaction() as session:
        other = gen_site(session, "other-site")
        event = gen_event(session, other)
        event_id, slot_id = event.public_id, event.slots[0].public_id
    assert as_coordinator.get(f"/dashboard/events/{event_id}").status_code == 404
    assert as_coordinator.get(f"/dashboard/events/{event_id}/roster.csv").status_code == 404
    html = as_coordinator.get("/dashboard/events").get_data(as_text=True)
    resp = as_coordinator.post(f"/dashboard/events/{event_id}/slots/{slot_id}/cancel",
                               data={"csrf_token": csrf_token(html)})
    assert resp.status_code == 404


@pytest.mark.sqlite_only
def test_posts_need_the_csrf_token(app: Flask, as_coordinator: FlaskClient, site: Any) -> None:
    with get_db(app).transaction() as session:
        event = gen_event(session, session.get(Site, site.id))  # type: ignore[arg-type]
        event_id = event.public_id
    resp = as_coordinator.post(f"/dashboard/events/{event_id}/cancel", data={})
    assert resp.status_code == 400
    assert _event(app, event_id).cancelled is False


@pytest.mark.sqlite_only
def test_pages_speak_spanish(as_coordinator: FlaskClient) -> None:
    event_id = _new_event(as_coordinator)
    post_form(as_coordinator, "/language", {"lang": "es", "next": "/dashboard/events"},
              page="/dashboard/events")
    html = as_coordinator.get(f"/dashboard/events/{event_id}").get_data(as_text=True)
    assert "Vacuna contra la gripe" in html and "Añadir turnos" in html
