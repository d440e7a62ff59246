"""A NUL character in a query or form field is refused naming the field, on both databases.

PostgreSQL cannot store one in text: the audit log's filter and the kiosk pairing form
answered 500 there (found by sending malformed values to every dashboard route).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func, select

from onsite_server.db import get_db
from onsite_server.models import PairingCode

from .helpers import post_form


def test_a_query_field_with_a_nul_is_refused_naming_it(as_admin: Any) -> None:
    answer = as_admin.get("/dashboard/admin/audit", query_string={"actor": "a\x00b"})
    assert answer.status_code == 422
    assert "actor: must not contain a NUL character" in answer.get_data(as_text=True)
    assert as_admin.get("/dashboard/admin/audit", query_string={"actor": "ab"}).status_code == 200


def test_a_form_field_with_a_nul_is_refused_and_nothing_is_stored(app: Flask,
                                                                  as_admin: Any) -> None:
    answer = post_form(as_admin, "/dashboard/fleet/pair", {"label": "Lobby\x00"},
                       page="/dashboard/fleet")
    assert answer.status_code == 422
    assert "label: must not contain a NUL character" in answer.get_data(as_text=True)
    with get_db(app).transaction() as session:
        assert session.scalar(select(func.count()).select_from(PairingCode)) == 0


def test_the_api_answers_a_problem_document(client: Any) -> None:
    answer = client.get("/healthz", query_string={"probe": "\x00"},
                        headers={"Accept": "application/json"})
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == [{"field": "probe",
                                            "message": "must not contain a NUL character"}]
