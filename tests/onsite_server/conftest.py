"""Onsite-server fixtures: every test runs on SQLite, and on PostgreSQL when the test command
started the throwaway cluster (ONSITE_TEST_PG_URL), unless it is marked ``sqlite_only``.

Each test gets a database of its own, already at the migration head: the migrations run once
per run into a template (one per backend, shared by the xdist workers: run_templates.py),
which each test copies (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL,
emptied and reused by the worker's next test when only rows changed: pg_databases.py).
``test_migrations_match_models`` migrates an empty database itself, on both. SQLite copies
live in RAM (/dev/shm) where there is one, and the apps of a worker share Jinja's compiled
templates (docs/BENCHMARKS.md, session 9).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from sqlalchemy import create_engine, text

from onsite_server import create_app, devserver
from onsite_server.db import Database, get_db
from onsite_server.migrate import current_revision, head_revision, upgrade

from ..sql_cache import share_compiled_sql
from ..url_builders import reuse_url_builders
from .helpers import gen_site, pair_kiosk
from .pg_databases import (
    drop_pg_database,
    drop_spare_pg_copies,
    fresh_pg_database,
    give_back_pg_copy,
    take_pg_copy,
)
from .run_templates import made_once_per_run

reuse_url_builders()
share_compiled_sql()

PG_URL = os.environ.get("ONSITE_TEST_PG_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
REQUIRE_PG = os.environ.get("ONSITE_TEST_REQUIRE_PG") == "1"


def migrate_to_head(url: str) -> None:
    """Run every migration on the database at url, then close its connections."""
    database = Database()
    database.configure(url)
    try:
        upgrade(database)
    finally:
        database.dispose()


@functools.cache
def _head() -> str | None:
    return head_revision()


def at_head(database: Database) -> bool:
    """Tell whether the database is already migrated to the newest revision."""
    return current_revision(database) == _head()


def _worker() -> str:
    """This xdist worker's name ("gw0", ...), or "main" without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(pytestconfig: pytest.Config,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run (its xdist workers share it); tests copy it."""
    def make(folder: Path) -> str:
        path = folder / "template.sqlite"
        migrate_to_head(f"sqlite:///{path}")
        # Every connection is closed, so the WAL was checkpointed into the file: the file
        # alone is the whole database.
        assert not path.with_name(path.name + "-wal").exists()
        return str(path)

    return Path(made_once_per_run(pytestconfig, tmp_path_factory, "sqlite-template", make))


@pytest.fixture(scope="session")
def pg_template(pytestconfig: pytest.Config,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per run (its xdist workers share it).

    Tests clone it, several workers at once: ``CREATE DATABASE … TEMPLATE`` needs only that
    no session is connected to it, and migrate_to_head closes its connections.
    """
    assert PG_URL

    def make(_folder: Path) -> str:
        name = f"template_{_worker()}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        migrate_to_head(PG_URL.rsplit("/", 1)[0] + "/" + name)
        return name

    yield made_once_per_run(pytestconfig, tmp_path_factory, "pg-template", make)
    drop_spare_pg_copies()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run on PostgreSQL too, unless the test is marked sqlite_only (no SQL behaviour)."""
    defs = metafunc._arg2fixturedefs.get("database_url")
    # Only this module's database_url is parametrized; a test module that overrides it
    # (the browser tests) chooses its own database.
    if not defs or getattr(defs[-1].func, "__module__", None) != __name__:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if "database_url" in ([n.strip() for n in names.split(",")] if isinstance(names, str)
                              else list(names)):
            return  # the test names its own backends (parametrize(..., indirect=True))
    backends = BACKENDS
    if metafunc.definition.get_closest_marker("sqlite_only"):
        backends = ["sqlite"]
    metafunc.parametrize("database_url", backends, indirect=True)


@pytest.fixture(scope="session", autouse=True)
def _pg_required() -> None:
    if REQUIRE_PG and not PG_URL:
        pytest.fail("ONSITE_TEST_REQUIRE_PG=1 but no ONSITE_TEST_PG_URL: PostgreSQL did not start")


# A RAM-backed folder, where the machine has one, for the tests' SQLite files.
RAM_FOLDER = Path("/dev/shm")


@pytest.fixture
def sqlite_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder of the test's own for its SQLite files: in RAM if it can be, else tmp_path.

    The server syncs SQLite's log at every commit (synchronous=FULL, as in production):
    about 3.5 ms of waiting on this machine's disk for each of the tens of thousands of
    commits a run makes, 0.2 ms in RAM. A test's database is thrown away when it ends.
    """
    if not (RAM_FOLDER.is_dir() and os.access(RAM_FOLDER, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="onsite-test-", dir=RAM_FOLDER))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# The databases database_url made as copies of a migrated template: already at the head, so
# the app fixture does not open a connection to ask (about 3 ms a test).
TEMPLATE_COPIES: set[str] = set()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, sqlite_folder: Path) -> Iterator[str]:
    """A database of the test's own, at the migration head, on the backend under test."""
    # pytest_generate_tests gives the backend; a test that asks for the fixture by name at
    # run time gets SQLite.
    if getattr(request, "param", "sqlite") == "postgresql":
        url = take_pg_copy(request.getfixturevalue("pg_template"))
        TEMPLATE_COPIES.add(url)
        yield url
        TEMPLATE_COPIES.discard(url)
        give_back_pg_copy(url)
        return
    path = sqlite_folder / "onsite.sqlite"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    url = f"sqlite:///{path}"
    TEMPLATE_COPIES.add(url)
    yield url
    TEMPLATE_COPIES.discard(url)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend (for tests that run the migrations)."""
    if request.param == "postgresql":
        url = fresh_pg_database()
        yield url
        drop_pg_database(url)
        return
    yield f"sqlite:///{tmp_path / 'empty.sqlite'}"


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


class SharedTemplateCode(BytecodeCache):
    """Jinja's bytecode cache, in memory, shared by every app this process builds.

    Each test builds an app, and each app's Jinja environment compiled every template it
    rendered again (a twentieth of the server tests' CPU). The apps' environments are made
    alike by create_app, and Jinja checks each entry against the template's source.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill the bucket from an earlier compile of the same template, if any."""
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Keep a freshly compiled template for the next app."""
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = SharedTemplateCode()


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    """A migrated app on a fresh database."""
    application = create_app(app_config)
    application.jinja_env.bytecode_cache = TEMPLATE_CODE
    # A copy of the template is at head already; a database a test chose itself may be empty.
    if app_config["DATABASE_URL"] not in TEMPLATE_COPIES and not at_head(get_db(application)):
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
    database = Database()
    database.configure(database_url)
    try:
        # A copy of the template needs no `init-db` process (a second or two of start-up).
        ready = at_head(database)
    finally:
        database.dispose()
    proc, url = devserver.start_server(env, log_path, migrate=not ready)
    try:
        yield LiveServer(url, env, instance, log_path)
    finally:
        # The test is over: its database is thrown away, so nothing is lost by not waiting
        # the seconds gunicorn takes to drain its workers (tests that stop a server politely
        # do it themselves).
        devserver.kill_server(proc)
