"""The authorization matrix: every dashboard route x every role x anonymous.

Routes are discovered from the app's url_map, so a route added later is covered at once;
one that no ``route_roles_*.py`` table lists fails the test until someone says who may open
it.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .helpers import ROLES, Staff, gen_staff, login, site_of
from .site_data import SiteData, gen_site_data, pdf_text, snapshot

# The route x role matrix: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only

# Blueprints that are the staff dashboard (the kiosk API and /.well-known have their own
# authorization tests).
DASHBOARD_BLUEPRINTS = ("auth", "dashboard", "advocate")
DUMMY = {"int": "999999", "default": "00000000-0000-4000-8000-000000000000", "path": "x"}


def _tables() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    here = Path(__file__).parent
    for info in pkgutil.iter_modules([str(here)]):
        if info.name.startswith("route_roles_"):
            module = importlib.import_module(f"{__package__}.{info.name}")
            clash = set(merged) & set(module.ROUTE_ROLES)
            assert not clash, f"{info.name} lists routes listed elsewhere: {sorted(clash)}"
            merged.update(module.ROUTE_ROLES)
    return merged


EXPECTED = _tables()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """CSRF off here only, so a POST reaches the role check (CSRF has its own tests)."""
    return {**app_config, "WTF_CSRF_ENABLED": False}


def _dashboard_rules(app: Flask) -> list[Any]:
    return [rule for rule in app.url_map.iter_rules()
            if rule.endpoint == "root" or rule.endpoint.split(".")[0] in DASHBOARD_BLUEPRINTS]


def _url(rule: Any) -> str:
    def fill(match: re.Match[str]) -> str:
        converter = match.group(1) or "default"
        if converter == "any":  # the first of the allowed values
            return str(match.group(2)).split(",")[0].strip(" '\"")
        return DUMMY.get(converter, DUMMY["default"])

    return re.sub(r"<(?:(\w+)(?:\(([^)]*)\))?:)?\w+>", fill, rule.rule)


def test_every_dashboard_route_is_listed(app: Flask) -> None:
    listed = set(EXPECTED)
    found = {rule.endpoint for rule in _dashboard_rules(app)}
    unlisted = sorted(found - listed)
    assert not unlisted, ("dashboard routes with no expected roles: add them to a "
                          f"route_roles_*.py table: {unlisted}")
    stale = sorted(listed - found)
    assert not stale, f"route_roles tables list routes that do not exist: {stale}"


def test_every_dashboard_view_is_guarded_or_marked_public(app: Flask) -> None:
    for rule in _dashboard_rules(app):
        view = app.view_functions[rule.endpoint]
        roles = getattr(view, "roles", None)
        expected = EXPECTED.get(rule.endpoint)
        if expected == "public":
            assert roles is None, f"{rule.endpoint} is listed public but guarded"
        else:
            assert roles == expected, f"{rule.endpoint}: guard {roles} != table {expected}"


# Everyone the matrix logs in as: each role at the home site (an operator has none), and
# the admin and coordinator of another employer's site.
WHO = ("anonymous", *ROLES, "employer", "operator", "other:admin", "other:coordinator")
# What a POST carries: enough for each form to act, naming rows of the site under test.
POST_FIELDS = {"note": "probe", "reason": "probe", "capacity": "1", "label": "probe",
               "status": "acknowledged", "title": "probe", "ticket": "", "action": "check_in"}
CHECKS: dict[str, int] = {}


@pytest.fixture
def sites(app: Flask, site: Any, staff: dict[str, Staff]) -> dict[str, Any]:
    """The home site and another employer's, each with one of everything and its staff."""
    other = site_of(app, "other-employer-site")
    people = {**staff,
              "employer": gen_staff(app, "employer", site, email="employer@test.example"),
              "operator": gen_staff(app, "operator", None, email="operator@test.example"),
              "other:admin": gen_staff(app, "admin", other, email="other.admin@test.example"),
              "other:coordinator": gen_staff(app, "coordinator", other,
                                             email="other.coordinator@test.example")}
    return {"home": gen_site_data(app, site, "Home"), "other": gen_site_data(app, other, "Other"),
            "people": people}


def _site_url(rule: Any, data: SiteData) -> str:
    """The rule's URL with the ids of the site's own rows (DUMMY for a parameter unknown here)."""
    ids = data.ids
    by_name = {"event_id": ids["event"], "slot_id": ids["slot"],
               "booking_id": ids["booking"], "message_id": ids["dead_referral"],
               "user_id": ids["victim"], "table_id": "screenings",
               "alert_id": ids["crisis_alert"] if rule.endpoint == "dashboard.crisis_alert"
               else ids["alert"],
               "public_id": ids["kiosk"] if rule.endpoint == "dashboard.revoke"
               else ids["referral"]}

    def fill(match: re.Match[str]) -> str:
        converter, args, name = match.group(1), match.group(2), match.group(3)
        if converter == "any":
            return str(args).split(",")[0].strip(" '\"")
        if name in by_name:
            return str(by_name[name])
        return DUMMY.get(converter or "default", DUMMY["default"])

    return re.sub(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>", fill, rule.rule)


def _text_of(resp: Any) -> str:
    """The words a response shows: a PDF's through pdftotext (its streams are compressed)."""
    raw = resp.get_data()
    if resp.mimetype == "application/pdf":
        return pdf_text(raw)
    return str(raw.decode("utf-8", "replace"))


def _home_of(who: str) -> str:
    return "other" if who.startswith("other:") else "home"


@pytest.mark.parametrize("who", WHO)
def test_matrix(app: Flask, sites: dict[str, Any], who: str) -> None:
    """Every route x method, for each role, with the ids of its own site and of the other.

    Against the other site's rows (its events, kiosks, dead letters, alerts, users...) nothing
    answers with that site's data and nothing there changes; every page a role may open shows
    none of the other site's names. Then the role's own site: its routes open (not 403, not
    the log-in page), the others are refused.
    """
    client: FlaskClient = app.test_client()
    role = who.split(":")[-1]
    if who != "anonymous":
        login(client, sites["people"][who])
    own = sites[_home_of(who)]
    foreign = sites["other" if _home_of(who) == "home" else "home"]
    passes = [("foreign", foreign), ("own", own)] if role != "operator" else \
        [("own", foreign), ("own", own)]  # an operator's scope is the whole server
    before = snapshot(app, foreign)
    checked = 0
    for number, (which, data) in enumerate(passes):
        # Log-out last: it ends the session the other checks need.
        for rule in sorted(_dashboard_rules(app), key=lambda r: r.endpoint == "auth.logout"):
            if rule.endpoint == "auth.logout" and number < len(passes) - 1:
                continue  # once, at the very end
            expected = EXPECTED[rule.endpoint]
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                url = _site_url(rule, data)
                form = {**POST_FIELDS, "slot_id": data.ids["slot"],
                        "member_id": data.ids["member"], "booking_id": data.ids["booking"]}
                resp = client.open(url, method=method, data=form if method == "POST" else None)
                status = resp.status_code
                where = f"{who} ({which} site) {method} {url} -> {status}"
                assert status < 500, where
                body = _text_of(resp)
                if which == "foreign":
                    leaked = [k for k, v in data.markers.items() if v in body]
                    assert not leaked, f"{where}: shows the other site's {leaked}"
                elif role == "employer":
                    leaked = [k for k, v in data.personal().items() if v in body]
                    assert not leaked, f"{where}: shows an employer {leaked}"
                checked += 1
                if expected == "public":
                    continue
                allowed = role in expected and who != "anonymous"
                to_login = status == 302 and resp.headers["Location"].startswith("/login")
                if allowed:
                    assert status != 403 and not to_login, where
                elif who == "anonymous":
                    assert to_login, where
                    assert client.open(url, method=method, headers={
                        "Accept": "application/json"}).status_code == 403, where
                else:
                    assert status == 403, where
    if role != "operator":
        assert snapshot(app, foreign) == before, f"{who} changed the other site's data"
    assert checked >= 2 * len(EXPECTED)
    CHECKS[who] = checked


def test_count_of_route_role_site_checks() -> None:
    """The number the closing note reports (runs after the matrix in this module)."""
    if len(CHECKS) == len(WHO):
        print(f"\nroute x role x site checks: {sum(CHECKS.values())} "
              f"({', '.join(f'{k} {v}' for k, v in CHECKS.items())})")
