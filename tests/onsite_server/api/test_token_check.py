"""The device-token check: one Core SELECT a request, never cached, its kiosk usable as loaded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from onsite_server.db import get_db
from onsite_server.models import Kiosk
from onsite_server.services.pairing import revoke_kiosk

from ..helpers import auth, orm_queries_run, sql_run, submission_item

URL_SUBMIT = "/api/v1/submissions"
HEARTBEAT = {"app_version": "2.0.0", "outbox_depth": 3, "free_disk_bytes": 1_000}


def test_the_token_check_is_one_core_select_and_its_kiosk_takes_changes(
        app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    with sql_run(app, upper=True) as statements, orm_queries_run() as orm_queries:
        resp = client.post("/api/v1/heartbeat", json=HEARTBEAT, headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    # The kiosk (with its site) comes from one SELECT run as a Core statement: no ORM query.
    assert orm_queries == []
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 1 and "FROM KIOSK JOIN SITE" in selects[0]
    # The kiosk built from that row is the session's own: the heartbeat's change is stored.
    with get_db(app).transaction() as session:
        row = session.scalars(select(Kiosk).where(Kiosk.public_id == kiosk["kiosk_id"])).one()
        assert row.app_version == "2.0.0" and row.outbox_depth == 3


def test_a_kiosk_revoked_between_two_requests_is_refused_at_the_next(
        app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    assert client.post("/api/v1/heartbeat", json=HEARTBEAT,
                       headers=auth(kiosk["token"])).status_code == 200
    with get_db(app).transaction() as session:
        row = session.scalars(select(Kiosk).where(Kiosk.public_id == kiosk["kiosk_id"])).one()
        revoke_kiosk(session, row)
    resp = client.post("/api/v1/heartbeat", json=HEARTBEAT, headers=auth(kiosk["token"]))
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_the_kiosks_site_comes_with_the_token_check(app: Any, client: Any,
                                                    kiosk: dict[str, Any]) -> None:
    # A submission reads the kiosk's site (what it offers): the token check put it in the
    # session already, so the site is not read again.
    answers = {str(i): 1 for i in range(1, 10)} | {"9": 0}
    body = {"items": [submission_item("phq9", answers)]}
    assert client.post(URL_SUBMIT, json=body, headers=auth(kiosk["token"])).status_code == 200
    with sql_run(app, upper=True) as statements:
        body = {"items": [submission_item("phq9", answers)]}
        resp = client.post(URL_SUBMIT, json=body, headers=auth(kiosk["token"]))
    assert resp.status_code == 200 and resp.get_json()["results"][0]["status"] == "accepted"
    assert [s for s in statements if s.startswith("SELECT") and "FROM SITE" in s] == []


def test_a_heartbeat_is_one_update_and_flushes_no_object(
        app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    flushed: list[object] = []

    def on_flush(session: Session, *_args: Any) -> None:
        flushed.extend([*session.dirty, *session.new])

    event.listen(Session, "before_flush", on_flush)
    try:
        with sql_run(app, upper=True) as statements:
            resp = client.post("/api/v1/heartbeat", json=HEARTBEAT,
                               headers=auth(kiosk["token"]))
    finally:
        event.remove(Session, "before_flush", on_flush)
    assert resp.status_code == 200
    assert flushed == []
    assert [s.split(" SET ")[0] for s in statements if s.startswith("UPDATE")] == [
        "UPDATE KIOSK"]
