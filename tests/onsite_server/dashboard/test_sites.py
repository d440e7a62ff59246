"""Each site's data stays with its staff, as the pages show it: an admin reads their own
site's audit log, dead letters and alerts; an operator reads every site's, and says whose."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Alert, AuditLog, OutboxMessage

from ..helpers import auth, identified_member, pair_kiosk, submission_item
from .helpers import Staff, gen_staff, login, post_form, site_of
from .site_data import SiteData, gen_site_data


@pytest.fixture
def two(app: Flask, site: Any) -> tuple[SiteData, SiteData]:
    """The test site and another employer's, each with one of everything."""
    return gen_site_data(app, site, "Here"), gen_site_data(app, site_of(app, "there"), "There")


@pytest.fixture
def operator(app: Flask) -> Staff:
    """An operator (the command line's grant: no site)."""
    return gen_staff(app, "operator", None, email="ops@test.example")


def test_an_admin_reads_their_own_sites_operations(as_admin: FlaskClient,
                                                   two: tuple[SiteData, SiteData]) -> None:
    here, there = two
    audit = as_admin.get("/dashboard/admin/audit").get_data(as_text=True)
    assert here.markers["audit_address"] in audit
    assert there.markers["audit_address"] not in audit
    assert "the whole server" not in audit  # no site column: it is all theirs
    sync = as_admin.get("/dashboard/sync").get_data(as_text=True)
    assert "referral:Here:v1" in sync and "booking:Here:v1" in sync
    assert "There" not in sync
    banner = as_admin.get("/dashboard/fleet").get_data(as_text=True)
    assert "AlertHere" in banner and "AlertThere" not in banner


def test_an_operator_reads_and_acts_on_every_site(app: Flask, operator: Staff,
                                                  two: tuple[SiteData, SiteData]) -> None:
    here, there = two
    client = app.test_client()
    login(client, operator)
    with get_db(app).transaction() as session:
        session.add(Alert(kind="outbox_stuck", message="ServerWideAlert"))
    audit = client.get("/dashboard/admin/audit").get_data(as_text=True)
    assert here.markers["audit_address"] in audit and there.markers["audit_address"] in audit
    assert "Site test-site" in audit and "Site there" in audit
    sync = client.get("/dashboard/sync").get_data(as_text=True)
    assert "referral:Here:v1" in sync and "referral:There:v1" in sync
    page = client.get("/dashboard/").get_data(as_text=True)
    assert all(a in page for a in ("AlertHere", "AlertThere", "ServerWideAlert"))
    # No site's own pages: an operator is not any site's admin.
    for path in ("/dashboard/admin/users", "/dashboard/admin/settings", "/dashboard/events",
                 "/dashboard/reports", "/dashboard/fleet"):
        assert client.get(path).status_code == 403, path
    post_form(client, f"/dashboard/sync/{there.ids['dead_booking']}/retry",
              page="/dashboard/sync")
    post_form(client, f"/dashboard/alerts/{there.ids['alert']}/clear", page="/dashboard/sync")
    with get_db(app).transaction(write=False) as session:
        row = session.get(OutboxMessage, there.ids["dead_booking"])
        alert = session.get(Alert, there.ids["alert"])
        assert row is not None and row.status == "pending"
        assert alert is not None and alert.cleared_at is not None


def test_no_admin_can_take_an_operators_account_over(app: Flask, operator: Staff,
                                                     as_admin: FlaskClient) -> None:
    # Not even an admin made without a site (who sees the site-less users).
    sitewide = gen_staff(app, "admin", None, email="root@test.example")
    client = app.test_client()
    login(client, sitewide)
    for who in (as_admin, client):
        resp = post_form(who, f"/dashboard/admin/users/{operator.id}/reset-password",
                         page="/dashboard/admin/users")
        assert resp.status_code == 404
    login(app.test_client(), operator)  # the password still works


def test_a_kiosks_crisis_and_referral_entries_are_its_sites(
        app: Flask, client: FlaskClient, site: Any, as_admin: FlaskClient) -> None:
    """crisis.raised and referral.updated are written with Core INSERTs (no listener fills
    in their site): they must still land in the kiosk's site's audit log, and only there."""
    kiosk = pair_kiosk(app, client, site.slug)
    _, ref = identified_member(app, site, kiosk)
    crisis = {str(i): 0 for i in range(1, 9)} | {"9": 3}  # PHQ-9 item 9: 988 guidance
    resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]), json={"items": [
        submission_item("phq9", dict(crisis), member_ref=ref),
        submission_item("phq9", dict(crisis))]})  # anonymous: a staff alert
    assert resp.status_code == 200 and all(
        r["crisis_recorded"] for r in resp.get_json()["results"])
    with get_db(app).transaction(write=False) as session:
        rows = session.execute(select(AuditLog.action, AuditLog.site_id).where(
            AuditLog.action.in_(("crisis.raised", "referral.updated")))).all()
    assert sorted(a for a, _ in rows) == ["crisis.raised", "crisis.raised", "referral.updated"]
    assert {s for _, s in rows} == {site.id}
    for action in ("crisis.raised", "referral.updated"):
        page = as_admin.get(f"/dashboard/admin/audit?action={action}").get_data(as_text=True)
        assert f"<td>{action}</td>" in page
    elsewhere = app.test_client()
    login(elsewhere, gen_staff(app, "admin", site_of(app, "there"), email="a@there.example"))
    for action in ("crisis.raised", "referral.updated"):
        page = elsewhere.get(f"/dashboard/admin/audit?action={action}").get_data(as_text=True)
        assert f"<td>{action}</td>" not in page
