"""Pairing: a single-use, expiring code traded for a device token stored only as a hash."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from onsite_server.api import hash_token
from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import AuditLog, Kiosk, PairingCode, Site
from onsite_server.services.pairing import FAILED_ACTION, issue_pairing_code, revoke_kiosk

from ..helpers import auth


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


@pytest.mark.sqlite_only
def test_missing_field_named(client: Any) -> None:
    resp = client.post("/api/v1/pair", json={})
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["field"] == "pairing_code"


@pytest.mark.sqlite_only
def test_unknown_field_named(client: Any) -> None:
    resp = client.post("/api/v1/pair", json={"pairing_code": "ABCD-EFGH", "extra": 1})
    assert resp.status_code == 422
    assert {"field": "extra", "message": "Extra inputs are not permitted"} in \
        resp.get_json()["errors"]


@pytest.mark.sqlite_only
def test_not_json_is_415(client: Any) -> None:
    resp = client.post("/api/v1/pair", data="pairing_code=x")
    assert resp.status_code == 415


@pytest.mark.sqlite_only
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


# --- Guessing: failed pairings are limited per address and overall, and audited ---------------

def _limits(app: Any, *, per_address: int = 3, total: int = 100) -> None:
    override(app, PAIRING_FAILURES_PER_ADDRESS=per_address, PAIRING_FAILURES_TOTAL=total,
                  PAIRING_FAILURE_WINDOW_SECONDS=900)


def _try(client: Any, code: str, address: str = "10.0.0.1") -> Any:
    return client.post("/api/v1/pair", json={"pairing_code": code},
                       environ_base={"REMOTE_ADDR": address})


def _failures(app: Any) -> list[AuditLog]:
    with get_db(app).transaction() as session:
        rows = list(session.scalars(select(AuditLog).where(AuditLog.action == FAILED_ACTION)
                                    .order_by(AuditLog.id)))
        session.expunge_all()
    return rows


def test_guessing_from_one_address_is_limited(app: Any, client: Any, site: Any) -> None:
    _limits(app, per_address=3)
    for _ in range(3):
        assert _try(client, "WRNG-GUES").status_code == 400
    limited = _try(client, "WRNG-GUES")
    assert limited.status_code == 429
    assert limited.content_type == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 900
    assert limited.get_json()["status"] == 429
    # While limited, even the right code is refused: a guesser learns nothing.
    good = _code(app, site)
    assert _try(client, good).status_code == 429
    # Another address is not held back by this one's failures.
    assert _try(client, good, address="10.0.0.2").status_code == 201
    # Refused attempts are not written: a flood cannot fill the audit log.
    assert len(_failures(app)) == 3


def test_guessing_from_many_addresses_is_limited_overall(app: Any, client: Any,
                                                         site: Any) -> None:
    _limits(app, per_address=3, total=5)
    for i in range(5):
        assert _try(client, "WRNG-GUES", address=f"10.0.1.{i}").status_code == 400
    fresh = _try(client, _code(app, site), address="10.0.2.1")
    assert fresh.status_code == 429 and "Retry-After" in fresh.headers


def test_failures_leave_the_window(app: Any, client: Any, site: Any) -> None:
    _limits(app, per_address=2)
    for _ in range(2):
        _try(client, "WRNG-GUES")
    assert _try(client, "WRNG-GUES").status_code == 429
    with get_db(app).transaction() as session:
        for row in session.scalars(select(AuditLog).where(AuditLog.action == FAILED_ACTION)):
            row.at -= timedelta(seconds=901)
    assert _try(client, _code(app, site)).status_code == 201


def test_each_failed_pairing_is_audited_without_the_code(app: Any, client: Any,
                                                        site: Any) -> None:
    used = _code(app, site)
    assert _try(client, used).status_code == 201
    expired = _code(app, site)
    with get_db(app).transaction() as session:
        for row in session.scalars(select(PairingCode).where(PairingCode.used_at.is_(None))):
            row.expires_at = row.created_at - timedelta(seconds=1)
    assert _try(client, "ABCD-EFGH", address="10.9.8.7").status_code == 400
    assert _try(client, used).status_code == 400
    assert _try(client, expired).status_code == 400
    rows = _failures(app)
    assert [r.detail["reason"] for r in rows] == ["unknown", "used", "expired"]
    assert [r.actor for r in rows] == ["address:10.9.8.7", "address:10.0.0.1",
                                       "address:10.0.0.1"]
    for row in rows:
        text = repr((row.actor, row.subject, row.detail, row.note)).upper()
        for secret in ("ABCD", "EFGH", used[:4], used[5:], expired[:4], expired[5:]):
            assert secret not in text


def test_concurrent_guesses_cannot_overshoot_the_limit(app: Any, site: Any) -> None:
    _limits(app, per_address=4)
    statuses: list[int] = []

    def guess() -> None:
        statuses.append(_try(app.test_client(), "WRNG-GUES").status_code)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [400] * 4 + [429] * 8
    assert len(_failures(app)) == 4
