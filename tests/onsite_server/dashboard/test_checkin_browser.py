"""The check-in desk in a real browser, with a short idle timeout: the live view's refresh
does not keep the session alive, the warning comes two minutes before the end and one tap
extends it; and the optional camera scan, driven by a stand-in BarcodeDetector (Debian's
Chromium has none), submits what it reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask

from onsite_server.db import get_db
from onsite_server.models import Event, Slot

from ..helpers import auth, identified_member
from .conftest import axe_violations, browser_login, screenshot
from .test_events_browser import _midday_site

# Replaces the camera and the decoder: each detect() returns the next queued code, if any.
FAKE_CAMERA = """
window.__codes = [];
window.BarcodeDetector = class {
  constructor(options) { this.options = options; }
  async detect(source) { return window.__codes.length ? [{rawValue: window.__codes.shift()}] : []; }
};
Object.defineProperty(navigator, "mediaDevices", {configurable: true, value: {
  getUserMedia: async () => new MediaStream()
}});
"""


@pytest.fixture
def database_url(sqlite_only_url: str) -> str:
    """Browser tests run on SQLite only (see conftest.sqlite_only_url)."""
    return sqlite_only_url


def _today_slot(app: Flask, site: Any) -> str:
    _midday_site(app, site)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    with get_db(app).transaction() as session:
        event = Event(site_id=site.id, title="Coaching", kind="coaching")
        session.add(event)
        session.flush()
        slot = Slot(event_id=event.id, start_at=start, end_at=start + timedelta(minutes=30),
                    capacity=3)
        session.add(slot)
        session.flush()
        return slot.public_id


def _ticket(app: Flask, site: Any, kiosk: dict[str, Any], live_url: str, slot: str) -> str:
    _, ref = identified_member(app, site, kiosk, first_name="Cam")
    booked = requests.post(live_url + "/api/v1/bookings", headers=auth(kiosk["token"]), json={
        "idempotency_key": str(uuid.uuid4()), "member_ref": ref, "slot_id": slot}, timeout=10)
    assert booked.status_code == 201, booked.text
    url: str = booked.json()["ticket_url"]
    return url


def test_camera_scan_submits_what_it_reads(app: Flask, site: Any, staff: dict[str, Any],
                                           kiosk: dict[str, Any], live_url: str,
                                           page: Any) -> None:
    from playwright.sync_api import expect

    ticket_url = _ticket(app, site, kiosk, live_url, _today_slot(app, site))
    page.add_init_script(FAKE_CAMERA)
    browser_login(page, live_url, staff["coordinator"])
    page.goto(live_url + "/dashboard/checkin")
    page.get_by_role("button", name="Scan with the camera").click()
    expect(page.get_by_role("button", name="Stop the camera")).to_be_visible()
    page.evaluate("code => window.__codes.push(code)", ticket_url)
    expect(page.locator("#scan-result")).to_contain_text("Checked in: Cam Tester")
    screenshot(page, "checkin-camera")
    page.get_by_role("button", name="Stop the camera").click()
    expect(page.get_by_label("Scan or type the ticket code")).to_be_focused()


def test_without_a_camera_the_button_is_not_offered(app: Flask, site: Any,
                                                   staff: dict[str, Any], live_url: str,
                                                   page: Any) -> None:
    from playwright.sync_api import expect

    page.add_init_script("delete window.BarcodeDetector;")
    browser_login(page, live_url, staff["coordinator"])
    page.goto(live_url + "/dashboard/checkin")
    expect(page.get_by_role("button", name="Scan with the camera")).to_be_hidden()
    expect(page.get_by_label("Scan or type the ticket code")).to_be_focused()


class TestShortIdleTimeout:
    """With a one-minute idle timeout, the two-minute warning shows at once."""

    @staticmethod
    def _set_idle(app: Flask) -> None:
        app.config["DASHBOARD_IDLE_MINUTES"] = 1

    def test_polling_does_not_extend_and_one_tap_does(self, app: Flask, site: Any,
                                                      staff: dict[str, Any], live_url: str,
                                                      page: Any) -> None:
        from playwright.sync_api import expect

        _today_slot(app, site)
        self._set_idle(app)
        browser_login(page, live_url, staff["coordinator"])
        page.goto(live_url + "/dashboard/checkin")
        warning = page.locator("#session-warning")
        expect(warning).to_be_visible(timeout=10000)
        # Wait for a live refresh of the day, then ask how long the session has left.
        with page.expect_response(lambda r: "/dashboard/checkin/live.json" in r.url,
                                  timeout=20000):
            pass
        left = page.evaluate("""async () => (await (await fetch('/session',
            {headers: {Accept: 'application/json'}})).json()).idle_seconds_left""")
        assert left < 50, left  # the page has been polling for 10 s and more: not activity
        screenshot(page, "checkin-idle-warning")
        assert axe_violations(page) == []
        page.get_by_role("button", name="Stay logged in").click()
        # (With a one-minute timeout the warning comes straight back, so where the focus
        # lands is not checked here; the camera test checks the field gets it back.)
        page.wait_for_timeout(500)
        after = page.evaluate("""async () => (await (await fetch('/session',
            {headers: {Accept: 'application/json'}})).json()).idle_seconds_left""")
        assert after > 55, after
