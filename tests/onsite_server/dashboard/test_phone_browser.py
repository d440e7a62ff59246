"""Every dashboard page on a phone (390 × 844 CSS px, as an iPhone 12-15 shows it): nothing
scrolls sideways, tables turn into stacked rows, and a screenshot of each page is saved under
build/screenshots/phone-*.png to look at."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import (
    Booking,
    CrisisAlert,
    Event,
    Kiosk,
    Member,
    Referral,
    Site,
    Slot,
    utcnow,
)
from onsite_server.services import bookings

from .conftest import axe_violations, browser_login, new_context, screenshot
from .test_events_browser import _midday_site
from .test_pages_browser import _staff
from .test_pages_browser import demo as demo  # noqa: F401  (the fixture, reused)

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
OVERFLOW = """() => {
  const root = document.documentElement;
  const wide = [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > root.clientWidth + 0.5)
    .slice(0, 5)
    .map(el => el.tagName + '.' + el.className + ' ' + el.getBoundingClientRect().right);
  return {scroll: root.scrollWidth, client: root.clientWidth, wide: wide};
}"""


@pytest.fixture
def database_url(sqlite_only_url: str) -> str:
    """Browser tests run on SQLite only (see conftest.sqlite_only_url)."""
    return sqlite_only_url


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A page 390 CSS px wide and 844 tall, with a phone's touch and pixel ratio."""
    context = new_context(browser, viewport=PHONE, device_scale_factor=2, is_mobile=True,
                          has_touch=True)
    context.set_default_timeout(15000)
    yield context.new_page()
    context.close()


@pytest.fixture
def event_day(app: Flask, demo: dict[str, Any]) -> dict[str, str]:  # noqa: F811
    """Today at the demo site: an ended slot (a no-show, a late arrival), a running one with
    a check-in, a later one with a waitlist; plus ids for the pages that need them."""
    with get_db(app).transaction() as session:
        site = session.scalars(select(Site).where(Site.slug == "demo-hq")).one()
    _midday_site(app, site)
    now = utcnow().replace(microsecond=0)
    with get_db(app).transaction() as session:
        event = Event(site_id=site.id, title="Biometric screening with a long name for phones",
                      kind="biometric_screening", location="Conference room 2, second floor")
        session.add(event)
        session.flush()
        starts = [now - timedelta(minutes=50), now - timedelta(minutes=5),
                  now + timedelta(minutes=40)]
        slots = [Slot(event_id=event.id, start_at=s, end_at=s + timedelta(minutes=20),
                      capacity=2) for s in starts]
        session.add_all(slots)
        session.flush()
        members = list(session.scalars(select(Member).where(
            Member.employer_id == site.employer_id).order_by(Member.id)).all())[:7]
        made = [bookings.book(session, member=m, slot=slots[i], actor="kiosk:t",
                              now=starts[0] - timedelta(hours=1))
                for m, i in zip(members, (0, 0, 1, 1, 2, 2, 2), strict=True)]
        by_id = {b.public_id: b for b in session.scalars(select(Booking))}
        bookings.mark_no_shows(session, now)
        bookings.check_in(session, by_id[made[1].booking_id], "user:1", now, late=True)
        bookings.check_in(session, by_id[made[2].booking_id], "user:1", now)
        kiosk = session.scalars(select(Kiosk).where(Kiosk.label == "Lobby kiosk")).one()
        alert = session.scalars(select(CrisisAlert)).first()
        referral = session.scalars(select(Referral).where(
            Referral.public_id == demo["crisis_referral"])).one()
        return {"event": event.public_id, "ended": slots[0].public_id,
                "later": slots[2].public_id, "kiosk": kiosk.public_id,
                "alert": str(alert.id) if alert else "", "referral": referral.public_id,
                "referral_member": demo["other_member"]}


def _pages(ids: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    event = f"/dashboard/events/{ids['event']}"
    return {
        "coordinator": [
            ("/dashboard/", "home"),
            ("/dashboard/events", "events"),
            ("/dashboard/events/new", "events-new"),
            (event, "events-detail"),
            (event + "/edit", "events-edit"),
            (event + "/waitlist", "events-waitlist"),
            (event + "/people", "events-people"),
            (event + "/cancel", "events-cancel"),
            (f"{event}/slots/{ids['later']}/cancel", "events-cancel-slot"),
            ("/dashboard/checkin", "checkin"),
            ("/dashboard/checkin?q=a", "checkin-search-error"),
            ("/dashboard/checkin?q=garcia", "checkin-search"),
            ("/dashboard/checkin/no-shows", "checkin-no-shows"),
            ("/dashboard/fleet", "fleet"),
            (f"/dashboard/fleet/{ids['kiosk']}/revoke", "fleet-revoke"),
            ("/dashboard/reports", "reports"),
        ],
        "admin": [
            ("/dashboard/", "admin-home"),
            ("/dashboard/admin/settings", "admin-settings"),
            ("/dashboard/admin/users", "admin-users"),
            ("/dashboard/admin/roster", "admin-roster"),
            ("/dashboard/admin/audit", "admin-audit"),
            ("/dashboard/sync", "sync-health"),
            (f"/dashboard/crisis/alert/{ids['alert']}", "crisis-alert"),
            (f"/dashboard/crisis/referral/{ids['referral']}", "crisis-referral"),
        ],
        "advocate": [
            ("/advocate/", "advocate"),
        ],
    }


def _fits(page: Any, name: str, failures: list[str]) -> None:
    page.wait_for_load_state()
    measured = page.evaluate(OVERFLOW)
    screenshot(page, f"phone-{name}")
    if measured["scroll"] > measured["client"]:
        failures.append(f"{name}: {measured}")
    # Stacked tables keep their meaning for screen readers too (axe-core, WCAG 2.1 AA).
    violations = axe_violations(page)
    if violations:
        failures.append(f"{name}: {violations}")


def test_every_page_fits_a_phone_without_sideways_scrolling(
        phone: Any, live_url: str, app: Flask, event_day: dict[str, str]) -> None:
    failures: list[str] = []
    phone.goto(live_url + "/login")
    _fits(phone, "login", failures)
    phone.goto(live_url + "/account/link/not-a-real-link")
    _fits(phone, "account-link-unknown", failures)
    admin = _staff(app, "admin")
    phone.goto(live_url + "/login")
    phone.get_by_label("Email").fill(admin.email)
    phone.get_by_label("Password").fill(admin.password)
    phone.get_by_role("button", name="Log in").click()
    phone.wait_for_url("**/login/verify**")
    _fits(phone, "login-verify", failures)
    for role, pages in _pages(event_day).items():
        phone.context.clear_cookies()
        browser_login(phone, live_url, _staff(app, role))
        for path, name in pages:
            response = phone.goto(live_url + path)
            assert response is not None and response.status == 200, (path, response)
            _fits(phone, name, failures)
        if role == "coordinator":
            phone.goto(live_url + "/dashboard/fleet")
            phone.get_by_label("Kiosk name").fill("Floor 3 kiosk by the elevators")
            phone.get_by_role("button", name="Make a pairing code").click()
            phone.locator("code.code-big").wait_for()
            _fits(phone, "fleet-pair", failures)
        if role == "advocate":
            phone.get_by_role("row").nth(1).get_by_role("link").first.click()
            _fits(phone, "advocate-referral", failures)
    # Spanish runs longer: the busiest pages again, in Spanish.
    phone.context.clear_cookies()
    browser_login(phone, live_url, _staff(app, "coordinator"))
    phone.get_by_role("button", name="Español").click()
    phone.wait_for_load_state()
    for path, name in [("/dashboard/checkin", "es-checkin"),
                       (f"/dashboard/events/{event_day['event']}/people", "es-events-people"),
                       ("/dashboard/fleet", "es-fleet")]:
        phone.goto(live_url + path)
        assert phone.locator("html").get_attribute("lang") == "es"
        _fits(phone, name, failures)
    assert failures == [], "\n".join(failures)


def test_tables_turn_into_stacked_rows_with_their_column_names(
        phone: Any, live_url: str, app: Flask, event_day: dict[str, str]) -> None:
    browser_login(phone, live_url, _staff(app, "coordinator"))
    phone.goto(live_url + "/dashboard/checkin")
    row = phone.locator("#live-table tbody tr").first
    cells = row.locator("td")
    # One cell under another, each labelled with its column (the header row is hidden).
    first, second = cells.nth(0).bounding_box(), cells.nth(1).bounding_box()
    assert first and second and second["y"] >= first["y"] + first["height"] - 1
    assert cells.nth(1).get_attribute("data-label") == "Taken"
    assert "Taken" in cells.nth(1).evaluate(
        "el => getComputedStyle(el, '::before').content")
    assert phone.locator("#live-table thead").bounding_box()["height"] <= 1
