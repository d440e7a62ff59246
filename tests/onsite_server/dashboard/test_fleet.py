"""The kiosk fleet: pairing code and QR, stale heartbeats, revoke, sync health and retry."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Kiosk, OutboxMessage, utcnow

from .helpers import post_form, site_of

# The fleet pages: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only


def test_pairing_code_and_its_qr_pair_a_kiosk(client: FlaskClient,
                                              as_coordinator: FlaskClient) -> None:
    import cairosvg
    import zxingcpp
    from PIL import Image

    resp = post_form(as_coordinator, "/dashboard/fleet/pair",
                     {"label": "Lobby", "place": "Lobby B"}, page="/dashboard/fleet")
    html = resp.get_data(as_text=True)
    code = re.search(r'<code class="secret code-big">([A-Z0-9-]+)</code>', html)
    assert code
    svg = re.search(r"(<svg.*?</svg>)", html, re.S)
    assert svg
    png = cairosvg.svg2png(bytestring=svg.group(1).encode(), output_width=600)
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert decoded
    payload = json.loads(decoded[0].text)
    assert payload["pairing_code"] == code.group(1)
    assert payload["server_url"] == "http://localhost"
    paired = client.post("/api/v1/pair", json={"pairing_code": payload["pairing_code"]})
    assert paired.status_code == 201
    listing = as_coordinator.get("/dashboard/fleet").get_data(as_text=True)
    assert "Lobby" in listing


def test_stale_kiosk_is_highlighted(app: Flask, as_coordinator: FlaskClient, site: Any) -> None:
    with get_db(app).transaction() as session:
        session.add(Kiosk(site_id=site.id, label="Quiet one", token_hash="a" * 64,
                          last_heartbeat_at=utcnow() - timedelta(hours=1)))
        session.add(Kiosk(site_id=site.id, label="Busy one", token_hash="b" * 64,
                          last_heartbeat_at=utcnow()))
    html = as_coordinator.get("/dashboard/fleet").get_data(as_text=True)
    rows = re.findall(r"<tr( class=\"stale\")?>\s*<th scope=\"row\">(\w+ one)", html)
    assert ("" if rows[0][1] == "Busy one" else ' class="stale"') == rows[0][0]
    assert dict((name, bool(cls)) for cls, name in rows) == {"Quiet one": True,
                                                             "Busy one": False}


def test_revoke_a_kiosk(app: Flask, as_coordinator: FlaskClient, site: Any) -> None:
    with get_db(app).transaction() as session:
        kiosk = Kiosk(site_id=site.id, label="Old", token_hash="c" * 64)
        session.add(kiosk)
        session.flush()
        public_id = kiosk.public_id
    post_form(as_coordinator, f"/dashboard/fleet/{public_id}/revoke", page="/dashboard/fleet")
    with get_db(app).transaction() as session:
        row = session.scalars(select(Kiosk).where(Kiosk.public_id == public_id)).one()
        assert row.revoked_at is not None


def test_another_sites_kiosk_is_not_found(app: Flask, as_coordinator: FlaskClient) -> None:
    other = site_of(app, "other-site")
    with get_db(app).transaction() as session:
        kiosk = Kiosk(site_id=other.id, label="Theirs", token_hash="d" * 64)
        session.add(kiosk)
        session.flush()
        public_id = kiosk.public_id
    resp = post_form(as_coordinator, f"/dashboard/fleet/{public_id}/revoke",
                     page="/dashboard/fleet")
    assert resp.status_code == 404
    with get_db(app).transaction() as session:
        assert session.scalars(select(Kiosk).where(Kiosk.public_id == public_id)).one()\
            .revoked_at is None


def test_dead_letter_retry(app: Flask, as_admin: FlaskClient) -> None:
    with get_db(app).transaction() as session:
        row = OutboxMessage(kind="referral", key="referral:x:v1", payload={}, status="dead",
                            attempts=3, last_error="HTTP 422: bad")
        session.add(row)
        session.flush()
        row_id = row.id
    page = as_admin.get("/dashboard/sync").get_data(as_text=True)
    assert "referral:x:v1" in page and "HTTP 422: bad" in page
    post_form(as_admin, f"/dashboard/sync/{row_id}/retry", page="/dashboard/sync")
    with get_db(app).transaction() as session:
        again = session.get(OutboxMessage, row_id)
        assert again is not None and again.status == "pending"
    assert "No dead letters" in as_admin.get("/dashboard/sync").get_data(as_text=True)


def test_coordinator_cannot_see_sync_health(as_coordinator: FlaskClient) -> None:
    assert as_coordinator.get("/dashboard/sync").status_code == 403


def test_operational_alert_banner_for_admins_until_dismissed(app: Flask, as_admin: FlaskClient,
                                                             as_coordinator: FlaskClient
                                                             ) -> None:
    from onsite_server.models import Alert

    with get_db(app).transaction() as session:
        alert = Alert(kind="outbox_stuck", message="The outbox to central has been stuck "
                                                   "for over an hour.")
        session.add(alert)
        session.flush()
        alert_id = alert.id
    assert "stuck for over an hour" in as_admin.get("/dashboard/fleet").get_data(as_text=True)
    assert "stuck for over an hour" not in as_coordinator.get("/dashboard/fleet").get_data(
        as_text=True)
    fragment = as_admin.get("/dashboard/crisis/banner?next=/dashboard/fleet")
    assert 'name="next" value="/dashboard/fleet"' in fragment.get_data(as_text=True)
    done = post_form(as_admin, f"/dashboard/alerts/{alert_id}/clear",
                     {"next": "/dashboard/fleet"}, page="/dashboard/fleet")
    assert done.headers["Location"] == "/dashboard/fleet"
    assert "stuck for over an hour" not in as_admin.get("/dashboard/fleet").get_data(
        as_text=True)
