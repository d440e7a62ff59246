"""Log-in, the second factor, CSRF, session timeouts, rate limit and the pinned entry point."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import AuditLog, User
from onsite_server.services import users as users_service

from ..helpers import sql_run
from .helpers import PASSWORD, Staff, csrf_token, login, post_form, totp_code

# Log-in, sessions and CSRF: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only


def test_root_sends_a_visitor_straight_to_login(client: FlaskClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/login"
    page = client.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'type="password"' in html
    assert 'name="csrf_token" type="hidden"' in html or 'type="hidden" name="csrf_token"' in html
    assert csrf_token(html)


@pytest.mark.parametrize("target,expected", [
    ("/dashboard/", "/dashboard/"),
    ("https://evil.example/", None),
    ("//evil.example/x", None),
    ("/\\evil.example", None),
    ("javascript:alert(1)", None),
])
def test_next_only_to_a_path_on_this_server(client: FlaskClient, staff: dict[str, Staff],
                                            target: str, expected: str | None) -> None:
    resp = post_form(client, f"/login?next={target}", {"email": staff["coordinator"].email,
                                                       "password": PASSWORD})
    assert resp.status_code == 302
    assert resp.headers["Location"] == (expected or "/dashboard/")


def test_protected_page_redirects_browser_with_next(client: FlaskClient) -> None:
    resp = client.get("/dashboard/")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=/dashboard/"


def test_json_caller_gets_403_not_a_redirect(client: FlaskClient) -> None:
    resp = client.get("/dashboard/", headers={"Accept": "application/json"})
    assert resp.status_code == 403
    assert resp.mimetype == "application/problem+json"


def test_coordinator_logs_in_without_second_factor(client: FlaskClient,
                                                   staff: dict[str, Staff]) -> None:
    resp = login(client, staff["coordinator"])
    assert resp.headers["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


@pytest.mark.parametrize("role,home", [("admin", "/dashboard/"), ("advocate", "/advocate/")])
def test_admin_and_advocate_need_the_second_factor(client: FlaskClient, staff: dict[str, Staff],
                                                   role: str, home: str) -> None:
    who = staff[role]
    resp = post_form(client, "/login", {"email": who.email, "password": who.password})
    assert resp.headers["Location"] == "/login/verify"
    # The password alone opens nothing.
    assert client.get(home).status_code == 302
    wrong = post_form(client, "/login/verify", {"code": "000000"})
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    assert who.totp_secret
    ok = post_form(client, "/login/verify", {"code": totp_code(who.totp_secret)})
    assert ok.headers["Location"] == home
    assert client.get(home).status_code == 200


def test_a_totp_code_works_once(app: Flask, staff: dict[str, Staff]) -> None:
    who = staff["admin"]
    assert who.totp_secret
    code = totp_code(who.totp_secret)
    first, second = app.test_client(), app.test_client()
    for c in (first, second):
        post_form(c, "/login", {"email": who.email, "password": who.password})
    assert post_form(first, "/login/verify", {"code": code}).status_code == 302
    assert post_form(second, "/login/verify", {"code": code}).status_code == 200


def test_recovery_code_works_once(app: Flask, client: FlaskClient,
                                  staff: dict[str, Staff]) -> None:
    who = staff["advocate"]
    with get_db(app).transaction() as session:
        user = session.get(User, who.id)
        assert user is not None
        codes = users_service.new_recovery_codes(user)
    post_form(client, "/login", {"email": who.email, "password": who.password})
    assert post_form(client, "/login/verify", {"code": codes[0]}).status_code == 302
    other = app.test_client()
    post_form(other, "/login", {"email": who.email, "password": who.password})
    assert post_form(other, "/login/verify", {"code": codes[0]}).status_code == 200
    assert post_form(other, "/login/verify", {"code": codes[1].upper()}).status_code == 302


def test_first_log_in_enrols_the_authenticator(app: Flask, client: FlaskClient,
                                               site: Any) -> None:
    from .helpers import gen_staff

    who = gen_staff(app, "admin", site, email="new-admin@test.example", second_factor=False)
    resp = post_form(client, "/login", {"email": who.email, "password": who.password})
    assert resp.headers["Location"] == "/login/enrol"
    page = client.get("/login/enrol").get_data(as_text=True)
    assert "<svg" in page
    with client.session_transaction() as sess:
        secret = sess["pending"]["secret"]
    done = post_form(client, "/login/enrol", {"code": totp_code(secret)})
    assert done.status_code == 200
    assert done.get_data(as_text=True).count("<code>") == users_service.RECOVERY_CODES
    assert client.get("/dashboard/").status_code == 200
    with get_db(app).transaction() as session:
        user = session.get(User, who.id)
        assert user is not None and user.totp_secret == secret


def test_wrong_password_is_refused_logged_and_audited(app: Flask, client: FlaskClient,
                                                      staff: dict[str, Staff],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    resp = post_form(client, "/login", {"email": staff["coordinator"].email,
                                        "password": "not the password"})
    assert resp.status_code == 200
    assert "wrong" in resp.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302
    assert any("log-in failed" in r.getMessage() for r in caplog.records)
    with get_db(app).transaction() as session:
        actions = session.scalars(select(AuditLog.action)).all()
    assert "auth.login_failed" in actions


def test_log_in_is_rate_limited(client: FlaskClient, staff: dict[str, Staff]) -> None:
    who = staff["coordinator"]
    for _ in range(5):
        post_form(client, "/login", {"email": who.email, "password": "wrong password!"})
    # Even the right password is refused now: the account is cooling down.
    resp = post_form(client, "/login", {"email": who.email, "password": who.password})
    assert resp.status_code == 429
    assert "Too many" in resp.get_data(as_text=True)


def test_post_without_csrf_token_is_refused(client: FlaskClient,
                                            staff: dict[str, Staff]) -> None:
    resp = client.post("/login", data={"email": staff["coordinator"].email,
                                       "password": PASSWORD})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302


def test_logged_in_post_without_csrf_token_is_refused(as_coordinator: FlaskClient) -> None:
    assert as_coordinator.post("/logout").status_code == 400
    assert as_coordinator.get("/dashboard/").status_code == 200


def test_kiosk_api_needs_no_csrf_token(client: FlaskClient) -> None:
    resp = client.post("/api/v1/pair", json={"pairing_code": "nope"})
    assert resp.status_code != 400 or "CSRF" not in resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"


def test_session_cookie_flags(client: FlaskClient, staff: dict[str, Staff]) -> None:
    resp = post_form(client, "/login", {"email": staff["coordinator"].email,
                                        "password": PASSWORD})
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _age_session(client: FlaskClient, *, idle: float = 0, since_login: float = 0) -> None:
    with client.session_transaction() as sess:
        sess["seen"] = time.time() - idle
        sess["login_at"] = time.time() - since_login


def test_idle_session_expires_after_30_minutes(as_coordinator: FlaskClient) -> None:
    _age_session(as_coordinator, idle=29 * 60, since_login=29 * 60)
    assert as_coordinator.get("/dashboard/").status_code == 200
    _age_session(as_coordinator, idle=31 * 60, since_login=31 * 60)
    resp = as_coordinator.get("/dashboard/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def test_active_session_expires_after_12_hours(as_coordinator: FlaskClient) -> None:
    _age_session(as_coordinator, idle=60, since_login=12 * 3600 - 60)
    assert as_coordinator.get("/dashboard/").status_code == 200
    _age_session(as_coordinator, idle=60, since_login=12 * 3600 + 60)
    assert as_coordinator.get("/dashboard/").status_code == 302


def test_background_probe_does_not_extend_the_session(as_coordinator: FlaskClient) -> None:
    _age_session(as_coordinator, idle=20 * 60)
    probe = as_coordinator.get("/session").get_json()
    assert probe["logged_in"] and 9 * 60 <= probe["idle_seconds_left"] <= 10 * 60
    again = as_coordinator.get("/session").get_json()
    assert again["idle_seconds_left"] <= probe["idle_seconds_left"]
    html = as_coordinator.get("/dashboard/").get_data(as_text=True)
    extended = as_coordinator.post("/session/extend",
                                   headers={"X-CSRFToken": csrf_token(html)}).get_json()
    assert extended["idle_seconds_left"] > 29 * 60


def test_disabling_a_user_ends_their_session(app: Flask, as_coordinator: FlaskClient,
                                             staff: dict[str, Staff]) -> None:
    with get_db(app).transaction() as session:
        user = session.get(User, staff["coordinator"].id)
        assert user is not None
        users_service.set_active(user, False)
    assert as_coordinator.get("/dashboard/").status_code == 302


def test_logout(as_coordinator: FlaskClient) -> None:
    resp = post_form(as_coordinator, "/logout", page="/dashboard/")
    assert resp.status_code == 302
    assert as_coordinator.get("/dashboard/").status_code == 302


def test_language_switch_to_spanish(client: FlaskClient) -> None:
    post_form(client, "/language", {"lang": "es", "next": "/login"}, page="/login")
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="es">' in html
    assert "Contraseña" in html


def test_error_pages_extend_base(client: FlaskClient) -> None:
    resp = client.get("/no/such/page")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404
    assert 'class="site-header"' in html and "<main" in html
    api = client.get("/api/v1/no-such")
    assert api.mimetype == "application/problem+json"


def test_demo_data_prints_totp_for_second_factor_roles(app: Flask) -> None:
    from onsite_server.demo import load_demo_data

    with get_db(app).transaction() as session:
        summary: dict[str, Any] = load_demo_data(session, app.config)
    logins = summary["logins"]
    assert set(logins) == {"admin", "coordinator", "advocate"}
    for role in ("admin", "advocate"):
        assert logins[role]["otpauth_uri"].startswith("otpauth://totp/")
        assert logins[role]["totp_secret"] in logins[role]["otpauth_uri"]
    assert "totp_secret" not in logins["coordinator"]
    staff = Staff(0, "admin", logins["admin"]["email"], logins["admin"]["password"],
                  logins["admin"]["totp_secret"], None, None)
    client = app.test_client()
    login(client, staff)
    assert client.get("/dashboard/").status_code == 200


def test_readme_shows_the_demo_log_ins_per_role() -> None:
    from pathlib import Path

    from onsite_server.demo import DEMO_LOGINS, DEMO_TOTP

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    run_section = readme[readme.index("scripts/run.sh"):]
    for role, (email, password) in DEMO_LOGINS.items():
        row = next(line for line in run_section.splitlines() if line.startswith(f"| {role} "))
        assert email in row and password in row, role
        if role in DEMO_TOTP:
            assert DEMO_TOTP[role] in row


def test_a_health_check_with_a_staff_cookie_leaves_the_session_alone(
        app: Flask, as_coordinator: FlaskClient) -> None:
    """A browser that has the dashboard open sends its cookie to /healthz too (a proxy's or a
    person's check): the answer neither reads the session's row nor counts as activity, so a
    health check never keeps a session alive. (The skip named the endpoint "health", which
    no route has: the route is "health.healthz".)"""
    assert as_coordinator.get("/dashboard/").status_code == 200  # logged in
    with as_coordinator.session_transaction() as before:
        seen_at = before["seen"]
    time.sleep(0.01)  # a renewal would store a later time
    with sql_run(app) as statements:
        answer = as_coordinator.get("/healthz")
    assert answer.status_code == 200
    with as_coordinator.session_transaction() as after:
        assert after["seen"] == seen_at, "the health check counted as activity"
    assert not [s for s in statements if "user_session" in s or "user_account" in s], statements
