"""Onsite-server fixtures: every test runs on SQLite, and on PostgreSQL when the test command
started the throwaway cluster (ONSITE_TEST_PG_URL)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text

from onsite_server import create_app, devserver
from onsite_server.db import get_db
from onsite_server.migrate import upgrade

from .helpers import gen_site, pair_kiosk

PG_URL = os.environ.get("ONSITE_TEST_PG_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
REQUIRE_PG = os.environ.get("ONSITE_TEST_REQUIRE_PG") == "1"


def fresh_pg_database() -> str:
    """Create a new empty database on the throwaway cluster and return its URL."""
    assert PG_URL
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session", autouse=True)
def _pg_required() -> None:
    if REQUIRE_PG and not PG_URL:
        pytest.fail("ONSITE_TEST_REQUIRE_PG=1 but no ONSITE_TEST_PG_URL: PostgreSQL did not start")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL for the backend under test."""
    if request.param == "postgresql":
        return fresh_pg_database()
    return f"sqlite:///{tmp_path / 'onsite.sqlite'}"


@pytest.fixture
def app_config(database_url: str, tmp_path: Path) -> dict[str, Any]:
    """The test configuration layer."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key-not-for-production",
        "IDENTIFY_MIN_SECONDS": 0.0,
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    """A migrated app on a fresh database."""
    application = create_app(app_config)
    upgrade(get_db(application))
    yield application
    get_db(application).dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """Flask's CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def site(app: Flask) -> Any:
    """A site with a slug, committed."""
    with get_db(app).transaction() as session:
        s = gen_site(session, "test-site")
        session.expunge(s)
    return s


@pytest.fixture
def kiosk(app: Flask, client: FlaskClient, site: Any) -> dict[str, Any]:
    """A paired kiosk of `site`: the pairing answer, with its token."""
    return pair_kiosk(app, client, site.slug)


class LiveServer:
    """A real `onsite-server serve` process (gunicorn) on a real socket."""

    def __init__(self, url: str, env: dict[str, str], instance: Path, log_path: Path) -> None:
        self.url = url
        self.env = env
        self.instance = instance
        self.log_path = log_path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an onsite-server CLI command against the same database."""
        return devserver.cli(self.env, *args, timeout=120)


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """Start gunicorn with 2 workers on a free port; yields its base URL and CLI access."""
    instance = tmp_path / "live-instance"
    env = {**os.environ, "ONSITE_DATABASE_URL": database_url,
           "ONSITE_INSTANCE_PATH": str(instance), "ONSITE_SECRET_KEY": "live-test-secret",
           "ONSITE_IDENTIFY_MIN_SECONDS": "0"}
    log_path = tmp_path / "live-server.log"
    with devserver.running_server(env, log_path) as url:
        yield LiveServer(url, env, instance, log_path)
