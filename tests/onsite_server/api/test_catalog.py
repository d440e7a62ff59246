"""Catalog: instruments, this site's upcoming events with seats, settings, and ETag/304."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import Event, Site, Slot
from shared.assessments import load_definition
from shared.schemas.catalog import CatalogResponse

from ..helpers import auth, gen_event, gen_site

URL = "/api/v1/catalog"


def _get(client: Any, kiosk: dict[str, Any], etag: str | None = None) -> Any:
    headers = auth(kiosk["token"])
    if etag is not None:
        headers["If-None-Match"] = etag
    return client.get(URL, headers=headers)


@pytest.fixture
def events(app: Any, site: Any) -> dict[str, Any]:
    """An upcoming event with a past, a cancelled and two future slots; noise elsewhere."""
    now = datetime.now(UTC).replace(microsecond=0)
    with get_db(app).transaction() as session:
        home = session.get(Site, site.id)
        upcoming = gen_event(session, home, slots=2, capacity=5, title="Flu shot clinic")
        upcoming.title_es = "Clínica de vacuna contra la gripe"
        upcoming.description_es = "Traiga su tarjeta del seguro."
        first = upcoming.slots[0]
        first.booked_count = 3
        session.add(Slot(event_id=upcoming.id, start_at=now - timedelta(hours=1),
                         end_at=now - timedelta(minutes=45), capacity=5))
        session.add(Slot(event_id=upcoming.id, start_at=now + timedelta(days=3),
                         end_at=now + timedelta(days=3, minutes=15), capacity=5, cancelled=True))
        cancelled = gen_event(session, home, title="Cancelled coaching")
        cancelled.cancelled = True
        gen_event(session, home, start=now - timedelta(days=1), title="Yesterday's screening")
        elsewhere = gen_site(session, "elsewhere")
        gen_event(session, elsewhere, title="Other site's clinic")
        return {"upcoming": upcoming.public_id, "first_slot": first.public_id,
                "other_site_id": elsewhere.id}


def test_catalog_lists_enabled_instruments_at_current_version(
        app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    resp = _get(client, kiosk)
    assert resp.status_code == 200
    data = resp.get_json()
    CatalogResponse.model_validate(data)
    enabled = app.config["ENABLED_INSTRUMENTS"]
    assert [i["id"] for i in data["instruments"]] == enabled
    for item in data["instruments"]:
        assert item["definition"] == load_definition(item["id"])
        assert item["version"] == item["definition"]["version"]


def test_catalog_events_only_upcoming_of_this_site(client: Any, kiosk: dict[str, Any],
                                                   events: dict[str, Any]) -> None:
    data = _get(client, kiosk).get_json()
    assert [e["id"] for e in data["events"]] == [events["upcoming"]]
    event = data["events"][0]
    assert event["title"] == {"en": "Flu shot clinic", "es": "Clínica de vacuna contra la gripe"}
    # Only Spanish was given: the kiosk falls back to it for English readers (shared.i18n.pick).
    assert event["description"] == {"es": "Traiga su tarjeta del seguro."}
    assert len(event["slots"]) == 2  # the past and the cancelled slot are left out
    first = event["slots"][0]
    assert first["id"] == events["first_slot"]
    assert (first["capacity"], first["seats_left"]) == (5, 2)
    assert first["start_at"].endswith("Z")
    start = datetime.fromisoformat(first["start_at"].replace("Z", "+00:00"))
    assert start > datetime.now(UTC)
    assert datetime.fromisoformat(first["start_local"]) == start


def test_slot_times_in_utc_and_site_local_across_dst(app: Any, client: Any, site: Any,
                                                     kiosk: dict[str, Any]) -> None:
    # America/New_York is UTC-5 in January and UTC-4 in July (US DST, Energy Policy Act 2005).
    with get_db(app).transaction() as session:
        home = session.get(Site, site.id)
        gen_event(session, home, start=datetime(2099, 1, 15, 14, 0, tzinfo=UTC), title="Winter")
        gen_event(session, home, start=datetime(2099, 7, 15, 13, 0, tzinfo=UTC), title="Summer")
    data = _get(client, kiosk).get_json()
    assert data["site"]["timezone"] == "America/New_York"
    slots = {e["title"]["en"]: e["slots"][0] for e in data["events"]}
    assert slots["Winter"]["start_at"] == "2099-01-15T14:00:00Z"
    assert slots["Winter"]["start_local"] == "2099-01-15T09:00:00-05:00"
    assert slots["Summer"]["start_at"] == "2099-07-15T13:00:00Z"
    assert slots["Summer"]["start_local"] == "2099-07-15T09:00:00-04:00"


def test_catalog_settings_and_crisis(app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    data = _get(client, kiosk).get_json()
    # Starting values from DESIGN.md section 6.
    assert data["settings"]["timeouts"] == {
        "idle_seconds": 90, "idle_countdown_seconds": 20, "session_cap_seconds": 900,
        "crisis_screen_seconds": 300, "sync_seconds": 30,
    }
    assert data["settings"]["languages"] == ["en", "es"]
    assert data["settings"]["units"] == "imperial"  # US sites: feet, inches and pounds
    assert data["settings"]["branding"] == {"name": app.config["BRANDING_NAME"],
                                            "color": app.config["BRANDING_COLOR"]}
    crisis = {c["trigger"]: c for c in data["crisis"]}
    # DESIGN.md 3.6: item 9 -> 988 Lifeline (call or text) and 911; hypertensive crisis -> 911.
    phq = crisis["phq9_item9"]
    assert any(r.get("phone") == "988" and r.get("sms") == "988" for r in phq["resources"])
    assert any(r.get("phone") == "911" for r in phq["resources"])
    assert any(r.get("phone") == "911" for r in crisis["hypertensive_crisis"]["resources"])
    assert "chest pain" in crisis["hypertensive_crisis"]["text"]["en"]
    assert set(phq["text"]) == {"en", "es"}


def test_site_settings_override_branding(app: Any, client: Any, site: Any,
                                         kiosk: dict[str, Any]) -> None:
    with get_db(app).transaction() as session:
        session.get(Site, site.id).settings = {"branding_name": "Acme Health",
                                               "branding_color": "#112233", "units": "metric"}
    data = _get(client, kiosk).get_json()
    assert data["settings"]["branding"] == {"name": "Acme Health", "color": "#112233"}
    assert data["settings"]["units"] == "metric"


def test_catalog_carries_the_retention_the_server_applies(app: Any, client: Any,
                                                          kiosk: dict[str, Any]) -> None:
    # The kiosk's privacy notice says how long answers are kept: the server's own figure.
    assert _get(client, kiosk).get_json()["settings"]["retention_days"] == 90
    override(app, RETENTION_DAYS=30)
    assert _get(client, kiosk).get_json()["settings"]["retention_days"] == 30


def test_etag_is_strong_hash_of_body_and_304_when_current(client: Any, kiosk: dict[str, Any],
                                                          events: dict[str, Any]) -> None:
    first = _get(client, kiosk)
    etag = first.headers["ETag"]
    assert etag == '"' + hashlib.sha256(first.data).hexdigest() + '"'
    assert first.headers["Cache-Control"] == "no-cache"
    for sent in (etag, "W/" + etag, f'"stale", {etag}', "*"):
        again = _get(client, kiosk, sent)
        assert again.status_code == 304, sent
        assert again.data == b""
        assert again.headers["ETag"] == etag
    assert _get(client, kiosk, '"stale"').status_code == 200
    assert _get(client, kiosk).data == first.data  # deterministic body


def _etag(client: Any, kiosk: dict[str, Any]) -> str:
    resp = _get(client, kiosk)
    assert resp.status_code == 200
    return str(resp.headers["ETag"])


def test_etag_changes_when_seats_slots_or_events_change(app: Any, client: Any,
                                                        kiosk: dict[str, Any],
                                                        events: dict[str, Any]) -> None:
    seen = {_etag(client, kiosk)}
    db = get_db(app)
    with db.transaction() as session:
        session.execute(update(Slot).where(Slot.public_id == events["first_slot"])
                        .values(booked_count=4))
    seen.add(_etag(client, kiosk))
    with db.transaction() as session:
        event = session.scalars(select(Event).where(Event.public_id == events["upcoming"])).one()
        start = datetime.now(UTC) + timedelta(days=5)
        session.add(Slot(event_id=event.id, start_at=start, end_at=start + timedelta(minutes=15),
                         capacity=2))
    seen.add(_etag(client, kiosk))
    with db.transaction() as session:
        session.execute(update(Event).where(Event.public_id == events["upcoming"])
                        .values(cancelled=True))
    seen.add(_etag(client, kiosk))
    assert len(seen) == 4


def test_other_site_changes_do_not_change_etag(app: Any, client: Any, kiosk: dict[str, Any],
                                               events: dict[str, Any]) -> None:
    before = _etag(client, kiosk)
    with get_db(app).transaction() as session:
        session.execute(update(Event).where(Event.site_id == events["other_site_id"])
                        .values(title="Renamed elsewhere"))
        other = session.get(Site, events["other_site_id"])
        gen_event(session, other, title="Another elsewhere")
    assert _etag(client, kiosk) == before


@pytest.mark.sqlite_only
def test_catalog_needs_a_device_token(client: Any) -> None:
    resp = client.get(URL)
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"


@pytest.mark.sqlite_only
def test_if_none_match_documented(client: Any) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/catalog"]["get"]
    assert {"name": "If-None-Match", "in": "header"}.items() <= op["parameters"][0].items()
    assert "304" in op["responses"]
