"""Admin pages: site settings, users and one-time links, roster upload, the audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.app_settings import of as settings_of
from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import AuditLog, Member, Site, User
from onsite_server.services import audit
from onsite_server.services.catalog import site_settings

from ..report_data import add_members, add_submissions, kiosk_for, submission_row
from .helpers import PASSWORD, Staff, csrf_token, login, post_form

# Admin pages and forms: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only


def _site(app: Flask, site_id: int) -> Site:
    with get_db(app).transaction() as session:
        site = session.get(Site, site_id)
        assert site is not None
        session.expunge(site)
        return site


def test_settings_page_says_site_overrides_server(as_admin: FlaskClient) -> None:
    html = as_admin.get("/dashboard/admin/settings").get_data(as_text=True)
    assert "override the server&#39;s defaults" in html or "override the server's defaults" in html
    assert "Following the server default: 90 s" in html


def test_settings_change_reaches_the_kiosk_catalog(app: Flask, as_admin: FlaskClient,
                                                   site: Any) -> None:
    resp = post_form(as_admin, "/dashboard/admin/settings", {
        "timezone": "America/Chicago", "idle_seconds": "120", "branding_name": "Acme Health",
        "enabled_instruments": ["phq9", "blood_pressure"],
        "local_crisis_resources": "Acme EAP | +1-555-0199 | https://eap.example"})
    assert resp.status_code == 302
    stored = _site(app, site.id)
    settings = site_settings(stored, settings_of(app))
    assert stored.timezone == "America/Chicago"
    assert settings["timeouts"]["idle_seconds"] == 120
    assert settings["timeouts"]["session_cap_seconds"] == \
        app.config["KIOSK_SESSION_CAP_SECONDS"]
    assert settings["branding"]["name"] == "Acme Health"
    assert settings["local_crisis_resources"][0]["phone"] == "+1-555-0199"
    assert sorted(stored.settings["enabled_instruments"]) == ["blood_pressure", "phq9"]
    html = as_admin.get("/dashboard/admin/settings").get_data(as_text=True)
    assert "Overrides the server default (90 s)" in html


def test_a_new_time_zone_says_what_it_does_to_the_slots_already_made(
        app: Flask, as_admin: FlaskClient, site: Any) -> None:
    """A site made with the default zone, then set right: the admin is told the slots'
    clock times move (their moment stays), with the first one before and after."""
    from ..helpers import gen_event

    with get_db(app).transaction() as session:
        event = gen_event(session, session.get(Site, site.id), slots=2)  # type: ignore[arg-type]
        first = min(s.start_at for s in event.slots)
    resp = post_form(as_admin, "/dashboard/admin/settings", {
        "timezone": "America/Los_Angeles", "enabled_instruments": ["phq9"]})
    assert resp.status_code == 302
    html = as_admin.get("/dashboard/admin/settings").get_data(as_text=True)
    before = first.astimezone(ZoneInfo(site.timezone)).strftime("%Y-%m-%d %H:%M")
    after = first.astimezone(ZoneInfo("America/Los_Angeles")).strftime("%Y-%m-%d %H:%M")
    assert "The 2 upcoming slots keep their moment in time" in html
    assert f"the first, {before} before, is now {after}" in html
    assert 'class="flash flash-warning"' in html
    # Saved again without a change of zone: nothing to say.
    post_form(as_admin, "/dashboard/admin/settings", {
        "timezone": "America/Los_Angeles", "enabled_instruments": ["phq9"]})
    assert "keep their moment" not in as_admin.get("/dashboard/admin/settings").get_data(
        as_text=True)


@pytest.mark.parametrize("field,value,message", [
    ("idle_seconds", "5", "between 30 and 600"),
    ("crisis_screen_seconds", "30", "between 120 and 3600"),
    ("branding_color", "#ffff00", "hard to read"),
    ("timezone", "Mars/Olympus", "Unknown timezone"),
    # In the zone folder, but no place: the server's clock here, the kiosk's on a kiosk.
    ("timezone", "localtime", "Unknown timezone"),
    ("timezone", "right/America/New_York", "Unknown timezone"),
    ("local_crisis_resources", "Lifeline | 988", "988 and 911 are always shown"),
    ("local_crisis_resources", "Just a name", "Line 1"),
])
def test_bad_settings_are_refused_next_to_the_field(app: Flask, as_admin: FlaskClient,
                                                    site: Any, field: str, value: str,
                                                    message: str) -> None:
    data = {"timezone": "America/New_York", "enabled_instruments": ["phq9"], field: value}
    resp = post_form(as_admin, "/dashboard/admin/settings", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert message in html
    assert re.search(rf'id="{field}-error"', html), f"no error next to {field}"
    assert not (_site(app, site.id).settings or {})


def _invite(client: FlaskClient, email: str, role: str = "coordinator") -> str:
    resp = post_form(client, "/dashboard/admin/users", {"email": email, "name": "New Person",
                                                        "role": role, "advocate": ""})
    found = re.search(r'value="(http://[^"]+/account/link/[^"]+)"', resp.get_data(as_text=True))
    assert found, resp.get_data(as_text=True)[:2000]
    return found.group(1).split("localhost", 1)[1]


def test_invitation_link_sets_a_password_once(app: Flask, as_admin: FlaskClient) -> None:
    path = _invite(as_admin, "invited@test.example")
    newcomer = app.test_client()
    done = post_form(newcomer, path, {"password": "a long new password",
                                      "confirm": "a long new password"})
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    login(newcomer, Staff(0, "coordinator", "invited@test.example", "a long new password",
                          None, None, None))
    assert newcomer.get("/dashboard/").status_code == 200
    assert app.test_client().get(path).status_code == 404


def test_invited_advocate_needs_an_advocate_record(as_admin: FlaskClient) -> None:
    resp = post_form(as_admin, "/dashboard/admin/users", {
        "email": "adv2@test.example", "name": "Adv", "role": "advocate", "advocate": ""})
    assert "Choose which advocate" in resp.get_data(as_text=True)


def test_reset_password_stops_the_old_one(app: Flask, as_admin: FlaskClient,
                                          staff: dict[str, Staff]) -> None:
    who = staff["coordinator"]
    victim = app.test_client()
    login(victim, who)
    resp = post_form(as_admin, f"/dashboard/admin/users/{who.id}/reset-password",
                     page="/dashboard/admin/users")
    link = re.search(r'value="http://localhost(/account/link/[^"]+)"',
                     resp.get_data(as_text=True))
    assert link
    # The old session and the old password are both gone.
    assert victim.get("/dashboard/").status_code == 302
    failed = post_form(app.test_client(), "/login", {"email": who.email, "password": PASSWORD})
    assert "wrong" in failed.get_data(as_text=True)
    post_form(app.test_client(), link.group(1), {"password": "another good password",
                                                 "confirm": "another good password"})
    who.password = "another good password"
    login(app.test_client(), who)


def test_disable_and_enable(app: Flask, as_admin: FlaskClient,
                            staff: dict[str, Staff]) -> None:
    who = staff["coordinator"]
    post_form(as_admin, f"/dashboard/admin/users/{who.id}/disable",
              page="/dashboard/admin/users")
    failed = post_form(app.test_client(), "/login", {"email": who.email, "password": PASSWORD})
    assert failed.status_code == 200 and "wrong" in failed.get_data(as_text=True)
    post_form(as_admin, f"/dashboard/admin/users/{who.id}/enable",
              page="/dashboard/admin/users")
    login(app.test_client(), who)


def test_admin_cannot_disable_themselves(as_admin: FlaskClient,
                                         staff: dict[str, Staff]) -> None:
    resp = post_form(as_admin, f"/dashboard/admin/users/{staff['admin'].id}/disable",
                     page="/dashboard/admin/users", follow_redirects=True)
    assert "cannot do that to your own account" in resp.get_data(as_text=True)


def test_another_sites_user_is_not_found(app: Flask, as_admin: FlaskClient) -> None:
    from .helpers import gen_staff, site_of

    elsewhere = gen_staff(app, "coordinator", site_of(app, "elsewhere"),
                          email="far@test.example")
    resp = post_form(as_admin, f"/dashboard/admin/users/{elsewhere.id}/disable",
                     page="/dashboard/admin/users")
    assert resp.status_code == 404
    with get_db(app).transaction() as session:
        user = session.get(User, elsewhere.id)
        assert user is not None and user.active


def _roster(rows: int, *, bad: bool = False) -> bytes:
    lines = ["member_id,employee_id,badge_id,first_name,last_name,birth_date,language,phone,"
             "email"]
    lines += [f"M-{i:06d},E{i:06d},B{i:06d},Firstname{i},Lastname{i},1980-02-03,en,"
              f"+1-555-{i % 10000:04d},person{i}@example.com" for i in range(rows)]
    if bad:
        lines.append("M-x,E-x,,,Nobody,1980-02-30,xx,,")
    return ("\n".join(lines) + "\n").encode()


def _upload(client: FlaskClient, body: bytes, filename: str = "roster.csv", **flags: str) -> Any:
    from werkzeug.datastructures import FileStorage, MultiDict
    from werkzeug.test import encode_multipart

    html = client.get("/dashboard/admin/roster").get_data(as_text=True)
    fields: MultiDict[str, Any] = MultiDict({"csrf_token": csrf_token(html), **flags})
    fields.add("file", FileStorage(BytesIO(body), filename=filename,
                                   content_type="text/csv"))
    # Encoded in memory: the test client would spool a large body to a temporary file that
    # it never closes.
    boundary, payload = encode_multipart(fields)
    return client.post("/dashboard/admin/roster", data=payload,
                       content_type=f"multipart/form-data; boundary={boundary}")


def test_roster_upload_with_a_bad_row_imports_nothing_and_reports_it(
        app: Flask, as_admin: FlaskClient) -> None:
    resp = _upload(as_admin, _roster(3, bad=True))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Not imported" in html
    assert "<td>5</td><td>first_name</td>" in html.replace("\n", "")
    with get_db(app).transaction() as session:
        assert session.scalars(select(Member)).first() is None
    partial = _upload(as_admin, _roster(3, bad=True), partial="y")
    assert "Imported" in partial.get_data(as_text=True)
    with get_db(app).transaction() as session:
        assert len(session.scalars(select(Member)).all()) == 3


@pytest.mark.slow
def test_roster_limit_takes_a_60000_row_file(as_admin: FlaskClient, app: Flask) -> None:
    body = _roster(60_000)
    assert len(body) > app.config["MAX_CONTENT_LENGTH"]  # over the server's general limit
    resp = _upload(as_admin, body, dry_run="y")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html[:500]
    assert "Checked (nothing imported)" in html and "60000" in html


def test_roster_with_a_cell_beyond_the_csv_limit_is_refused_beside_the_form(
        as_admin: FlaskClient) -> None:
    """Not a 500 from csv.Error: the refusal names the row, and nothing is imported."""
    body = _roster(2) + b"M-9,E9,B9," + b"y" * 131_073 + b",Z,1980-02-03,en,,\n"
    resp = _upload(as_admin, body)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "row 4: a cell is longer than 131072 characters" in html


def test_roster_with_more_rows_than_the_cap_is_refused(as_admin: FlaskClient,
                                                       app: Flask) -> None:
    override(app, ROSTER_MAX_ROWS=2)
    resp = _upload(as_admin, _roster(3), dry_run="y")
    assert resp.status_code == 422
    assert "the file has more than 2 rows" in resp.get_data(as_text=True)


def test_roster_saved_as_excel_unicode_text_is_imported_with_its_names(
        app: Flask, as_admin: FlaskClient) -> None:
    """Excel's "Unicode Text": UTF-16 with a byte-order mark, cells separated by tabs."""
    text = ("member_id\temployee_id\tfirst_name\tlast_name\tbirth_date\r\n"
            "M-1\tE1\tJosé\tMuñoz–Pérez\t1980-01-02\r\n")
    # Saved by Excel as "Unicode Text (*.txt)".
    resp = _upload(as_admin, b"\xff\xfe" + text.encode("utf-16-le"), filename="Roster.txt")
    assert resp.status_code == 200 and "Imported" in resp.get_data(as_text=True)
    with get_db(app).transaction() as session:
        member = session.scalars(select(Member)).one()
        assert (member.first_name, member.last_name) == ("José", "Muñoz–Pérez")


@pytest.mark.parametrize(("body", "message"), [
    ("member_id,employee_id,first_name,last_name,birth_date\r\nM-1,E1,José,Ruiz,1980-01-02\r\n"
     .encode("cp1252"), "row 2, first_name: the file is not UTF-8 text"),
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "an Excel workbook (.xlsx)"),
])
def test_roster_that_is_not_utf8_csv_is_refused_beside_the_file_field(
        app: Flask, as_admin: FlaskClient, body: bytes, message: str) -> None:
    resp = _upload(as_admin, body)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    found = re.search(r'id="file-error"[^>]*>(.*?)</', html, re.S)
    assert found and message in found.group(1) and "CSV UTF-8" in found.group(1)
    with get_db(app).transaction() as session:
        assert session.scalars(select(Member)).first() is None


def test_roster_over_its_own_limit_is_refused(as_admin: FlaskClient) -> None:
    from onsite_server.dashboard.admin import ROSTER_MAX_BYTES

    resp = _upload(as_admin, b"x" * (ROSTER_MAX_BYTES + 1))
    assert resp.status_code == 413


def test_the_general_limit_still_holds_elsewhere(as_admin: FlaskClient, app: Flask) -> None:
    html = as_admin.get("/dashboard/admin/settings").get_data(as_text=True)
    resp = as_admin.post("/dashboard/admin/settings", data={
        "csrf_token": csrf_token(html),
        "branding_name": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)})
    assert resp.status_code == 413


def test_audit_log_shows_log_ins(app: Flask, as_admin: FlaskClient,
                                 staff: dict[str, Staff]) -> None:
    html = as_admin.get("/dashboard/admin/audit?action=auth.").get_data(as_text=True)
    assert "auth.login" in html and f"user:{staff['admin'].id}" in html
    with get_db(app).transaction() as session:
        assert session.scalars(select(AuditLog).where(AuditLog.action == "auth.login")).first()


def test_audit_detail_reads_as_typed_and_is_escaped(app: Flask, as_admin: FlaskClient) -> None:
    with get_db(app).transaction() as session:
        audit.record(session, "user:1", "event.created", "event:x",
                     detail={"title": "Clínica <b>uno</b>"})
    html = as_admin.get("/dashboard/admin/audit?action=event.").get_data(as_text=True)
    assert "Clínica &lt;b&gt;uno&lt;/b&gt;" in html
    assert "\\u00ed" not in html and "<b>uno" not in html


# --- the reports' minimum cell size --------------------------------------------------------

def test_min_cell_is_saved_audited_and_shown_as_an_override(app: Flask, as_admin: FlaskClient,
                                                            site: Any) -> None:
    page = as_admin.get("/dashboard/admin/settings").get_data(as_text=True)
    assert 'name="min_cell"' in page
    assert f"Following the server default: {app.config['MIN_CELL']} people" in page
    resp = post_form(as_admin, "/dashboard/admin/settings", {
        "timezone": "America/New_York", "enabled_instruments": ["phq9"], "min_cell": " 15 "})
    assert resp.status_code == 302
    assert _site(app, site.id).settings["min_cell"] == 15
    with get_db(app).transaction() as session:
        row = session.scalars(select(AuditLog).where(
            AuditLog.action == "site.settings_changed").order_by(AuditLog.id.desc())).first()
        assert row is not None and "min_cell" in row.detail["keys"]
    page = as_admin.get("/dashboard/admin/settings").get_data(as_text=True)
    assert 'value="15"' in page
    assert f"Overrides the server default ({app.config['MIN_CELL']} people)" in page
    # Blank again: the site follows the server once more.
    resp = post_form(as_admin, "/dashboard/admin/settings", {
        "timezone": "America/New_York", "enabled_instruments": ["phq9"], "min_cell": ""})
    assert resp.status_code == 302
    assert "min_cell" not in (_site(app, site.id).settings or {})


@pytest.mark.parametrize(("value", "message"), [
    ("4", "must be at least 5"),
    ("0", "must be at least 5"),
    ("-11", "must be at least 5"),
    ("7.5", "must be a whole number"),
    ("eleven", "must be a whole number"),
])
def test_min_cell_below_five_or_not_whole_is_refused_next_to_the_field(
        app: Flask, as_admin: FlaskClient, site: Any, value: str, message: str) -> None:
    resp = post_form(as_admin, "/dashboard/admin/settings", {
        "timezone": "America/New_York", "enabled_instruments": ["phq9"], "min_cell": value})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    found = re.search(r'id="min_cell-error"[^>]*>(.*?)</', html, re.S)
    assert found and " ".join(found.group(1).split()) == message
    assert "min_cell" not in (_site(app, site.id).settings or {})


def test_the_report_uses_the_minimum_saved_on_the_settings_page(
        app: Flask, as_admin: FlaskClient, site: Any) -> None:
    when = datetime(2026, 3, 3, 15, 10, tzinfo=UTC)
    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        kiosk = kiosk_for(session, row)
        members = add_members(session, row.employer_id, 40)
        bands = ["normal"] * 22 + ["elevated"] * 18
        add_submissions(session, [submission_row(kiosk, m, None, "blood_pressure", b, when)
                                  for m, b in zip(members, bands, strict=True)])
    url = "/dashboard/reports/outcome_blood_pressure.csv?start=2026-03&end=2026-03"
    before = as_admin.get(url).get_data(as_text=True)
    assert "Elevated blood pressure,18" in before  # 18 >= the server's 11
    assert post_form(as_admin, "/dashboard/admin/settings", {
        "timezone": "America/New_York", "enabled_instruments": ["phq9"],
        "min_cell": "20"}).status_code == 302
    after = as_admin.get(url).get_data(as_text=True)
    assert "Elevated blood pressure,suppressed" in after  # 18 < 20
    page = as_admin.get("/dashboard/reports?start=2026-03&end=2026-03").get_data(as_text=True)
    assert "Minimum cell size: 20 people." in page


def test_audit_log_pages_by_cursor_from_newest_to_oldest(app: Flask, as_admin: FlaskClient,
                                                         site: Any) -> None:
    with get_db(app).transaction() as session:
        for i in range(120):
            audit.record(session, "user:1", f"paging.{i:03d}", f"site:{site.id}")
    html = as_admin.get("/dashboard/admin/audit?action=paging.").get_data(as_text=True)
    assert "paging.119" in html and "paging.069" not in html and "120 entries" in html
    assert "Newer" not in html
    older = re.search(r'href="([^"]*before=\d+[^"]*)"', html)
    assert older
    html = as_admin.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "paging.069" in html and "paging.070" not in html and "paging.119" not in html
    oldest = re.search(r'href="([^"]*oldest=1[^"]*)"', html)
    assert oldest
    html = as_admin.get(oldest.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "paging.000" in html and "paging.049" in html and "paging.050" not in html
    assert "Older" not in html and "Newer" in html
    # A cursor that is not a number is ignored, not an error.
    assert as_admin.get("/dashboard/admin/audit?before=x'--").status_code == 200
