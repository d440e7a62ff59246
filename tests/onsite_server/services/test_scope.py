"""Each site's operational data stays with its staff: the audit log, sync health, dead letters,
retries and alerts are read and changed only within a scope (services/scope.py)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Alert, AuditLog, OutboxMessage
from onsite_server.services import audit, fleet, ratelimit
from onsite_server.services import scope as scope_service
from onsite_server.services.errors import ServiceError
from onsite_server.services.scope import SERVER_WIDE, Scope, admin_scope

from ..dashboard.site_data import SiteData, gen_site_data
from ..helpers import gen_site


@pytest.fixture
def two(app: Flask, site: Any) -> tuple[SiteData, SiteData]:
    """The test site and another employer's, each with one of everything."""
    with get_db(app).transaction() as session:
        other = gen_site(session, "elsewhere").id
    return gen_site_data(app, site, "Here"), gen_site_data(app, other, "There")


def test_audit_entries_are_written_with_their_site(app: Flask,
                                                   two: tuple[SiteData, SiteData]) -> None:
    here, there = two
    with get_db(app).transaction() as session:
        kiosk_actor = f"kiosk:{here.ids['kiosk']}"
        entries = {
            # the subject names the site...
            "event": audit.record(session, "cli", "event.updated", f"event:{there.ids['event']}"),
            "slot": audit.record(session, "cli", "slot.capacity", f"slot:{here.ids['slot']}"),
            "referral": audit.record(session, "user:999", "referral.viewed",
                                     f"referral:{there.ids['referral']}"),
            "crisis": audit.record(session, "cli", "crisis.alert_acknowledged",
                                   f"crisis_alert:{here.ids['crisis_alert']}"),
            "outbox": audit.record(session, "cli", "outbox.retried", "outbox:booking:There:v1"),
            # ...or a booking's event, as the bookings service writes them...
            "booking": audit.record(session, "system:housekeeping", "booking.no_show",
                                    f"member:{here.ids['member']}",
                                    detail={"event": here.ids["event"]}),
            # ...or the actor: a kiosk, a user of a site...
            "kiosk": audit.record(session, kiosk_actor, "identify.attempt"),
            "user": audit.record(session, f"user:{there.ids['victim']}", "auth.logout"),
            # ...and nothing names a site: the whole server's (operators only).
            "cli": audit.record(session, "cli", "roster.import", "employer:acme"),
            "unknown": audit.record(session, "address:192.0.2.1", "auth.login_failed"),
        }
        ratelimit.record(session, actor="address:192.0.2.2", action="auth.login_failed",
                         subject=f"user:{here.ids['victim']}")
        session.flush()
        ids = {name: entry.id for name, entry in entries.items()}
    with get_db(app).transaction(write=False) as session:
        site_of = {name: session.get(AuditLog, i).site_id  # type: ignore[union-attr]
                   for name, i in ids.items()}
        failed = session.scalars(select(AuditLog.site_id).where(
            AuditLog.actor == "address:192.0.2.2")).one()
    assert site_of == {"event": there.site_id, "slot": here.site_id,
                       "referral": there.site_id, "crisis": here.site_id,
                       "outbox": there.site_id, "booking": here.site_id, "kiosk": here.site_id,
                       "user": there.site_id, "cli": None, "unknown": None}
    assert failed == here.site_id  # a failed log-in by address: the account's site


def test_the_audit_log_of_a_site_holds_only_its_entries(app: Flask,
                                                        two: tuple[SiteData, SiteData]) -> None:
    here, there = two
    with get_db(app).transaction() as session:
        audit.record(session, "cli", "roster.import", "employer:acme")
        mine_page = audit.page(session, Scope(frozenset({here.site_id})))
        all_page = audit.page(session, SERVER_WIDE)
    mine, total = mine_page.rows, mine_page.total
    everything, all_total = all_page.rows, all_page.total
    assert total == len(mine) == 2 and {e.site_id for e in mine} == {here.site_id}
    assert {f"203.0.113.{here.site_id}"} == {e.detail.get("address") for e in mine
                                               if e.action == "auth.login"}
    assert all_total == 5 and {e.site_id for e in everything} == {here.site_id,
                                                                  there.site_id, None}


def test_sync_health_and_dead_letters_of_a_site(app: Flask,
                                                two: tuple[SiteData, SiteData]) -> None:
    here, there = two
    mine = Scope(frozenset({here.site_id}))
    with get_db(app).transaction() as session:
        health = fleet.sync_health(session, mine)
        assert sorted(r.key for r in health.dead) == ["booking:Here:v1", "referral:Here:v1"]
        assert health.counts == {"dead": 2}
        assert len(fleet.sync_health(session, SERVER_WIDE).dead) == 4
        for theirs in (there.ids["dead_booking"], there.ids["dead_referral"]):
            with pytest.raises(ServiceError) as refused:
                fleet.retry_dead(session, mine, theirs, actor="user:1")
            assert refused.value.kind == "not_found"
        fleet.retry_dead(session, mine, here.ids["dead_referral"], actor="user:1")
    with get_db(app).transaction() as session:
        statuses = dict(session.execute(select(OutboxMessage.key, OutboxMessage.status)).all())
        # An operator puts another site's dead letter back (the whole server is theirs).
        fleet.retry_dead(session, SERVER_WIDE, there.ids["dead_booking"], actor="user:2")
    assert statuses == {"booking:Here:v1": "dead", "referral:Here:v1": "pending",
                        "booking:There:v1": "dead", "referral:There:v1": "dead"}


def test_alerts_of_a_site(app: Flask, two: tuple[SiteData, SiteData]) -> None:
    here, there = two
    mine = Scope(frozenset({here.site_id}))
    with get_db(app).transaction() as session:
        session.add(Alert(kind="outbox_stuck", message="server-wide"))
        session.flush()
        assert [a.id for a in fleet.open_alerts(session, mine)] == [here.ids["alert"]]
        assert len(fleet.open_alerts(session, SERVER_WIDE)) == 3
        with pytest.raises(ServiceError):
            fleet.clear_alert(session, mine, there.ids["alert"], actor="user:1")
        fleet.clear_alert(session, mine, here.ids["alert"], actor="user:1")
    with get_db(app).transaction(write=False) as session:
        theirs = session.get(Alert, there.ids["alert"])
        assert theirs is not None and theirs.cleared_at is None


@pytest.mark.parametrize("role", ["coordinator", "advocate", "employer", "nobody"])
def test_one_guard_lets_only_admins_and_operators_in(role: str) -> None:
    with pytest.raises(ServiceError):
        admin_scope(role, (1,))
    assert admin_scope("admin", (1,)) == Scope(frozenset({1}))
    assert admin_scope("operator", ()).server_wide


def test_an_employer_reads_the_reports_of_its_own_employers_sites(app: Flask, site: Any) -> None:
    with get_db(app).transaction() as session:
        here = session.merge(site)
        sibling = gen_site(session, "sibling", employer=here.employer)
        stranger = gen_site(session, "stranger")
        sites = scope_service.report_sites(session, "employer", here.id)
        assert {s.slug for s in sites} == {"test-site", "sibling"}
        assert scope_service.report_site(session, "employer", here.id, "sibling").id == \
            sibling.id
        assert [s.id for s in scope_service.report_sites(session, "coordinator", here.id)] == \
            [here.id]
        for role, slug in (("employer", stranger.slug), ("admin", "sibling")):
            with pytest.raises(ServiceError):
                scope_service.report_site(session, role, here.id, slug)
        with pytest.raises(ServiceError):
            scope_service.report_sites(session, "advocate", here.id)


def test_the_migration_gives_earlier_entries_their_site(empty_database_url: str) -> None:
    """Entries written before revision 0011 get their site by the same rule as new ones."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from onsite_server.db import Database
    from onsite_server.migrate import upgrade

    database = Database()
    database.configure(empty_database_url)
    upgrade(database, "0010_user_sessions")
    now = datetime.now(UTC).replace(tzinfo=None)
    assert database.engine is not None
    with database.engine.begin() as conn:
        def insert(sql: str, **values: Any) -> int:
            return int(conn.execute(text(sql + " RETURNING id"), values).scalar_one())

        employer = insert("INSERT INTO employer (slug, name, created_at) VALUES ('e', 'E', :t)",
                          t=now)
        site_ids = [insert("INSERT INTO site (employer_id, slug, name, timezone, settings, "
                           "created_at) VALUES (:e, :s, :s, 'UTC', '{}', :t)", e=employer,
                           s=slug, t=now) for slug in ("one", "two")]
        insert("INSERT INTO kiosk (public_id, site_id, label, created_at) "
               "VALUES ('k-two', :s, 'k', :t)", s=site_ids[1], t=now)
        user = insert("INSERT INTO user_account (email, name, role, password_hash, site_id, "
                      "active, created_at, recovery_codes, session_epoch) VALUES "
                      "('a@x.example', 'A', 'admin', '!', :s, :y, :t, '[]', 0)",
                      s=site_ids[0], y=True, t=now)
        rows = {"login": (f"user:{user}", f"user:{user}"), "kiosk": ("kiosk:k-two", None),
                "settings": ("cli", "site:two"), "server": ("cli", "employer:e")}
        for actor, subject in rows.values():
            insert("INSERT INTO audit_log (at, actor, action, subject, detail) "
                   "VALUES (:t, :a, 'x', :s, '{}')", t=now, a=actor, s=subject)
    upgrade(database)
    with database.engine.connect() as conn:
        found = [r[0] for r in conn.execute(text("SELECT site_id FROM audit_log ORDER BY id"))]
    database.dispose()
    assert found == [site_ids[0], site_ids[1], site_ids[1], None]
