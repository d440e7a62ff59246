"""Password hashing cost: production cost by default, cheap under test, dummy hash made lazily."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import extract_parameters

from onsite_server import config as config_module
from onsite_server import create_app
from onsite_server.db import get_db
from onsite_server.migrate import upgrade
from onsite_server.services import users

# Password hashing: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def standard_cost(tmp_path: Path) -> Iterator[Any]:
    """An app (migrated SQLite) at the production hashing cost; the test cost comes back after."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'standard.sqlite'}",
                      "SECRET_KEY": "standard-cost", "PASSWORD_HASH_COST": "standard"})
    upgrade(get_db(app))
    try:
        yield app
    finally:
        get_db(app).dispose()
        users.configure_hashing("test")


def test_production_cost_is_the_rfc_9106_low_memory_profile(standard_cost: Any) -> None:
    """The one test at production cost: what a real server stores, and that it logs in."""
    stored = users.hash_password("correct horse battery")
    params = extract_parameters(stored)
    assert (params.time_cost, params.memory_cost, params.parallelism) == (3, 65536, 4)
    with get_db(standard_cost).transaction() as session:
        users.create_user(session, email="admin@example.org", name="Admin", role="admin",
                          password="correct horse battery")
    with get_db(standard_cost).transaction() as session:
        assert users.authenticate(session, "admin@example.org", "correct horse battery")
        assert users.authenticate(session, "admin@example.org", "wrong horse battery") is None
        # An unknown address still costs one verification, against the production-cost dummy.
        assert users.authenticate(session, "nobody@example.org", "correct horse battery") is None
    assert extract_parameters(users._dummy_hash(users._hasher)).memory_cost == 65536


def test_a_cheap_hash_is_raised_to_production_cost_at_log_in(standard_cost: Any) -> None:
    users.configure_hashing("test")
    with get_db(standard_cost).transaction() as session:
        users.create_user(session, email="coord@example.org", name="Coord", role="coordinator",
                          password="cheaply hashed")
    users.configure_hashing("standard")
    with get_db(standard_cost).transaction() as session:
        user = users.authenticate(session, "coord@example.org", "cheaply hashed")
        assert user is not None
        assert extract_parameters(user.password_hash).memory_cost == 65536


def test_the_test_suite_hashes_at_the_cheapest_cost(app: Any) -> None:
    assert app.config["PASSWORD_HASH_COST"] == "test"
    params = extract_parameters(users.hash_password("cheap in tests"))
    assert (params.time_cost, params.memory_cost, params.parallelism) == (1, 8, 1)


def test_an_unknown_cost_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(config_module.ConfigError, match="PASSWORD_HASH_COST"):
        create_app({"INSTANCE_PATH": str(tmp_path), "PASSWORD_HASH_COST": "cheap"})


def test_importing_the_service_hashes_nothing() -> None:
    """The dummy hash is made on the first unknown address, not when a process imports users."""
    code = ("import json; from onsite_server.services import users; "
            "print(json.dumps(users._dummy_hash.cache_info().currsize))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True, env=dict(os.environ))
    assert json.loads(done.stdout) == 0
