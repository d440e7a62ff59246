"""Ids in the dashboard's URLs: a number no id column can hold is a 404, never a 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from werkzeug.exceptions import NotFound

# Past 2**63 - 1: SQLite's driver cannot bind it (OverflowError), PostgreSQL's bigint not hold it.
TOO_LARGE = "99999999999999999999"


def _id_routes(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if "<int:" not in rule.rule:
            continue
        url = re.sub(r"<int:[^>]+>", TOO_LARGE, rule.rule)
        url = re.sub(r"<any\(([^>]*)\):[^>]+>", lambda m: m.group(1).split(",")[0].strip(" '\""),
                     url)
        routes += [(method, url) for method in sorted((rule.methods or set())
                                                      - {"HEAD", "OPTIONS"})]
    return routes


def test_an_id_too_large_for_the_database_is_not_found(app: Flask, as_admin: Any,
                                                       as_coordinator: Any) -> None:
    routes = _id_routes(app)
    assert ("GET", f"/dashboard/crisis/alert/{TOO_LARGE}") in routes  # answered 500 before
    assert len(routes) >= 4
    for method, url in routes:
        for client in (as_admin, as_coordinator):
            answer = client.open(url, method=method)
            assert answer.status_code == 404, (method, url, answer.status_code)


@pytest.mark.sqlite_only
def test_the_largest_id_a_column_holds_still_routes(app: Flask) -> None:
    """2**63 - 1 reaches the view, as any other id does; one more does not route at all."""
    urls = app.url_map.bind("localhost")
    endpoint, args = urls.match(f"/dashboard/crisis/alert/{2**63 - 1}")
    assert args == {"alert_id": 2**63 - 1} and endpoint.endswith("alert")
    with pytest.raises(NotFound):
        urls.match(f"/dashboard/crisis/alert/{2**63}")
