"""The dashboard in Debian's Chromium: log-in, accessibility (axe-core), screenshots."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import AXE_LOADER, axe_violations, browser_login, screenshot
from .helpers import Staff

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_only_url: str) -> str:
    """Browser tests run on SQLite only (see conftest.sqlite_only_url)."""
    return sqlite_only_url


def test_log_in_as_coordinator(page: Any, live_url: str, staff: dict[str, Staff]) -> None:
    page.goto(live_url + "/")
    assert page.url.endswith("/login")
    assert axe_violations(page) == []
    screenshot(page, "login")
    browser_login(page, live_url, staff["coordinator"])
    assert page.url.endswith("/dashboard/")
    assert page.get_by_role("button", name="Log out").is_visible()
    assert axe_violations(page) == []
    screenshot(page, "dashboard-home")


def test_log_in_with_second_factor_in_spanish(page: Any, live_url: str,
                                              staff: dict[str, Staff]) -> None:
    page.goto(live_url + "/login")
    page.get_by_role("button", name="Español").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.get_by_label("Contraseña").is_visible()
    screenshot(page, "login-es")
    page.get_by_role("button", name="English").click()
    browser_login(page, live_url, staff["advocate"])
    assert page.url.endswith("/advocate/")
    assert axe_violations(page) == []


def test_wrong_password_message_is_tied_to_the_field(page: Any, live_url: str,
                                                     staff: dict[str, Staff]) -> None:
    page.goto(live_url + "/login")
    page.get_by_label("Email").fill(staff["coordinator"].email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    field = page.get_by_label("Password")
    assert field.get_attribute("aria-invalid") == "true"
    described = field.get_attribute("aria-describedby") or ""
    assert "wrong" in page.locator(f"#{described.split()[-1]}").inner_text()
    assert axe_violations(page) == []
    screenshot(page, "login-error")


def test_keyboard_alone_logs_in(page: Any, live_url: str, staff: dict[str, Staff]) -> None:
    page.goto(live_url + "/login")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.get_by_label("Email").focus()
    page.keyboard.type(staff["coordinator"].email)
    page.keyboard.press("Tab")
    page.keyboard.type(staff["coordinator"].password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/")


def test_axe_reports_a_missing_label_in_any_context(page: Any, browser: Any,
                                                   live_url: str) -> None:
    """The accessibility check finds what is wrong and names the element: the log-in's email
    field without its label fails WCAG 2.1 A (axe's rule "label"), and an excluded element is
    left out. A context not made by new_context is checked the same (axe-core sent then)."""
    plain = browser.new_context()
    try:
        for tab, loader in ((page, "function"), (plain.new_page(), "undefined")):
            tab.goto(live_url + "/login")
            assert tab.evaluate(f"typeof window.{AXE_LOADER}") == loader
            assert axe_violations(tab) == []
            tab.evaluate("() => document.querySelector('label[for=email]').remove()")
            found = axe_violations(tab)
            assert [(v["id"], v["targets"]) for v in found] == [("label", [["#email"]])], found
            assert found[0]["impact"] == "critical" and found[0]["help"]
            assert axe_violations(tab, exclude=["#email"]) == []
    finally:
        plain.close()


@pytest.mark.parametrize("role,home", [("coordinator", "/dashboard/"), ("admin", "/dashboard/"),
                                       ("advocate", "/advocate/")])
def test_each_role_logs_in_over_https(page: Any, live_https_url: str, staff: dict[str, Staff],
                                      role: str, home: str) -> None:
    """As staff really log in: Chromium, the server's own TLS certificate, the real form.

    On HTTPS Flask-WTF refuses a POST without a same-origin Referer, and Chromium sends one
    only if the page's Referrer-Policy allows it: under ``no-referrer`` every log-in answered
    400 "The referrer header is missing".
    """
    posts: list[Any] = []
    page.on("response", lambda r: posts.append(r) if r.request.method == "POST" else None)
    first = page.goto(live_https_url + "/login")
    assert first is not None and first.headers.get("strict-transport-security")
    browser_login(page, live_https_url, staff[role])
    assert page.url == live_https_url + home
    assert page.get_by_role("button", name="Log out").is_visible()
    # The password step, and the code step for admin and advocate, each redirected.
    assert [r.status for r in posts] == [302] * (1 if role == "coordinator" else 2), \
        [(r.url, r.status) for r in posts]
    referers = [r.request.header_value("referer") for r in posts]
    assert all(ref and ref.startswith(live_https_url) for ref in referers), referers
