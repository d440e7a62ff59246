"""The per-request session check: one Core SELECT, and the cookie re-sent only when it changed."""

from __future__ import annotations

import re
import time

from flask import Flask
from flask.testing import FlaskClient

from onsite_server.dashboard.auth import SEEN_STEP_SECONDS

from ..helpers import orm_queries_run, sql_run


def test_the_session_check_reads_its_row_and_user_in_one_core_select(
        app: Flask, as_coordinator: FlaskClient) -> None:
    with sql_run(app, upper=True) as statements, orm_queries_run() as orm_queries:
        # The session-status view reads nothing itself: what runs is the session check.
        answer = as_coordinator.get("/session")
    assert answer.status_code == 200 and answer.get_json()["logged_in"] is True
    assert orm_queries == []
    (select,) = [s for s in statements if s.startswith("SELECT")]
    assert "FROM USER_SESSION JOIN USER_ACCOUNT" in select


def test_the_cookie_is_signed_again_only_when_the_idle_clock_moves(
        as_coordinator: FlaskClient) -> None:
    assert as_coordinator.get("/dashboard/checkin").status_code == 200  # its CSRF token set
    with as_coordinator.session_transaction() as sess:
        sess["seen"] = time.time() - 1  # active a second ago
    # Activity within the step: nothing in the session changed, so no cookie is sent back.
    quiet = as_coordinator.get("/dashboard/checkin")
    assert quiet.status_code == 200
    assert "Set-Cookie" not in quiet.headers
    with as_coordinator.session_transaction() as sess:
        assert time.time() - sess["seen"] >= 1
        sess["seen"] = time.time() - SEEN_STEP_SECONDS - 1
    # Past the step, the idle clock moves and the cookie carrying it is signed and sent.
    moved = as_coordinator.get("/dashboard/checkin")
    assert moved.status_code == 200
    assert "session=" in moved.headers.get("Set-Cookie", "")
    with as_coordinator.session_transaction() as sess:
        assert time.time() - sess["seen"] < SEEN_STEP_SECONDS


def test_the_idle_timeout_counts_from_the_recorded_activity_never_later(
        as_coordinator: FlaskClient, app: Flask) -> None:
    idle = app.config["DASHBOARD_IDLE_MINUTES"] * 60
    with as_coordinator.session_transaction() as sess:
        sess["seen"] = recorded = time.time() - 5
    # A request within the step of the recorded activity does not move the idle clock...
    assert as_coordinator.get("/dashboard/checkin").status_code == 200
    with as_coordinator.session_transaction() as sess:
        assert sess["seen"] == recorded
        # ...so when the idle time has passed since the recorded activity (the request came
        # 5 s after it: the clock is set back as if idle - 2 s had passed since the request),
        sess["seen"] = recorded - (idle - 2)
    # the session has ended: earlier than idle after the last request, never later.
    ended = as_coordinator.get("/dashboard/checkin")
    assert ended.status_code == 302 and "/login" in ended.headers["Location"]


def test_stay_logged_in_moves_the_idle_clock_at_once(as_coordinator: FlaskClient) -> None:
    assert as_coordinator.get("/dashboard/checkin").status_code == 200  # its CSRF token set
    with as_coordinator.session_transaction() as sess:
        sess["seen"] = time.time() - SEEN_STEP_SECONDS / 2
    html = as_coordinator.get("/dashboard/checkin").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert token is not None
    answer = as_coordinator.post("/session/extend", headers={
        "Accept": "application/json", "X-CSRFToken": token.group(1)})
    assert answer.status_code == 200
    assert answer.get_json()["idle_seconds_left"] >= 30 * 60 - 1
