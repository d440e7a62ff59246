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

from .helpers import ROLES, AuthActions

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


@pytest.mark.parametrize("who", ["anonymous", *ROLES])
def test_matrix(app: Flask, auth: AuthActions, who: str) -> None:
    client: FlaskClient = app.test_client()
    if who != "anonymous":
        auth.login(who, client)
    checked = 0
    # Log-out last: it ends the session the other checks need.
    for rule in sorted(_dashboard_rules(app), key=lambda r: r.endpoint == "auth.logout"):
        expected = EXPECTED[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = _url(rule)
            resp = client.open(url, method=method, data={})
            status = resp.status_code
            where = f"{who} {method} {url} -> {status}"
            assert status < 500, where
            if expected == "public":
                checked += 1
                continue
            allowed = who in expected
            to_login = status == 302 and resp.headers["Location"].startswith("/login")
            if allowed:
                assert status != 403 and not to_login, where
            elif who == "anonymous":
                assert to_login, where
                assert client.open(url, method=method, headers={
                    "Accept": "application/json"}).status_code == 403, where
            else:
                assert status == 403, where
            checked += 1
    assert checked >= len(EXPECTED)
