"""Every authenticated endpoint refuses a missing, malformed, unknown or revoked device token."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from onsite_server.api import registry
from onsite_server.db import get_db
from onsite_server.models import Kiosk, Site
from onsite_server.services.pairing import revoke_kiosk

from ..helpers import (
    auth,
    gen_event,
    gen_site,
    identified_member,
    new_key,
    pair_kiosk,
    submission_item,
)

# Device-token checks: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only

PROTECTED = [op for op in registry.operations if op.auth]


def _url(path: str) -> str:
    return "/api/v1" + re.sub(r"<[^>]+>", "00000000-0000-4000-8000-000000000000", path)


def test_every_operation_but_pairing_needs_a_token() -> None:
    assert {op.path for op in registry.operations if not op.auth} == {"/pair"}
    assert PROTECTED, "no protected operations registered"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "},
     {"Authorization": "Bearer not-a-real-token"}],
    ids=["missing", "wrong-scheme", "empty", "unknown"],
)
def test_bad_tokens_refused_everywhere(client: Any, headers: dict[str, str]) -> None:
    for op in PROTECTED:
        resp = client.open(_url(op.path), method=op.method, json={}, headers=headers)
        assert resp.status_code == 401, (op.method, op.path, resp.status_code)
        assert resp.mimetype == "application/problem+json"
        assert "Bearer" in resp.headers["WWW-Authenticate"]


def test_revoked_token_refused_everywhere(app: Any, client: Any, kiosk: dict[str, Any]) -> None:
    with get_db(app).transaction() as session:
        row = session.scalars(select(Kiosk).where(Kiosk.public_id == kiosk["kiosk_id"])).one()
        revoke_kiosk(session, row)
    for op in PROTECTED:
        resp = client.open(_url(op.path), method=op.method, json={}, headers=auth(kiosk["token"]))
        assert resp.status_code == 401, (op.method, op.path)


def test_other_site_kiosk_cannot_reach_this_sites_data(app: Any, client: Any, site: Any,
                                                       kiosk: dict[str, Any]) -> None:
    """A valid token of another site's kiosk is refused on every call that names our data."""
    with get_db(app).transaction() as session:
        here = session.get(Site, site.id)
        assert here is not None
        event = gen_event(session, here, slots=1, capacity=5)
        slot_id = event.slots[0].public_id
        other = gen_site(session, "other-site")
        other_slug = other.slug
    _, ref = identified_member(app, site, kiosk, employee_id="E-HERE",
                               birth_date=date(1980, 1, 15))
    booked = client.post("/api/v1/bookings", headers=auth(kiosk["token"]),
                         json={"idempotency_key": new_key(), "member_ref": ref,
                               "slot_id": slot_id})
    assert booked.status_code == 201
    booking_id = booked.get_json()["booking_id"]

    stranger = pair_kiosk(app, client, other_slug)
    h = auth(stranger["token"])
    catalog = client.get("/api/v1/catalog", headers=h).get_json()
    assert slot_id not in str(catalog)
    assert client.post("/api/v1/identify", headers=h,
                       json={"id": "E-HERE", "birth_date": "1980-01-15"}).status_code == 404
    assert client.post("/api/v1/bookings", headers=h, json={
        "idempotency_key": new_key(), "member_ref": ref, "slot_id": slot_id,
    }).status_code in (404, 422)
    assert client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=h,
                       json={"idempotency_key": new_key(), "member_ref": ref}
                       ).status_code in (404, 422)
    assert client.post(f"/api/v1/bookings/{booking_id}/reschedule", headers=h,
                       json={"idempotency_key": new_key(), "slot_id": slot_id,
                             "member_ref": ref}).status_code in (404, 422)
    lookup = client.post("/api/v1/members/bookings/lookup", headers=h, json={"member_ref": ref})
    assert lookup.status_code == 422
    assert lookup.get_json()["errors"][0]["field"] == "member_ref"
    consent = client.post("/api/v1/referrals/consent", headers=h, json={
        "idempotency_key": new_key(), "member_ref": ref, "consent": True,
        "contact_method": "email", "contact_time": "any", "email": "x@example.com",
    })
    assert consent.status_code == 422
    answers = {str(i): 0 for i in range(1, 10)}
    sub = client.post("/api/v1/submissions", headers=h,
                      json={"items": [submission_item("phq9", answers, member_ref=ref)]})
    assert sub.status_code == 200
    item = sub.get_json()["results"][0]
    assert item["status"] == "rejected"
    assert item["problem"]["errors"][0]["field"].endswith("member_ref")
