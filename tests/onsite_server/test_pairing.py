"""Pairing: a single-use, expiring code traded for a device token stored only as a hash."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from onsite_server.api import hash_token
from onsite_server.db import get_db
from onsite_server.models import Kiosk, PairingCode, Site
from onsite_server.services.pairing import issue_pairing_code, revoke_kiosk

from .helpers import auth


def _code(app: Any, site: Any) -> str:
    with get_db(app).transaction() as session:
        return issue_pairing_code(session, session.get(Site, site.id))


def test_pair_returns_token_and_stores_only_hash(app: Any, client: Any, site: Any) -> None:
    resp = client.post("/api/v1/pair", json={"pairing_code": _code(app, site)})
    assert resp.status_code == 201
    data = resp.get_json()
    assert data["site"] == site.slug and len(data["token"]) >= 40
    with get_db(app).transaction() as session:
        kiosk = session.scalars(select(Kiosk).where(Kiosk.public_id == data["kiosk_id"])).one()
        assert kiosk.token_hash == hash_token(data["token"])
        assert data["token"] not in repr(kiosk.__dict__)


def test_code_is_single_use(app: Any, client: Any, site: Any) -> None:
    code = _code(app, site)
    assert client.post("/api/v1/pair", json={"pairing_code": code}).status_code == 201
    again = client.post("/api/v1/pair", json={"pairing_code": code})
    assert again.status_code == 400
    assert again.get_json()["errors"][0]["field"] == "pairing_code"


def test_code_accepts_lowercase_and_separators(app: Any, client: Any, site: Any) -> None:
    code = _code(app, site).lower().replace("-", " ")
    assert client.post("/api/v1/pair", json={"pairing_code": code}).status_code == 201


def test_expired_code_refused(app: Any, client: Any, site: Any) -> None:
    code = _code(app, site)
    with get_db(app).transaction() as session:
        row = session.scalars(select(PairingCode)).one()
        session.execute(update(PairingCode).where(PairingCode.id == row.id)
                        .values(expires_at=row.created_at - timedelta(seconds=1)))
    assert client.post("/api/v1/pair", json={"pairing_code": code}).status_code == 400


def test_missing_field_named(client: Any) -> None:
    resp = client.post("/api/v1/pair", json={})
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["field"] == "pairing_code"


def test_unknown_field_named(client: Any) -> None:
    resp = client.post("/api/v1/pair", json={"pairing_code": "ABCD-EFGH", "extra": 1})
    assert resp.status_code == 422
    assert {"field": "extra", "message": "Extra inputs are not permitted"} in \
        resp.get_json()["errors"]


def test_not_json_is_415(client: Any) -> None:
    resp = client.post("/api/v1/pair", data="pairing_code=x")
    assert resp.status_code == 415


def test_invalid_json_is_400(client: Any) -> None:
    resp = client.post("/api/v1/pair", data="{not json", content_type="application/json")
    assert resp.status_code == 400
    assert resp.get_json()["errors"][0]["field"] == "body"


def test_revoked_token_refused_at_once(app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    with get_db(app).transaction() as session:
        row = session.scalars(select(Kiosk).where(Kiosk.public_id == kiosk["kiosk_id"])).one()
        revoke_kiosk(session, row)
    resp = client.post("/api/v1/heartbeat", json={}, headers=auth(kiosk["token"]))
    assert resp.status_code in (401, 404)  # 404 only until the heartbeat endpoint exists
