"""Every authenticated endpoint refuses a missing, malformed, unknown or revoked device token."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from onsite_server.api import registry
from onsite_server.db import get_db
from onsite_server.models import Kiosk
from onsite_server.services.pairing import revoke_kiosk

from .helpers import auth

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
