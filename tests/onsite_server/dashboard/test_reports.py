"""The employer report page and its CSV downloads: suppressed cells marked, minimum stated."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from onsite_server.db import get_db
from onsite_server.models import Site

from ..report_data import (
    CUFF,
    SCALE,
    add_event,
    add_members,
    add_submissions,
    kiosk_for,
    submission_row,
)
from .conftest import axe_violations, browser_login, screenshot
from .helpers import Staff

MARCH = datetime(2026, 3, 3, 15, 10, tzinfo=UTC)
PERIOD = "start=2026-03&end=2026-03"


@pytest.fixture
def report_data(app: Flask, site: Any) -> None:
    """60 members screened for blood pressure (3 at stage 2: a small cell; 8 typed, the rest
    from a cuff), and one event."""
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        kiosk = kiosk_for(session, row)
        members = add_members(session, row.employer_id, 60)
        bands = ["normal"] * 30 + ["elevated"] * 15 + ["stage_1"] * 12 + ["stage_2"] * 3
        add_submissions(session, [
            # 52 from the cuff, 8 typed: a small side of the device split (issue 19).
            submission_row(kiosk, m, None, "blood_pressure", b, MARCH + timedelta(hours=i % 3),
                           devices=[CUFF] if i >= 8 else None)
            for i, (m, b) in enumerate(zip(members, bands, strict=True))])
        add_submissions(session, [
            submission_row(kiosk, m, None, "phq2", "positive" if i < 14 else "negative", MARCH)
            for i, m in enumerate(members[:50])])
        add_event(session, site.id, "Biometric screening", MARCH,
                  [(m, "checked_in") for m in members[:24]] + [(m, "no_show")
                                                             for m in members[24:26]],
                  title_es="Evaluación biométrica")


def test_coordinator_sees_the_report_with_suppressed_cells_marked(
        as_coordinator: FlaskClient, report_data: None) -> None:
    resp = as_coordinator.get(f"/dashboard/reports?{PERIOD}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Minimum cell size: 11 people." in html
    assert 'class="suppressed"' in html and "suppressed" in html
    assert "High blood pressure, stage 2" in html
    assert "<svg" in html and 'role="img"' in html
    assert ">60<" in html  # the blood-pressure total is published
    assert "Biometric screening" in html


def test_the_page_in_spanish(as_coordinator: FlaskClient, report_data: None) -> None:
    resp = as_coordinator.get(f"/dashboard/reports?{PERIOD}", headers={
        "Accept-Language": "es"})
    html = resp.get_data(as_text=True)
    assert "Tamaño mínimo de celda: 11 personas." in html
    assert "suprimido" in html
    assert "Presión arterial alta, etapa 2" in html


def test_csv_has_the_same_suppression(as_admin: FlaskClient, report_data: None) -> None:
    resp = as_admin.get(f"/dashboard/reports/outcome_blood_pressure.csv?{PERIOD}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.get_data().startswith(codecs.BOM_UTF8)  # Excel reads it as UTF-8
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = {r[0]: r[1] for r in csv.reader(io.StringIO(resp.get_data(as_text=True))) if r}
    assert rows["High blood pressure, stage 2"] == "suppressed"
    assert rows["Normal blood pressure"] == "30"
    assert rows["Total"] == "60"
    hidden = [k for k, v in rows.items() if v == "suppressed"]
    assert len(hidden) >= 2  # the 3, and a complement so the total does not give it away


def test_device_origin_csv_hides_both_sides_of_a_small_split(as_admin: FlaskClient,
                                                             report_data: None) -> None:
    resp = as_admin.get(f"/dashboard/reports/origin.csv?{PERIOD}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert rows == [["", "Measured by a device", "Typed by the member (self-reported)", "Total"],
                    ["Blood pressure", "suppressed", "suppressed", "60"]]
    spanish = as_admin.get(f"/dashboard/reports/origin.csv?{PERIOD}",
                           headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Presión arterial,suprimido,suprimido,60" in spanish


def test_a_site_setting_raises_the_minimum(app: Flask, site: Any, as_coordinator: FlaskClient,
                                           report_data: None) -> None:
    with get_db(app).transaction() as session:
        session.execute(update(Site).where(Site.id == site.id).values(settings={"min_cell": 20}))
    html = as_coordinator.get(f"/dashboard/reports?{PERIOD}").get_data(as_text=True)
    assert "Minimum cell size: 20 people." in html
    csv_text = as_coordinator.get(f"/dashboard/reports/outcome_blood_pressure.csv?{PERIOD}"
                                  ).get_data(as_text=True)
    assert "Elevated blood pressure,suppressed" in csv_text  # 15 < 20


def test_a_setting_below_five_is_ignored(app: Flask, site: Any, as_coordinator: FlaskClient
                                         ) -> None:
    with get_db(app).transaction() as session:
        session.execute(update(Site).where(Site.id == site.id).values(settings={"min_cell": 2}))
    html = as_coordinator.get(f"/dashboard/reports?{PERIOD}").get_data(as_text=True)
    assert "Minimum cell size: 11 people." in html


@pytest.mark.parametrize(("query", "field"), [("start=2026-13&end=2026-03", "start"),
                                              ("start=2026-04&end=2026-03", "end"),
                                              ("start=2026-01&end=03-2026", "end")])
@pytest.mark.sqlite_only
def test_a_bad_period_is_named_next_to_its_field(as_coordinator: FlaskClient, query: str,
                                                 field: str) -> None:
    resp = as_coordinator.get(f"/dashboard/reports?{query}")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert f'id="{field}-error"' in html
    bad_csv = as_coordinator.get(f"/dashboard/reports/screenings.csv?{query}")
    assert bad_csv.status_code == 422
    assert bad_csv.get_data(as_text=True).startswith("This report period cannot be used: ")
    spanish = as_coordinator.get(f"/dashboard/reports/screenings.csv?{query}",
                                 headers={"Accept-Language": "es"})
    assert spanish.get_data(as_text=True).startswith("No se puede usar este periodo")


@pytest.mark.sqlite_only
def test_an_unknown_table_is_not_found(as_coordinator: FlaskClient) -> None:
    assert as_coordinator.get(f"/dashboard/reports/nope.csv?{PERIOD}").status_code == 404


@pytest.mark.sqlite_only
def test_advocates_do_not_see_reports(as_advocate: FlaskClient) -> None:
    assert as_advocate.get("/dashboard/reports").status_code == 403


@pytest.mark.slow
# Once, on SQLite: what a person sees (the report's queries run on both in the tests above).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_browser_report_shows_a_suppressed_cell(page: Any, live_url: str,
                                                staff: dict[str, Staff],
                                                report_data: None) -> None:
    browser_login(page, live_url, staff["coordinator"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.get_by_label("From month").fill("2026-03")
    page.get_by_label("To month (included)").fill("2026-03")
    page.get_by_role("button", name="Show report").click()
    page.wait_for_load_state()
    table = page.locator("#table-outcome_blood_pressure")
    stage_2 = table.get_by_role("row", name="High blood pressure, stage 2")
    assert "suppressed" in stage_2.inner_text()
    assert page.get_by_text("Minimum cell size: 11 people.").is_visible()
    chart = page.locator("#chart-outcome_blood_pressure")
    assert "suppressed" in chart.text_content()
    assert axe_violations(page) == []
    screenshot(page, "reports")
    page.get_by_text("Show the table by day and hour").click()
    day_hour = page.locator("#table-day_hour")
    assert day_hour.is_visible() and "10:00" in day_hour.inner_text()
    assert axe_violations(page) == []
    screenshot(page, "reports-day-hour")
    page.get_by_role("button", name="Español").click()
    page.wait_for_load_state()
    assert "suprimido" in page.locator("#table-outcome_blood_pressure").inner_text()
    assert axe_violations(page) == []
    screenshot(page, "reports-es")


def test_a_chart_writes_every_value_and_marks_suppressed_bars_without_colour() -> None:
    from onsite_server.dashboard.charts import Bar, bar_chart

    svg = str(bar_chart("c", "Title", [Bar("<b>Typed & titled</b>", None, "suppressed"),
                                        Bar("Shown", 40, "40 people")], description="Desc"))
    assert "<b>" not in svg and "&lt;b&gt;Typed &amp; titled&lt;/b&gt;" in svg
    assert 'fill="url(#c-hatch)"' in svg and 'stroke-dasharray' in svg  # a hatch, not a hue
    assert ">suppressed</text>" in svg and ">40 people</text>" in svg
    desc = '<desc id="c-d">Desc &lt;b&gt;Typed &amp; titled&lt;/b&gt;: suppressed; Shown: 40'
    assert desc in svg


# --- the employer's own log-in ------------------------------------------------------------

@pytest.fixture
def employer(app: Flask, site: Any) -> Staff:
    """An employer account at the test site (reports only)."""
    from .helpers import gen_staff

    return gen_staff(app, "employer", site, email="hr@employer.example")


def _employer_client(app: Flask, employer: Staff) -> FlaskClient:
    from .helpers import login

    client = app.test_client()
    login(client, employer)
    return client


def test_an_employer_reads_its_sites_reports_and_nothing_else(
        app: Flask, site: Any, employer: Staff, report_data: None) -> None:
    from ..helpers import gen_site

    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        gen_site(session, "second-plant", employer=row.employer)
        gen_site(session, "a-stranger")
    client = _employer_client(app, employer)
    html = client.get(f"/dashboard/reports?{PERIOD}").get_data(as_text=True)
    assert "Minimum cell size: 11 people." in html and 'class="suppressed"' in html
    assert "Biometric screening" in html and ">60<" in html
    # Its employer's two sites to choose from; never another employer's.
    assert 'value="second-plant"' in html and "a-stranger" not in html
    other = client.get(f"/dashboard/reports?{PERIOD}&site=second-plant")
    assert other.status_code == 200 and "Biometric screening" not in other.get_data(
        as_text=True)
    assert client.get(f"/dashboard/reports?{PERIOD}&site=a-stranger").status_code == 404
    assert client.get(f"/dashboard/reports/screenings.csv?{PERIOD}&site=a-stranger"
                      ).status_code == 404
    csv_rows = {r[0]: r[1] for r in csv.reader(io.StringIO(client.get(
        f"/dashboard/reports/outcome_blood_pressure.csv?{PERIOD}").get_data(as_text=True)))
        if r}
    assert csv_rows["High blood pressure, stage 2"] == "suppressed"
    # The navigation offers the reports alone.
    home = client.get("/dashboard/").get_data(as_text=True)
    assert "/dashboard/reports" in home
    for page in ("/dashboard/events", "/dashboard/checkin", "/dashboard/admin/audit",
                 "/dashboard/fleet", "/advocate/"):
        assert page not in home
        assert client.get(page).status_code == 403


def test_a_site_admin_cannot_read_a_sibling_sites_report(
        app: Flask, site: Any, as_admin: FlaskClient) -> None:
    from ..helpers import gen_site

    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        gen_site(session, "second-plant", employer=row.employer)
    assert as_admin.get(f"/dashboard/reports?{PERIOD}&site=second-plant").status_code == 404


def test_the_report_as_pdf(app: Flask, employer: Staff, report_data: None,
                           tmp_path: Any) -> None:
    """The PDF holds the same suppressed cells; it is rendered to PNG to be looked at."""
    import shutil
    import subprocess

    from .conftest import SCREENSHOTS
    from .site_data import pdf_text

    client = _employer_client(app, employer)
    resp = client.get(f"/dashboard/reports/report.pdf?{PERIOD}")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert 'filename="report-test-site-2026-03-2026-03.pdf"' in resp.headers[
        "Content-Disposition"]
    pdf = resp.get_data()
    assert pdf.startswith(b"%PDF-")
    words = pdf_text(pdf)
    assert "Minimum cell size: 11 people." in words
    assert "High blood pressure, stage 2" in words and "suppressed" in words
    assert "Biometric screening" in words
    lines = {" ".join(line.split()) for line in words.splitlines()}
    assert "Normal blood pressure 30" in lines and "Total 60" in lines
    assert not any(line.startswith("High blood pressure, stage 2 3") for line in lines)
    # Where the readings came from: 8 typed of 60, so both sides of the split are hidden.
    assert "Readings from devices" in words
    assert "Blood pressure suppressed suppressed 60" in lines
    spanish = pdf_text(client.get(f"/dashboard/reports/report.pdf?{PERIOD}", headers={
        "Accept-Language": "es"}).get_data())
    assert "Tamaño mínimo de celda: 11 personas." in spanish and "suprimido" in spanish
    assert "Evaluación biométrica" in spanish
    assert "Mediciones con aparatos" in spanish
    if shutil.which("pdftoppm"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        source = tmp_path / "report.pdf"
        source.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", "70", str(source),
                        str(SCREENSHOTS / "employer-report-pdf")], check=True, timeout=60)
        assert list(SCREENSHOTS.glob("employer-report-pdf*.png"))


def test_an_employer_is_invited_like_any_user(app: Flask, as_admin: FlaskClient) -> None:
    from .helpers import post_form

    resp = post_form(as_admin, "/dashboard/admin/users",
                     {"email": "boss@employer.example", "name": "HR lead", "role": "employer"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "/account/link/" in html
    link = html.split("/account/link/")[1].split('"')[0].split("<")[0]
    done = post_form(app.test_client(), f"/account/link/{link}",
                     {"password": "a long enough password", "confirm": "a long enough password"})
    assert done.status_code == 302
    # The dashboard never makes an operator: that role is the command line's to grant.
    refused = post_form(as_admin, "/dashboard/admin/users",
                        {"email": "ops@example.org", "name": "Ops", "role": "operator"})
    assert "Not a valid choice" in refused.get_data(as_text=True)
    from onsite_server.services import users as users_service

    with get_db(app).transaction(write=False) as session:
        assert users_service.find_by_email(session, "ops@example.org") is None
        made = users_service.find_by_email(session, "boss@employer.example")
        assert made is not None and made.role == "employer"


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_browser_an_employer_logs_in_over_https_and_downloads_the_pdf(
        app: Flask, site: Any, page: Any, live_https_url: str, employer: Staff,
        report_data: None) -> None:
    """As an employer really uses it: the server's own TLS, the site choice, the PDF link."""
    from ..helpers import gen_site
    from .site_data import pdf_text

    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        gen_site(session, "second-plant", employer=row.employer)
    browser_login(page, live_https_url, employer)
    nav = page.get_by_role("navigation", name="Main")
    assert [link.inner_text() for link in nav.get_by_role("link").all()
            if link.inner_text() in ("Reports", "Events", "Audit log", "Kiosks")] == ["Reports"]
    nav.get_by_role("link", name="Reports").click()
    page.get_by_label("Site").select_option("test-site")
    page.get_by_label("From month").fill("2026-03")
    page.get_by_label("To month (included)").fill("2026-03")
    page.get_by_role("button", name="Show report").click()
    page.wait_for_load_state()
    assert "Site test-site" in page.locator(".report-site").inner_text()
    stage_2 = page.locator("#table-outcome_blood_pressure").get_by_role(
        "row", name="High blood pressure, stage 2")
    assert "suppressed" in stage_2.inner_text()
    assert axe_violations(page) == []
    screenshot(page, "reports-employer")
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download the whole report as PDF").click()
    download = waiting.value
    assert download.suggested_filename == "report-test-site-2026-03-2026-03.pdf"
    words = pdf_text(Path(download.path()).read_bytes())
    assert "High blood pressure, stage 2" in words and "suppressed" in words


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_browser_device_origin_over_https_in_english_and_spanish(
        app: Flask, site: Any, page: Any, live_https_url: str, staff: dict[str, Staff],
        report_data: None) -> None:
    """Issue 19 as a coordinator reads it: the server's own TLS, the device table, its CSV."""
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        kiosk = kiosk_for(session, row, "scale-kiosk")
        members = add_members(session, row.employer_id, 30, prefix="W")
        # BMI: 18 weighed on the scale, 12 typed: both sides published.
        add_submissions(session, [
            submission_row(kiosk, m, None, "bmi", "overweight", MARCH,
                           devices=[SCALE] if i < 18 else None) for i, m in enumerate(members)])
    browser_login(page, live_https_url, staff["coordinator"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.get_by_label("From month").fill("2026-03")
    page.get_by_label("To month (included)").fill("2026-03")
    page.get_by_role("button", name="Show report").click()
    page.wait_for_load_state()
    table = page.locator("#table-origin")
    assert page.get_by_role("heading", name="Readings from devices").is_visible()
    headers = [h.inner_text() for h in table.locator("thead th").all()]
    assert headers == ["Measured by a device", "Typed by the member (self-reported)", "Total"]
    bp = table.get_by_role("row", name="Blood pressure").inner_text().split("\t")
    assert [c.strip() for c in bp[1:]] == ["▨ suppressed", "▨ suppressed", "60"]
    bmi = table.get_by_role("row", name="Body mass index (BMI)").inner_text().split("\t")
    assert [c.strip() for c in bmi[1:]] == ["18", "12", "30"]
    assert axe_violations(page) == []
    table.scroll_into_view_if_needed()
    screenshot(page, "reports-device-origin")
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download CSV: Blood pressure and BMI: people by where "
                                      "their reading came from").click()
    rows = list(csv.reader(io.StringIO(Path(waiting.value.path()).read_text())))
    assert rows[1:] == [["Blood pressure", "suppressed", "suppressed", "60"],
                        ["Body mass index (BMI)", "18", "12", "30"]]
    page.get_by_role("button", name="Español").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Mediciones con aparatos").is_visible()
    spanish = page.locator("#table-origin").inner_text()
    assert "Medido con un aparato" in spanish and "Escrito por la persona" in spanish
    assert "suprimido" in spanish
    assert axe_violations(page) == []
    screenshot(page, "reports-device-origin-es")


@pytest.mark.sqlite_only
def test_pdf_prints_typed_punctuation_plainly(app: Flask, site: Any, as_admin: FlaskClient,
                                              report_data: None) -> None:
    """A name typed in Word or on a phone: its dashes and curly quotes are not "?"."""
    from .site_data import pdf_text

    with get_db(app).transaction() as session:
        session.execute(update(Site).where(Site.id == site.id)
                        .values(name="Planta Norte – “Sede” 🌟"))
    words = pdf_text(as_admin.get(f"/dashboard/reports/report.pdf?{PERIOD}").get_data())
    assert 'Planta Norte - "Sede" ?' in words
