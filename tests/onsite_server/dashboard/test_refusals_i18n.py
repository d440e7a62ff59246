"""A service's refusal shows in the page's language; the services' own text stays English."""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from onsite_server.dashboard.i18n import refusal
from onsite_server.models import utcnow
from onsite_server.services.errors import N_, Msg, ServiceError, problem_document

from .helpers import post_form

# Translated refusals: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only


def _spanish(client: FlaskClient, page: str) -> None:
    resp = post_form(client, "/language", {"lang": "es", "next": page}, page=page)
    assert resp.status_code == 302


def _text(resp: Any) -> str:
    return html_lib.unescape(resp.get_data(as_text=True))


def _error_of(page: str, field: str) -> str:
    """The text of the error shown next to a field (tied to it by id)."""
    found = re.search(rf'id="{field}-error"[^>]*>(.*?)</', page, re.S)
    assert found, f"no error next to {field}"
    return " ".join(found.group(1).split())


def test_a_message_reads_as_english_and_keeps_its_msgid() -> None:
    message = N_("must be between %(low)d and %(high)d seconds", low=30, high=600)
    assert message == "must be between 30 and 600 seconds"
    assert isinstance(message, str) and isinstance(message, Msg)
    assert message.msgid == "must be between %(low)d and %(high)d seconds"
    exc = ServiceError("invalid", "Invalid request", [{"field": "idle_seconds",
                                                      "message": message}])
    body = problem_document(422, exc.title, exc.detail, exc.errors)
    assert body["detail"] == "idle_seconds: must be between 30 and 600 seconds"


def test_refusal_translates_msgid_and_nested_arguments(app: Flask) -> None:
    status = N_("checked in")
    message = N_("the booking is %(status)s and cannot be cancelled", status=status)
    with app.test_request_context(headers={"Accept-Language": "es"}):
        assert refusal(message) == "la reserva está registrada y no se puede cancelar"
        assert refusal("is required") == "es obligatorio"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert refusal(message) == "the booking is checked in and cannot be cancelled"


def test_slot_generation_refusal_in_spanish(as_coordinator: FlaskClient, site: Any) -> None:
    event = post_form(as_coordinator, "/dashboard/events/new",
                      {"title": "Flu shot clinic", "kind": "flu_shot", "location": "Lobby"})
    event_page = event.headers["Location"]
    _spanish(as_coordinator, event_page)
    yesterday = (utcnow().astimezone(ZoneInfo(site.timezone)) - timedelta(days=1)).date()
    resp = post_form(as_coordinator, f"{event_page}/slots",
                     {"day": yesterday.isoformat(), "start": "09:00", "end": "12:00",
                      "every": "15", "capacity": "2"}, page=event_page)
    page = _text(resp)
    assert resp.status_code == 422
    assert _error_of(page, "start") == "ya pasó"
    assert "is in the past" not in page


def test_slot_overlap_refusal_in_spanish_keeps_its_argument(as_coordinator: FlaskClient,
                                                            site: Any) -> None:
    event = post_form(as_coordinator, "/dashboard/events/new",
                      {"title": "Coaching", "kind": "coaching", "location": "Room 2"})
    event_page = event.headers["Location"]
    tomorrow = (utcnow().astimezone(ZoneInfo(site.timezone)) + timedelta(days=1)).date()
    run = {"day": tomorrow.isoformat(), "start": "09:00", "end": "10:00", "every": "30",
           "capacity": "1"}
    assert post_form(as_coordinator, f"{event_page}/slots", run,
                     page=event_page).status_code == 302
    _spanish(as_coordinator, event_page)
    resp = post_form(as_coordinator, f"{event_page}/slots", {**run, "start": "09:30"},
                     page=event_page)
    page = _text(resp)
    assert _error_of(page, "start") == \
        f"se superpone con el turno de las {tomorrow.isoformat()} 09:30"
    assert "overlaps" not in page


def test_invitation_refusal_in_spanish(as_admin: FlaskClient, staff: Any) -> None:
    _spanish(as_admin, "/dashboard/admin/users")
    taken = staff["coordinator"].email
    resp = post_form(as_admin, "/dashboard/admin/users",
                     {"email": taken, "name": "Twin", "role": "coordinator", "advocate": ""})
    page = _text(resp)
    assert _error_of(page, "email") == f"ya existe un usuario con el correo {taken}"
    assert "exists" not in page


def test_settings_refusal_in_spanish(as_admin: FlaskClient) -> None:
    _spanish(as_admin, "/dashboard/admin/settings")
    resp = post_form(as_admin, "/dashboard/admin/settings",
                     {"timezone": "America/New_York", "enabled_instruments": ["phq9"],
                      "idle_seconds": "5"})
    page = _text(resp)
    assert _error_of(page, "idle_seconds") == "debe estar entre 30 y 600 segundos"
    assert "must be between" not in page


def test_roster_row_errors_in_spanish(as_admin: FlaskClient) -> None:
    _spanish(as_admin, "/dashboard/admin/roster")
    body = ("employee_id,member_id,first_name,last_name,birth_date\n"
            "E1,M1,Ana,Ruiz,1980-02-30\n")
    html = as_admin.get("/dashboard/admin/roster").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert token
    resp = as_admin.post("/dashboard/admin/roster", data={
        "csrf_token": token.group(1), "file": (BytesIO(body.encode()), "roster.csv")},
        content_type="multipart/form-data")
    page = _text(resp)
    assert "no es una fecha real escrita como AAAA-MM-DD" in page
    assert "is not a real date" not in page


def test_error_pages_speak_spanish(as_admin: FlaskClient) -> None:
    _spanish(as_admin, "/dashboard/")
    no_token = as_admin.post("/dashboard/admin/settings", data={})
    assert no_token.status_code == 400
    page = _text(no_token)
    assert "No se pudo usar la solicitud" in page and "Faltaba el código de seguridad" in page
    assert "CSRF token is missing" not in page
    wrong_method = as_admin.put("/dashboard/admin/settings")
    assert wrong_method.status_code == 405
    assert "No disponible de esta forma" in _text(wrong_method)
    assert "<title>405 No disponible de esta forma" in _text(wrong_method)
