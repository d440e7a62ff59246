"""Text as people write it, from the dashboard to central: an event's title with emoji, right-to-
left script, combining marks and joiners reaches central's Appointment intact (trimmed of the
blanks around it); a control character, which a FHIR string may not hold, is refused at the
form, naming the field, instead of dead-lettering the booking at central."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from central_emulator import create_app as create_central
from onsite_server.central import client_from_config
from onsite_server.db import get_db
from onsite_server.fhir import Systems
from onsite_server.models import Event, OutboxMessage, Site
from onsite_server.services import events
from onsite_server.services.signing import KeyStore
from onsite_server.services.sync import SyncSettings, run_cycle

from ...live import serve_in_thread
from ..helpers import auth, identified_member, new_key
from .helpers import post_form

TITLES = {
    "emoji with skin tone and joiners": "Yoga 🧘🏽‍♀️ for 👩‍👩‍👧 families",
    "Arabic and Hebrew": "فحص ضغط الدم — בדיקת לחץ דם",
    "combining marks, not composed": "Cafe\u0301 de\u0301bil e\u0301te\u0301",
    "zero-width joiner and non-joiner": "Devan\u200dagari \u0915\u094d\u200d\u0937 zw\u200cnj",
    "blanks around it": "  \u00a0Flu shots\u2003 ",
    "as long as the form allows": "Ω" * events.TITLE_MAX,
}


@pytest.fixture
def central() -> Iterator[str]:
    """The central emulator, served for real; yields its address."""
    with serve_in_thread(create_central({"TESTING": True, "TOKEN": "t0ken"})) as port:
        yield f"http://127.0.0.1:{port}"


def _new_event(client: FlaskClient, title: str) -> Any:
    return post_form(client, "/dashboard/events/new",
                     {"title": title, "kind": "flu_shot", "location": "Lobby B"})


@pytest.mark.sqlite_only
@pytest.mark.parametrize("kind", list(TITLES))
def test_an_event_title_people_write_reaches_central_intact(
        app: Flask, client: FlaskClient, as_coordinator: FlaskClient, site: Any,
        kiosk: dict[str, Any], central: str, kind: str) -> None:
    title = TITLES[kind]
    resp = _new_event(as_coordinator, title)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    with get_db(app).transaction() as session:
        event = session.scalars(select(Event)).one()
        here = session.get(Site, site.id)
        assert here is not None
        slot = events.add_slots(session, event, dt.date.today() + dt.timedelta(days=2),
                                dt.time(9), 1, 15, 5, events.site_zone(here), "test")[0]
        slot_id = slot.public_id
    _, ref = identified_member(app, site, kiosk)
    booked = client.post("/api/v1/bookings", headers=auth(kiosk["token"]), json={
        "idempotency_key": new_key(), "member_ref": ref, "slot_id": slot_id})
    assert booked.status_code == 201, booked.get_json()
    sender = client_from_config({"CENTRAL_URL": central + "/fhir", "CENTRAL_TOKEN": "t0ken",
                                 "CENTRAL_ALLOW_INSECURE_HTTP": True})
    settings = SyncSettings(systems=Systems("https://fhir.example/id"), site="test-site",
                            keys=KeyStore(Path(app.config["SIGNING_KEY_DIR"])), worker_id="w")
    report = run_cycle(get_db(app).transaction, sender, settings)
    assert report.dead == 0 and report.sent >= 1, report
    with get_db(app).transaction(write=False) as session:
        assert {r.status for r in session.scalars(select(OutboxMessage))} == {"sent"}
    found = requests.get(f"{central}/fhir/Appointment", timeout=10,
                         headers={"Authorization": "Bearer t0ken"}).json()["entry"]
    (appointment,) = [e["resource"] for e in found]
    assert appointment["description"] == title.strip()
    # Not normalised on the way: the member sees at central what the coordinator wrote.
    assert unicodedata.is_normalized("NFC", title) == unicodedata.is_normalized(
        "NFC", appointment["description"])


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("field", "value"), [
    ("title", "Flu\x0bshots"), ("title", "Flu shots\x1b[31m"), ("location", "Lobby\x0cB"),
    ("title_es", "Vacuna\x7f"), ("description", "Bring your card\x08"),
])
def test_a_control_character_is_refused_at_the_form_naming_the_field(
        app: Flask, as_coordinator: FlaskClient, field: str, value: str) -> None:
    data = {"title": "Flu shots", "kind": "flu_shot", field: value}
    resp = post_form(as_coordinator, "/dashboard/events/new", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and f'id="{field}-error"' in html, html[:2000]
    assert "contains control characters" in html
    with get_db(app).transaction(write=False) as session:
        assert session.scalars(select(Event)).first() is None


def test_tabs_and_line_breaks_in_a_description_are_kept() -> None:
    cleaned = events.EventInput(title="Flu", description="Line one\r\n\tLine two").cleaned()
    assert cleaned.description == "Line one\r\n\tLine two"


@pytest.mark.sqlite_only
def test_text_stored_before_it_was_checked_is_dead_lettered_saying_it_never_left(
        app: Flask, site: Any) -> None:
    """An event titled before titles were checked: its booking cannot be valid FHIR. The
    admin's alert says it never left this server (not "refused by central") and names the
    element, so the title can be fixed and the message retried."""
    from onsite_server.models import Alert
    from onsite_server.services import bookings

    from ..helpers import gen_event, gen_member
    from ..services.test_sync import FakeCentral

    with get_db(app).transaction() as session:
        here = session.get(Site, site.id)
        assert here is not None
        event = gen_event(session, here, title="Flu\x0bshots")
        bookings.book(session, member=gen_member(session, here), slot=event.slots[0],
                      actor="kiosk:t")
    settings = SyncSettings(systems=Systems("https://fhir.example/id"), site="test-site",
                            keys=KeyStore(Path(app.config["SIGNING_KEY_DIR"])), worker_id="w")
    central = FakeCentral()
    report = run_cycle(get_db(app).transaction, central, settings)
    # The booking and its confirmation message both carry the title.
    assert report.dead == 2 and central.bundles == []
    with get_db(app).transaction(write=False) as session:
        messages = [a.message for a in session.scalars(select(Alert).where(
            Alert.kind == "dead_letter"))]
    assert len(messages) == 2
    for message in messages:
        assert "never left this server" in message and "refused by central" not in message
        assert "U+000B" in message
    assert any("resource(Appointment)." in message for message in messages), \
        messages
