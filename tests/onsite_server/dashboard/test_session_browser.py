"""The idle-timeout warning in the browser: shown before the session ends, one tap extends."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import axe_violations, browser_login, screenshot
from .helpers import Staff, totp_code

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_only_url: str) -> str:
    """Browser tests run on SQLite only (see conftest.sqlite_only_url)."""
    return sqlite_only_url


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """A one-minute idle timeout: inside the two-minute warning from the first page."""
    return {**app_config, "DASHBOARD_IDLE_MINUTES": 1}


def test_warning_before_idle_timeout_and_one_tap_extends(page: Any, live_url: str,
                                                         staff: dict[str, Staff]) -> None:
    browser_login(page, live_url, staff["coordinator"])
    dialog = page.get_by_role("alertdialog")
    dialog.wait_for(state="visible")
    button = page.get_by_role("button", name="Stay logged in")
    assert button.evaluate("el => el === document.activeElement")
    assert axe_violations(page) == []
    screenshot(page, "session-warning")
    with page.expect_response("**/session/extend") as answer:
        page.keyboard.press("Enter")
    body = answer.value.json()
    assert answer.value.status == 200 and body["logged_in"]
    assert 50 <= body["idle_seconds_left"] <= 60


# --- over HTTPS, as staff log in (live_https_url) -------------------------------------------

def _fresh_context(page: Any) -> Any:
    """A second browser context (its own cookies) beside page's, accepting the certificate."""
    return page.context.browser.new_context(ignore_https_errors=True)


def test_logout_ends_the_session_on_the_server(page: Any, live_https_url: str,
                                               staff: dict[str, Staff]) -> None:
    """A copy of the cookie taken before logging out opens nothing afterwards."""
    browser_login(page, live_https_url, staff["coordinator"])
    taken = page.context.cookies()
    assert any(c["name"] == "session" and c["secure"] for c in taken)
    other = _fresh_context(page)
    try:
        thief = other.new_page()
        other.add_cookies(taken)
        thief.goto(live_https_url + "/dashboard/")
        assert thief.url == live_https_url + "/dashboard/"  # the copy works while logged in
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/login")
        thief.goto(live_https_url + "/dashboard/")
        assert "/login" in thief.url
        assert thief.get_by_role("button", name="Log out").count() == 0
    finally:
        other.close()


def test_replayed_cookie_does_not_reset_the_wrong_code_count(
        page: Any, live_https_url: str, staff: dict[str, Staff]) -> None:
    """Five wrong codes lock the account; the cookie from just after the password step, played
    back in another browser, cannot log in with the right code."""
    who = staff["admin"]
    assert who.totp_secret
    page.goto(live_https_url + "/login")
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Password").fill(who.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/login/verify")
    after_password = page.context.cookies()
    for _ in range(5):
        page.locator("input[name=code]").fill("000000")
        with page.expect_navigation():
            page.get_by_role("button", name="Verify").click()
    assert page.url == live_https_url + "/login"
    assert "Too many wrong codes" in page.locator(".flash-error").inner_text()
    screenshot(page, "login-second-factor-locked")

    other = _fresh_context(page)
    try:
        replay = other.new_page()
        other.add_cookies(after_password)
        replay.goto(live_https_url + "/login/verify")
        # Whatever page the replayed cookie gets, post the right code to the second-factor
        # step with the page's own CSRF token, as that page's form would.
        with replay.expect_navigation():
            replay.evaluate("""([code]) => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = '/login/verify';
                for (const [name, value] of [['code', code], ['csrf_token',
                        document.querySelector('input[name=csrf_token]').value]]) {
                    const input = document.createElement('input');
                    input.name = name;
                    input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""", [totp_code(who.totp_secret)])
        assert replay.url == live_https_url + "/login"
        replay.goto(live_https_url + "/dashboard/")
        assert "/login" in replay.url
        # The same lock-out as wrong passwords: the right password is refused for now.
        replay.get_by_label("Email").fill(who.email)
        replay.get_by_label("Password").fill(who.password)
        with replay.expect_navigation():
            replay.get_by_role("button", name="Log in").click()
        assert "Too many failed log-ins" in replay.content()
    finally:
        other.close()
