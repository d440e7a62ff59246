"""Every page of the admin, fleet and advocate areas in Chromium: axe-core finds no WCAG 2.1
AA violation, a screenshot is saved to look at, and the flows work end to end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.demo import DEMO_LOGINS, DEMO_TOTP, load_demo_data
from onsite_server.models import (
    CrisisAlert,
    Kiosk,
    Member,
    OutboxMessage,
    Referral,
    Site,
    User,
    utcnow,
)

from .conftest import SCREENSHOTS, axe_violations, browser_login, new_context, screenshot
from .helpers import Staff

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_only_url: str) -> str:
    """Browser tests run on SQLite only (see conftest.sqlite_only_url)."""
    return sqlite_only_url


def _staff(app: Flask, role: str) -> Staff:
    email, password = DEMO_LOGINS[role]
    with get_db(app).transaction() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return Staff(user.id, role, email, password, DEMO_TOTP.get(role), user.site_id,
                     user.advocate_id)


@pytest.fixture
def demo(app: Flask) -> dict[str, Any]:
    """The demo data, plus a crisis referral, an anonymous alert, a kiosk and a dead letter."""
    with get_db(app).transaction() as session:
        load_demo_data(session, app.config)
        site = session.scalars(select(Site).where(Site.slug == "demo-hq")).one()
        hector = session.scalars(select(Member).where(Member.member_id == "M-1008")).one()
        crisis = Referral(member_id=hector.id, advocate_id=hector.advocate_id, status="new",
                          priority="crisis", programs=["behavioral_health"],
                          proposal={"crisis": [{"trigger": "phq9_item9"}], "reasons": []},
                          version=1, forward_now=True)
        session.add(crisis)
        now = utcnow()
        lobby = Kiosk(site_id=site.id, label="Lobby kiosk", place="Lobby B",
                      token_hash="x" * 64, paired_at=now - timedelta(days=3),
                      app_version="0.1.0", outbox_depth=0, last_sync_at=now,
                      free_disk_bytes=12 * 1024 ** 3, last_heartbeat_at=now)
        cafe = Kiosk(site_id=site.id, label="Cafeteria kiosk", place="Cafeteria",
                     token_hash="y" * 64, paired_at=now - timedelta(days=3),
                     app_version="0.0.9", outbox_depth=4,
                     last_sync_at=now - timedelta(hours=2), free_disk_bytes=2 * 1024 ** 3,
                     last_heartbeat_at=now - timedelta(hours=2))
        session.add_all([lobby, cafe])
        session.flush()
        session.add(CrisisAlert(kiosk_id=cafe.id, trigger="phq9_item9", raised_at=now,
                                received_at=now))
        session.add(OutboxMessage(kind="referral", key="referral:demo:v9", priority=5,
                                  payload={}, status="dead", attempts=1,
                                  last_error="HTTP 422: ServiceRequest.subject is required"))
        other = session.scalars(select(Member).where(Member.member_id == "M-1002")).one()
        return {"crisis_referral": crisis.public_id, "other_member": other.public_id}


def _check(page: Any, name: str) -> None:
    violations = axe_violations(page)
    screenshot(page, name)
    assert violations == [], violations


def test_admin_pages(page: Any, live_url: str, app: Flask, demo: dict[str, Any]) -> None:
    browser_login(page, live_url, _staff(app, "admin"))
    # The crisis banner is on every page until someone acknowledges it.
    banner = page.get_by_role("alert")
    assert "Crisis" in banner.inner_text()
    _check(page, "admin-home")
    for path, name in [("/dashboard/admin/settings", "admin-settings"),
                       ("/dashboard/admin/users", "admin-users"),
                       ("/dashboard/admin/roster", "admin-roster"),
                       ("/dashboard/admin/audit", "admin-audit"),
                       ("/dashboard/fleet", "fleet"),
                       ("/dashboard/sync", "sync-health")]:
        page.goto(live_url + path)
        assert page.get_by_role("alert").count() == 1, path
        _check(page, name)


def test_settings_override_and_validation(page: Any, live_url: str, app: Flask,
                                          demo: dict[str, Any]) -> None:
    browser_login(page, live_url, _staff(app, "admin"))
    page.goto(live_url + "/dashboard/admin/settings")
    assert "override the server's defaults" in page.content()
    page.get_by_label("Accent colour (#rrggbb)").fill("#ffff00")
    page.get_by_label("Local crisis resources, one per line: name | phone | web address").fill(
        "Employee Assistance Program | +1-555-0199 | https://eap.example")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_load_state()
    # Yellow under white text fails contrast: refused, next to the field.
    assert "hard to read" in page.get_by_label("Accent colour (#rrggbb)").evaluate(
        "el => document.getElementById(el.getAttribute('aria-describedby').split(' ').pop())"
        ".textContent")
    _check(page, "admin-settings-error")
    page.get_by_label("Accent colour (#rrggbb)").fill("#6a1b9a")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_load_state()
    assert "Settings saved" in page.content()
    with get_db(app).transaction() as session:
        site = session.scalars(select(Site).where(Site.slug == "demo-hq")).one()
        assert site.settings["branding_color"] == "#6a1b9a"
        assert site.settings["local_crisis_resources"][0]["phone"] == "+1-555-0199"


def test_invite_shows_a_one_time_link_that_sets_a_password(page: Any, live_url: str,
                                                           app: Flask,
                                                           demo: dict[str, Any]) -> None:
    browser_login(page, live_url, _staff(app, "admin"))
    page.goto(live_url + "/dashboard/admin/users")
    page.get_by_label("Email").fill("new.coordinator@demo.example")
    page.get_by_label("Name", exact=True).fill("New Coordinator")
    page.get_by_label("Role").select_option("coordinator")
    page.get_by_role("button", name="Invite").click()
    page.wait_for_load_state()
    link = page.get_by_label("One-time link").input_value()
    assert "/account/link/" in link
    _check(page, "admin-users-invited")
    other = new_context(page.context.browser)
    try:
        newcomer = other.new_page()
        newcomer.goto(link.replace("http://localhost", live_url.rsplit(":", 1)[0])
                      if "localhost" in link else link)
        newcomer.get_by_label("New password", exact=True).fill("a brand new password")
        newcomer.get_by_label("New password again").fill("a brand new password")
        newcomer.get_by_role("button", name="Set password").click()
        newcomer.wait_for_load_state()
        assert newcomer.url.endswith("/login")
        _check(newcomer, "account-link-done")
        newcomer.goto(link)
        assert "does not work" in newcomer.content()
    finally:
        other.close()


def test_roster_upload_reports_bad_rows(page: Any, live_url: str, app: Flask,
                                        demo: dict[str, Any], tmp_path: Any) -> None:
    good = "\n".join(f"M-9{i:04d},E9{i:04d},First{i},Last{i},1980-01-01" for i in range(50))
    bad = "M-99999,E99999,,Nobody,1980-13-45"
    csv_path = tmp_path / "roster.csv"
    csv_path.write_text("member_id,employee_id,first_name,last_name,birth_date\n"
                        f"{good}\n{bad}\n", encoding="utf-8")
    browser_login(page, live_url, _staff(app, "admin"))
    page.goto(live_url + "/dashboard/admin/roster")
    page.get_by_label("Roster CSV file").set_input_files(str(csv_path))
    # Record what the progress bar shows while the file goes up (upload.js sends it by XHR).
    page.evaluate("""() => {
        window.progressSeen = [];
        const box = document.getElementById('upload-progress');
        const bar = document.getElementById('upload-bar');
        new MutationObserver(() => window.progressSeen.push(
            [box.hidden, bar.getAttribute('value')])).observe(bar, {attributes: true});
    }""")
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("heading", name="Not imported", exact=True).wait_for()
    seen = page.evaluate("window.progressSeen")
    # Shown, filled to 100 %, then indeterminate while the server checks the rows.
    assert [False, "100"] in seen and seen[-1] == [False, None], seen
    table = page.get_by_role("table")
    assert "52" in table.inner_text() and "first_name" in table.inner_text()
    _check(page, "admin-roster-report")
    page.get_by_label("Roster CSV file").set_input_files(str(csv_path))
    page.get_by_label("Import the good rows even if some rows are bad").check()
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("heading", name="Imported", exact=True).wait_for()
    with get_db(app).transaction() as session:
        assert session.scalars(select(Member).where(Member.employee_id == "E90049")).first()


def test_pair_a_kiosk_shows_code_and_qr(page: Any, live_url: str, app: Flask,
                                        demo: dict[str, Any]) -> None:
    browser_login(page, live_url, _staff(app, "coordinator"))
    page.goto(live_url + "/dashboard/fleet")
    stale_row = page.get_by_role("row", name="Cafeteria kiosk")
    assert "Stale" in stale_row.inner_text()
    page.get_by_label("Kiosk name").fill("Floor 3 kiosk")
    page.get_by_label("Where it stands").fill("Floor 3, by the elevators")
    page.get_by_role("button", name="Make a pairing code").click()
    page.wait_for_load_state()
    code = page.locator("code.code-big").inner_text()
    assert len(code) == 9 and code[4] == "-"
    assert page.locator("figure.qr svg").count() == 1
    _check(page, "fleet-pair")
    page.goto(live_url + "/dashboard/fleet")
    page.get_by_role("link", name="Revoke Lobby kiosk").click()
    page.wait_for_load_state()
    # Asked first, naming the kiosk and what revoking does.
    assert "Revoke the kiosk “Lobby kiosk”?" in page.get_by_role("heading", level=1).inner_text()
    assert "cannot be undone" in page.content()
    _check(page, "fleet-revoke")
    page.get_by_role("button", name="Yes, revoke this kiosk").click()
    page.wait_for_load_state()
    assert "revoked" in page.get_by_role("row", name="Lobby kiosk").inner_text()


def test_advocate_sees_only_own_referrals_and_acknowledges_crisis(
        page: Any, live_url: str, app: Flask, demo: dict[str, Any]) -> None:
    advocate = _staff(app, "advocate")
    browser_login(page, live_url, advocate)
    assert page.url.endswith("/advocate/")
    _check(page, "advocate-list")
    rows = page.get_by_role("row").all()[1:]
    names = [row.get_by_role("rowheader").inner_text() for row in rows]
    with get_db(app).transaction() as session:
        own = {f"{m.first_name} {m.last_name}" for m in session.scalars(
            select(Member).join(Referral, Referral.member_id == Member.id)
            .where(Member.advocate_id == advocate.advocate_id))}
        others = {f"{m.first_name} {m.last_name}" for m in session.scalars(
            select(Member).join(Referral, Referral.member_id == Member.id)
            .where(Member.advocate_id != advocate.advocate_id))}
    shown = {n.splitlines()[0] for n in names}
    assert shown == own and others and not (shown & others)
    # Crisis first.
    assert "crisis" in rows[0].inner_text()
    # Another advocate's member is "not found", not "forbidden".
    with get_db(app).transaction() as session:
        theirs = session.scalars(select(Referral).join(Member).where(
            Member.public_id == demo["other_member"])).first()
    assert theirs is not None
    resp = page.goto(live_url + f"/advocate/referrals/{theirs.public_id}")
    assert resp is not None and resp.status == 404
    # Acknowledge the crisis banner with a note.
    page.goto(live_url + "/advocate/")
    page.get_by_role("alert").get_by_text("Details and acknowledge").click()  # one tap away
    page.get_by_role("alert").get_by_role("link", name="Open and acknowledge").click()
    page.wait_for_load_state()
    _check(page, "crisis-referral")
    page.get_by_label("Note").fill("Called the member; they are safe and with a colleague.")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    assert "Crisis referral acknowledged" in page.content()
    assert page.get_by_role("alert").count() == 1  # the anonymous kiosk alert is still up
    page.get_by_role("alert").get_by_text("Details and acknowledge").click()
    page.get_by_role("alert").get_by_role("link", name="Acknowledge with a note").click()
    page.get_by_label("Note").fill("Went to the cafeteria kiosk; nobody there.")
    _check(page, "crisis-alert")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").count() == 0
    # Move the referral on: contacted, with a note.
    page.goto(live_url + f"/advocate/referrals/{demo['crisis_referral']}")
    page.get_by_label("Contacted").check()
    page.get_by_label("Note").fill("Spoke by phone, follow-up booked.")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    _check(page, "advocate-referral")
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == demo["crisis_referral"])).one()
        assert referral.status == "contacted"
        queued = session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id == referral.id, OutboxMessage.status == "pending")).one()
        assert queued.payload["status"] == "contacted"


def test_a_new_crisis_appears_without_reloading(page: Any, live_url: str, app: Flask,
                                                demo: dict[str, Any]) -> None:
    coordinator = _staff(app, "coordinator")
    browser_login(page, live_url, coordinator)
    with get_db(app).transaction() as session:
        for alert in session.scalars(select(CrisisAlert)):
            alert.acknowledged_at = utcnow()
    page.clock.install()
    page.goto(live_url + "/dashboard/fleet")
    assert page.get_by_role("alert").count() == 0
    with get_db(app).transaction() as session:
        kiosk = session.scalars(select(Kiosk).where(Kiosk.label == "Lobby kiosk")).one()
        session.add(CrisisAlert(kiosk_id=kiosk.id, trigger="hypertensive_crisis",
                                raised_at=utcnow(), received_at=utcnow()))
    page.clock.run_for(21_000)
    banner = page.get_by_role("alert")
    banner.wait_for()
    assert "Crises waiting: 1" in banner.inner_text()
    banner.get_by_text("Details and acknowledge").click()
    assert "Lobby B" in banner.inner_text() and "hypertensive" in banner.inner_text()
    # Coordinators see the anonymous alert, never the member's crisis referral.
    assert "Crisis referral of a member" not in banner.inner_text()
    _check(page, "crisis-banner-live")


def test_spanish_pages_show_refusals_in_spanish(page: Any, live_url: str, app: Flask,
                                                demo: dict[str, Any], tmp_path: Any) -> None:
    browser_login(page, live_url, _staff(app, "admin"))
    page.goto(live_url + "/dashboard/admin/settings")
    page.get_by_role("button", name="Español").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "es"

    def error_of(name: str) -> str:
        return str(page.locator(f"#{name}-error").inner_text()).strip()

    # Site settings: the services' refusals, next to their fields, in Spanish.
    page.locator("input[name=min_cell]").fill("4")
    page.get_by_role("button", name="Guardar ajustes").click()
    page.wait_for_load_state()
    assert error_of("min_cell") == "debe ser al menos 5"
    _check(page, "es-admin-settings-error")
    page.locator("input[name=min_cell]").fill("12")
    page.locator("input[name=idle_seconds]").fill("5")
    page.get_by_role("button", name="Guardar ajustes").click()
    page.wait_for_load_state()
    assert error_of("idle_seconds") == "debe estar entre 30 y 600 segundos"

    # Users: inviting an address that already has an account.
    page.goto(live_url + "/dashboard/admin/users")
    page.locator("input[name=email]").fill(_staff(app, "coordinator").email)
    page.locator("input[name=name]").fill("Otra persona")
    page.get_by_role("button", name="Invitar").click()
    page.wait_for_load_state()
    assert error_of("email").startswith("ya existe un usuario con el correo")
    _check(page, "es-admin-users-error")

    # Roster: the per-row report.
    csv_path = tmp_path / "roster.csv"
    csv_path.write_text("member_id,employee_id,first_name,last_name,birth_date\n"
                        "M-99999,E99999,,Nobody,1980-13-45\n", encoding="utf-8")
    page.goto(live_url + "/dashboard/admin/roster")
    page.locator("input[name=file]").set_input_files(str(csv_path))
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.get_by_role("heading", name="No importado", exact=True).wait_for()
    report = page.get_by_role("table").inner_text()
    assert "es obligatorio" in report and "no es una fecha real" in report
    assert "is required" not in report
    _check(page, "es-admin-roster-report")

    # Events: a run of slots that starts in the past.
    page.goto(live_url + "/dashboard/events/new")
    page.locator("input[name=title]").fill("Clínica de vacunas")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_load_state()
    page.locator("input[name=day]").fill("2001-01-01")
    page.locator("input[name=start]").fill("09:00")
    page.locator("input[name=end]").fill("10:00")
    page.locator("form[action$='/slots'] [type=submit]").click()
    page.wait_for_load_state()
    assert error_of("start") == "ya pasó"
    _check(page, "es-events-slots-error")

    # Pages with no refusal, looked at in Spanish too.
    for path, name in [("/dashboard/sync", "es-sync-health"), ("/dashboard/fleet", "es-fleet"),
                       ("/dashboard/admin/audit", "es-admin-audit"),
                       ("/dashboard/checkin", "es-checkin")]:
        page.goto(live_url + path)
        _check(page, name)


def test_crisis_banner_is_one_line_at_1366x768_on_the_check_in_desk(
        browser: Any, live_url: str, app: Flask, demo: dict[str, Any]) -> None:
    """Two crises waiting: the banner takes one line of a 1366x768 screen, 911 and 988 in view,
    the details one tap away; it has nothing that dismisses it."""
    context = new_context(browser, viewport={"width": 1366, "height": 768})
    context.set_default_timeout(15000)
    page = context.new_page()
    try:
        browser_login(page, live_url, _staff(app, "admin"))
        page.goto(live_url + "/dashboard/checkin")
        banner = page.locator(".crisis-banner")
        box = banner.bounding_box()
        assert box is not None
        # One 44 px row (the tap target), where the old banner took 170-230 px.
        assert box["height"] <= 60, box
        line = banner.inner_text()
        assert "Crises waiting: 2" in line and "longest wait:" in line
        assert page.get_by_text("call 911", exact=False).is_visible()
        assert page.get_by_text("988", exact=False).first.is_visible()
        assert banner.get_by_role("button").count() == 0  # nothing dismisses it
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # The screen as staff see it (not the full page): the banner and what is under it.
        page.screenshot(path=str(SCREENSHOTS / "crisis-banner-1366x768.png"))
        _check(page, "crisis-banner-checkin")
        banner.get_by_text("Details and acknowledge").click()
        assert banner.get_by_role("link", name="Open and acknowledge").is_visible()
        assert banner.get_by_role("link", name="Acknowledge with a note").is_visible()
        assert "Waiting" in banner.inner_text() and "Received" in banner.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "crisis-banner-1366x768-open.png"))
        _check(page, "crisis-banner-open")
        # In Spanish too: still one line, 911 and 988 in view.
        page.get_by_role("button", name="Español").click()
        page.wait_for_load_state()
        page.screenshot(path=str(SCREENSHOTS / "crisis-banner-1366x768-es.png"))
        box = page.locator(".crisis-banner").bounding_box()
        assert box is not None and box["height"] <= 60, box
        assert "911" in page.locator(".crisis-line").inner_text()
    finally:
        context.close()


def test_waiting_times_keep_counting_without_a_reload(page: Any, live_url: str, app: Flask,
                                                     demo: dict[str, Any]) -> None:
    """The desk may stay on one page for an hour: the banner's refresh brings the waiting
    times up to date in place, and a details list someone opened stays open."""
    browser_login(page, live_url, _staff(app, "coordinator"))
    with get_db(app).transaction() as session:
        alert = session.scalars(select(CrisisAlert)).one()
        alert.received_at = utcnow() - timedelta(minutes=10, seconds=30)
    page.clock.install()
    page.goto(live_url + "/dashboard/checkin")
    banner = page.get_by_role("alert")
    assert "longest wait: 10 min" in banner.inner_text()
    banner.get_by_text("Details and acknowledge").click()
    with get_db(app).transaction() as session:
        # As if 25 minutes went by on the server (its clock is not the page's to move).
        alert = session.scalars(select(CrisisAlert)).one()
        alert.received_at = utcnow() - timedelta(minutes=35, seconds=30)
    page.clock.run_for(21_000)
    from playwright.sync_api import expect

    # A locator assertion polls from Playwright's side: a page function would be evaluated
    # in the page, which the dashboard's CSP (no unsafe-eval) refuses.
    expect(page.locator('[data-waited="oldest"]')).to_have_text("35 min", timeout=15_000)
    assert page.locator(".crisis-details").get_attribute("open") is not None
    assert "Waiting 35 min" in banner.inner_text()
