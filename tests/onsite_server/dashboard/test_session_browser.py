"""The idle-timeout warning in the browser: shown before the session ends, one tap extends."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import axe_violations, browser_login, screenshot
from .helpers import Staff

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
