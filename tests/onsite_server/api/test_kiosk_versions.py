"""Kiosk app versions: older kiosks keep working; one below KIOSK_MIN_VERSION is told so (426)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from onsite_server import create_app
from onsite_server.config import ConfigError
from onsite_server.db import get_db
from onsite_server.models import Site, Submission
from onsite_server.services.pairing import issue_pairing_code
from shared.versions import is_older, parse_version

from ..helpers import auth, submission_item

# Header handling only: no SQL behaviour that differs between databases.
pytestmark = pytest.mark.sqlite_only

URL = "/api/v1/submissions"
DEFAULT_MINIMUM = {"test_a_kiosk_from_before_versioning_still_submits"}


def _batch() -> dict[str, Any]:
    answers = {str(i): 0 for i in range(1, 10)}
    return {"items": [submission_item("phq9", answers)]}


def _stored(app: Flask) -> int:
    with get_db(app).transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Submission)) or 0)


@pytest.fixture
def app_config(app_config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """A server that no longer serves kiosks before 0.2, unless the test keeps the default."""
    if request.node.originalname in DEFAULT_MINIMUM:
        return app_config
    return {**app_config, "KIOSK_MIN_VERSION": "0.2"}


def test_a_kiosk_from_before_versioning_still_submits(client: FlaskClient,
                                                      kiosk: dict[str, Any]) -> None:
    # The default minimum is the first release, which sent no version header.
    resp = client.post(URL, json=_batch(), headers=auth(kiosk["token"]))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["results"][0]["status"] == "accepted"
    assert resp.headers["X-Kiosk-Min-Version"] == "0.1.0"


@pytest.fixture
def kiosk(app: Flask, client: FlaskClient, site: Any) -> dict[str, Any]:
    """A kiosk paired while its version (0.2.0) was served."""
    with get_db(app).transaction() as session:
        code = issue_pairing_code(session, session.get(Site, site.id))
    resp = client.post("/api/v1/pair", json={"pairing_code": code, "app_version": "0.2.0"},
                       headers={"X-Kiosk-Version": "0.2.0"})
    assert resp.status_code == 201, resp.get_json()
    data: dict[str, Any] = resp.get_json()
    return data


@pytest.mark.parametrize("version", ["0.2.0", "0.2", "0.2.1", "0.10.0", "1.0"])
def test_a_kiosk_at_or_above_the_minimum_submits(app: Flask, client: FlaskClient,
                                                 kiosk: dict[str, Any], version: str) -> None:
    resp = client.post(URL, json=_batch(),
                       headers={**auth(kiosk["token"]), "X-Kiosk-Version": version})
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["X-Kiosk-Min-Version"] == "0.2"
    assert _stored(app) == 1


@pytest.mark.parametrize("version", ["0.1.9", "0.1.0", None])
def test_a_kiosk_below_the_minimum_is_told_and_nothing_is_stored(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], version: str | None) -> None:
    headers = auth(kiosk["token"])
    if version is not None:
        headers["X-Kiosk-Version"] = version
    resp = client.post(URL, json=_batch(), headers=headers)
    assert resp.status_code == 426
    problem = resp.get_json()
    assert problem["min_kiosk_version"] == "0.2"
    assert problem["kiosk_version"] == (version or "0.1.0")
    assert problem["errors"][0]["field"] == "X-Kiosk-Version"
    assert resp.headers["Upgrade"] == "onsite-kiosk/0.2"
    assert _stored(app) == 0
    # Pairing a kiosk that old is refused too, before the code is spent.
    assert client.post("/api/v1/pair", json={"pairing_code": "ABCD-EFGH"},
                       headers={"X-Kiosk-Version": "0.1.0"}).status_code == 426


def test_a_malformed_version_is_refused_naming_the_header(client: FlaskClient,
                                                           kiosk: dict[str, Any]) -> None:
    resp = client.post(URL, json=_batch(),
                       headers={**auth(kiosk["token"]), "X-Kiosk-Version": "latest"})
    assert resp.status_code == 400
    assert resp.get_json()["errors"][0]["field"] == "X-Kiosk-Version"


def test_a_bad_minimum_is_refused_at_start(app_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="KIOSK_MIN_VERSION"):
        create_app({**app_config, "KIOSK_MIN_VERSION": "two"})


def test_versions_compare_as_numbers() -> None:
    assert is_older("0.9.0", "0.10.0") and not is_older("0.10", "0.9.9")
    assert parse_version("1.2.0") == parse_version("1.2") and not is_older("1.2", "1.2.0")
    with pytest.raises(ValueError, match="^version:"):
        parse_version("1.x")
