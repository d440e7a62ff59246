"""Sessions that end on the server and failures counted there: log-out, a copied cookie, a
password change, the second factor's wrong-code count and the lock-out by account and address.

Unlike test_auth.py these run on SQLite and PostgreSQL: the session rows, the counts in the
audit log and their locks (``ratelimit.serialize``) are database behaviour.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import User, UserSession
from onsite_server.services import users as users_service

from .helpers import PASSWORD, Staff, login, post_form, totp_code


def _copy_cookie(app: Flask, source: FlaskClient) -> FlaskClient:
    """A second client holding a copy of source's session cookie, as someone who took it."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = source.get_cookie(name)
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie(name, cookie.value)
    return copy


def test_logout_ends_a_copy_of_the_cookie(app: Flask, as_coordinator: FlaskClient) -> None:
    copy = _copy_cookie(app, as_coordinator)
    assert copy.get("/dashboard/").status_code == 200
    assert post_form(as_coordinator, "/logout", page="/dashboard/").status_code == 302
    resp = copy.get("/dashboard/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    with get_db(app).transaction() as session:
        row = session.scalars(select(UserSession)).one()
    assert row.ended_reason == "logout" and row.ended_at is not None


def test_logout_ends_only_this_browser(app: Flask, auth: Any) -> None:
    desk, laptop = auth.login("coordinator", app.test_client()), \
        auth.login("coordinator", app.test_client())
    post_form(laptop, "/logout", page="/dashboard/")
    assert laptop.get("/dashboard/").status_code == 302
    assert desk.get("/dashboard/").status_code == 200


def test_password_change_ends_every_session(app: Flask, auth: Any,
                                            staff: dict[str, Staff]) -> None:
    desk, laptop = auth.login("coordinator", app.test_client()), \
        auth.login("coordinator", app.test_client())
    with get_db(app).transaction() as session:
        user = session.get(User, staff["coordinator"].id)
        assert user is not None
        users_service.set_password(user, "a new long password")
    assert desk.get("/dashboard/").status_code == 302
    assert laptop.get("/dashboard/").status_code == 302


def test_a_forged_session_id_opens_nothing(app: Flask, as_coordinator: FlaskClient) -> None:
    with as_coordinator.session_transaction() as sess:
        sess["sid"] = "not-a-session-of-ours"
    assert as_coordinator.get("/dashboard/").status_code == 302


def test_wrong_codes_are_counted_on_the_server(app: Flask, client: FlaskClient,
                                               staff: dict[str, Staff]) -> None:
    """Five wrong codes send the user back to the password step, and a replayed cookie from
    just after the password step finds the account locked: the count is not in the cookie."""
    who = staff["admin"]
    assert who.totp_secret
    resp = post_form(client, "/login", {"email": who.email, "password": who.password})
    assert resp.headers["Location"] == "/login/verify"
    replay = _copy_cookie(app, client)
    for attempt in range(5):
        wrong = post_form(client, "/login/verify", {"code": "000000"})
        if attempt < 4:
            assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    assert wrong.status_code == 302 and wrong.headers["Location"] == "/login"
    assert "Too many wrong codes" in client.get("/login").get_data(as_text=True)
    right = post_form(replay, "/login/verify", {"code": totp_code(who.totp_secret)},
                      page="/login")
    assert right.status_code == 302 and right.headers["Location"] == "/login"
    assert replay.get("/dashboard/").status_code == 302
    # The same lock-out as wrong passwords: the right password is refused for now.
    locked = post_form(client, "/login", {"email": who.email, "password": who.password})
    assert locked.status_code == 429


def test_failures_from_one_address_do_not_lock_other_accounts(
        app: Flask, staff: dict[str, Staff]) -> None:
    """Ten failures from a clinic's address (one person's, on other accounts) leave a
    colleague behind the same address free to log in with the right password and code."""
    clinic = {"REMOTE_ADDR": "203.0.113.7"}
    guesser = app.test_client()
    guesser.environ_base.update(clinic)
    for n in range(10):
        email = staff["coordinator"].email if n % 2 else f"nobody{n}@test.example"
        post_form(guesser, "/login", {"email": email, "password": "not the password"})
    colleague = app.test_client()
    colleague.environ_base.update(clinic)
    login(colleague, staff["admin"])
    assert colleague.get("/dashboard/").status_code == 200
    # The account that was guessed at is locked, from any address.
    refused = post_form(app.test_client(), "/login", {"email": staff["coordinator"].email,
                                                      "password": PASSWORD})
    assert refused.status_code == 429


def test_spraying_from_one_address_meets_the_ceiling(app: Flask, staff: dict[str, Staff],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from onsite_server.dashboard import auth as dashboard_auth

    monkeypatch.setattr(dashboard_auth, "FAILURES_PER_ADDRESS", 4)
    sprayer = app.test_client()
    sprayer.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    for n in range(4):
        post_form(sprayer, "/login", {"email": f"staff{n}@test.example",
                                      "password": "Summer2026!"})
    refused = post_form(sprayer, "/login", {"email": staff["coordinator"].email,
                                            "password": PASSWORD})
    assert refused.status_code == 429
    elsewhere = app.test_client()
    login(elsewhere, staff["coordinator"])
    assert elsewhere.get("/dashboard/").status_code == 200


def test_the_ceiling_spares_accounts_known_on_this_browser(
        app: Flask, staff: dict[str, Staff], monkeypatch: pytest.MonkeyPatch) -> None:
    """A colleague at their usual desk behind the same address still gets in after the
    address met its ceiling; the same password in a browser that never logged in does not."""
    from onsite_server.dashboard import auth as dashboard_auth

    monkeypatch.setattr(dashboard_auth, "FAILURES_PER_ADDRESS", 4)
    clinic = {"REMOTE_ADDR": "203.0.113.50"}
    desk, stranger, sprayer = app.test_client(), app.test_client(), app.test_client()
    for c in (desk, stranger, sprayer):
        c.environ_base.update(clinic)
    login(desk, staff["admin"])
    post_form(desk, "/logout", page="/dashboard/")
    for n in range(4):
        post_form(sprayer, "/login", {"email": f"staff{n}@test.example",
                                      "password": "Summer2026!"})
    refused = post_form(stranger, "/login", {"email": staff["admin"].email,
                                             "password": PASSWORD})
    assert refused.status_code == 429
    login(desk, staff["admin"])
    assert desk.get("/dashboard/").status_code == 200
