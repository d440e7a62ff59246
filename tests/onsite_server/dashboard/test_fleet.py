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
from .site_data import gen_site_data

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
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)),
                                     formats=zxingcpp.BarcodeFormat.QRCode)
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


def test_revoke_a_kiosk_asks_first_naming_what_happens(app: Flask, as_coordinator: FlaskClient,
                                                       site: Any) -> None:
    with get_db(app).transaction() as session:
        kiosk = Kiosk(site_id=site.id, label="Old", place="Lobby", token_hash="c" * 64,
                      outbox_depth=3)
        session.add(kiosk)
        session.flush()
        public_id = kiosk.public_id
    path = f"/dashboard/fleet/{public_id}/revoke"
    listing = as_coordinator.get("/dashboard/fleet").get_data(as_text=True)
    # The list links to the question; no form there revokes in one tap.
    assert f'href="{path}"' in listing and f'action="{path}"' not in listing
    ask = as_coordinator.get(path).get_data(as_text=True)
    assert "Revoke the kiosk “Old”?" in ask and "Lobby" in ask
    assert "3 answers waiting" in ask and "cannot be undone" in ask
    assert "Yes, revoke this kiosk" in ask

    def revoked() -> bool:
        with get_db(app).transaction() as session:
            row = session.scalars(select(Kiosk).where(Kiosk.public_id == public_id)).one()
            return row.revoked_at is not None

    assert not revoked()  # asking changed nothing
    post_form(as_coordinator, path, page=path)
    assert revoked()
    # Once revoked, the question is not asked again.
    assert as_coordinator.get(path).headers["Location"].endswith("/dashboard/fleet")


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


def test_dead_letter_retry(app: Flask, as_admin: FlaskClient, site: Any) -> None:
    data = gen_site_data(app, site, "Here")  # two dead letters: a booking's, a referral's
    page = as_admin.get("/dashboard/sync").get_data(as_text=True)
    assert "referral:Here:v1" in page and "HTTP 422: CrisisHere" in page
    for row_id in (data.ids["dead_referral"], data.ids["dead_booking"]):
        post_form(as_admin, f"/dashboard/sync/{row_id}/retry", page="/dashboard/sync")
        with get_db(app).transaction() as session:
            again = session.get(OutboxMessage, row_id)
            assert again is not None and again.status == "pending"
    assert "No dead letters" in as_admin.get("/dashboard/sync").get_data(as_text=True)


def test_coordinator_cannot_see_sync_health(as_coordinator: FlaskClient) -> None:
    assert as_coordinator.get("/dashboard/sync").status_code == 403


def test_operational_alert_banner_for_admins_until_dismissed(app: Flask, as_admin: FlaskClient,
                                                             as_coordinator: FlaskClient,
                                                             site: Any) -> None:
    from onsite_server.models import Alert

    with get_db(app).transaction() as session:
        alert = Alert(kind="outbox_stuck", site_id=site.id,
                      message="The outbox to central has been stuck for over an hour.")
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


def _key_rows(page: str) -> dict[str, str]:
    """The signing-key table's rows by key id (their text)."""
    table = page.split("QR signing keys", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    found = {}
    for row in rows:
        kid = re.search(r"<code>([0-9a-f]{16})</code>", row)
        if kid:
            found[kid.group(1)] = re.sub(r"<[^>]+>", " ", row)
    return found


def test_sync_health_shows_the_signing_keys_and_whether_central_holds_them(
        app: Flask, as_admin: FlaskClient) -> None:
    from pathlib import Path

    from onsite_server.services.central_keys import push
    from onsite_server.services.signing import KeyStore
    from shared.tokens import Purpose

    keys = KeyStore(Path(app.config["SIGNING_KEY_DIR"]))
    link = keys.current(Purpose.ADVOCATE_LINK).key_id
    rows = _key_rows(as_admin.get("/dashboard/sync").get_data(as_text=True))
    assert "Signs new codes" in rows[link] and "Not yet" in rows[link]

    class Central:
        def transaction(self, bundle: Any) -> Any:
            return {}

    push(Central(), keys, "test-site", (keys.jwks(), []))
    assert "Yes" in _key_rows(as_admin.get("/dashboard/sync").get_data(as_text=True))[link]
    keys.retire(link)
    rows = _key_rows(as_admin.get("/dashboard/sync").get_data(as_text=True))
    assert "Retired: refused everywhere" in rows[link] and "Yes" not in rows[link]
    new = keys.current(Purpose.ADVOCATE_LINK).key_id
    assert "Signs new codes" in rows[new] and "Not yet" in rows[new]


def test_sync_health_says_why_messages_still_wait(app: Flask, as_admin: FlaskClient,
                                                  site: Any) -> None:
    """The stuck-outbox alert sends the admin to this page for the last error: a message that
    waits after a failed try shows it (a refused token here), scoped to the admin's site."""
    here = gen_site_data(app, site, "Here")
    gen_site_data(app, site_of(app, "there"), "There")
    with get_db(app).transaction() as session:
        for key in ("referral:Here:v1", "referral:There:v1"):
            row = session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).one()
            row.status, row.attempts = "pending", 4
            row.last_error = f"POST https://central.example/fhir answered 401: {key} token"
    page = as_admin.get("/dashboard/sync").get_data(as_text=True)
    waiting = page.split("Waiting after an error", 1)[1].split("Dead letters", 1)[0]
    assert "answered 401: referral:Here:v1 token" in waiting
    assert "referral:There:v1" not in page and here.markers["dead_booking"] in page
    with get_db(app).transaction() as session:
        for row in session.scalars(select(OutboxMessage).where(
                OutboxMessage.status == "pending")):
            row.last_error = None
    assert "No message is waiting after an error." in as_admin.get(
        "/dashboard/sync").get_data(as_text=True)
