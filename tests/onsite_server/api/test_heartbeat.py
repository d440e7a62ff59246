"""Heartbeat: a kiosk's version, outbox depth, last sync and free disk, kept for the fleet."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Kiosk

from ..helpers import auth

# Heartbeat validation: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only

URL = "/api/v1/heartbeat"
GOOD = {"app_version": "1.4.2", "outbox_depth": 7, "last_sync_at": "2026-03-08T06:59:30-05:00",
        "free_disk_bytes": 12_345_678_901}


def _kiosk_row(app: Any, public_id: str) -> Kiosk:
    with get_db(app).transaction() as session:
        row = session.scalars(select(Kiosk).where(Kiosk.public_id == public_id)).one()
        session.expunge(row)
    return row


def test_heartbeat_is_stored(app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    before = datetime.now(UTC)
    resp = client.post(URL, json=GOOD, headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["ok"] is True
    server_time = datetime.fromisoformat(data["server_time"].replace("Z", "+00:00"))
    assert server_time.tzinfo is not None and server_time >= before
    row = _kiosk_row(app, kiosk["kiosk_id"])
    assert row.app_version == "1.4.2" and row.outbox_depth == 7
    assert row.free_disk_bytes == 12_345_678_901
    assert row.last_sync_at == datetime(2026, 3, 8, 11, 59, 30, tzinfo=UTC)
    assert row.last_heartbeat_at is not None and row.last_heartbeat_at >= before


def test_never_synced_is_null(app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    resp = client.post(URL, json={**GOOD, "last_sync_at": None}, headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    assert _kiosk_row(app, kiosk["kiosk_id"]).last_sync_at is None


@pytest.mark.parametrize(("change", "field"), [
    ({"outbox_depth": -1}, "outbox_depth"),
    ({"free_disk_bytes": -5}, "free_disk_bytes"),
    ({"last_sync_at": "2026-03-08T06:59:30"}, "last_sync_at"),
    ({"last_sync_at": "yesterday"}, "last_sync_at"),
    ({"app_version": ""}, "app_version"),
    ({"app_version": "v" * 65}, "app_version"),
    ({"battery": 50}, "battery"),
])
def test_bad_heartbeat_names_the_field(client: Any, kiosk: dict[str, Any],
                                       change: dict[str, Any], field: str) -> None:
    resp = client.post(URL, json={**GOOD, **change}, headers=auth(kiosk["token"]))
    assert resp.status_code == 422
    assert field in {e["field"] for e in resp.get_json()["errors"]}


def test_heartbeat_needs_a_device_token(client: Any) -> None:
    assert client.post(URL, json=GOOD).status_code == 401
