"""Session-wide test setup: Kivy must be configured before anything imports it."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile

import pytest

# Kivy reads these at import time; set them before any test module imports kivy.
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_USE_DEFAULTCONFIG", "1")
if "KIVY_HOME" not in os.environ:
    # Made by the first pytest process (the xdist workers inherit it), removed when it exits.
    os.environ["KIVY_HOME"] = tempfile.mkdtemp(prefix="kivy-home-")
    atexit.register(shutil.rmtree, os.environ["KIVY_HOME"], ignore_errors=True)
# Tests never read the developer's instance folder or environment by accident.
for _name in list(os.environ):
    if _name.startswith("ONSITE_") and _name not in ("ONSITE_TEST_PG_URL",
                                                     "ONSITE_TEST_REQUIRE_PG",
                                                     "ONSITE_TEST_FORK_SERVER"):
        del os.environ[_name]
# Dashboard passwords hash at the cheapest Argon2 cost in every app the tests build, in this
# process and in the servers and CLI commands it starts (they inherit the environment). One
# test keeps the production cost (tests/onsite_server/services/test_password_hashing.py).
os.environ["ONSITE_PASSWORD_HASH_COST"] = "test"
# The cyclic garbage collector, less often in the test processes: a test builds an app, an
# engine and its ORM objects, thousands of allocations, so at Python's default thresholds
# (700, 10, 10) a worker ran a full collection of its whole heap (the imported Flask,
# SQLAlchemy, Kivy and pydantic) every few tests, about a tenth of the server tests' CPU
# (docs/BENCHMARKS.md, "Session 12: the tests' CPU"). Garbage is still collected, later.
gc.set_threshold(10_000, 10, 100)
# The onsite-server commands the tests start (onsite_server.devserver: live servers, drills, CLI
# calls) are forks of one process per pytest process that imported the server once
# (tests/forkserver.py); ONSITE_TEST_FORK_SERVER=0 starts each as a new interpreter instead.
if os.environ.get("ONSITE_TEST_FORK_SERVER", "1") != "0":
    from onsite_server import devserver
    from tests.forkserver import ForkServer

    _fork_server = ForkServer()
    devserver.set_launcher(_fork_server)
    atexit.register(_fork_server.close)


_LONG_MARKS = ("slow", "drill", "ui")
_SHARED_SCOPES = ("module", "class", "package")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules holding long tests first; a module whose tests share a fixture, kept together.

    scripts/test.sh runs the suite with ``--dist loadgroup``: each test (or group) goes to
    whichever worker is free next, in this order. Started first, the long tests (a fresh
    virtualenv, the tours, the drills) overlap with the thousands of short ones, which then
    fill both workers to the end; collected last, a five-minute test would run alone. A
    module-scoped fixture (a live server, a fresh virtualenv, an X screen) would be built on
    every worker that got one of its tests, so such a module is one group, on one worker.
    Modules stay whole, so a run in one process builds each module's fixtures once as before.
    """
    long_modules: set[str] = set()
    shared_modules: set[str] = set()
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if any(item.get_closest_marker(mark) for mark in _LONG_MARKS):
            long_modules.add(module)
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(d[-1].scope in _SHARED_SCOPES for d in defs if d):
            shared_modules.add(module)
    grouping = bool(getattr(config.option, "loadgroup", False))  # an xdist worker, loadgroup
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module in shared_modules:
            item.add_marker(pytest.mark.xdist_group(module))
            if grouping:
                _join_group(item, module)

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        if module in long_modules:
            return 0 if module in shared_modules else 1  # the largest units first
        return 2

    items.sort(key=rank)  # stable: collection order within each rank


def _join_group(item: pytest.Item, group: str) -> None:
    """Put the group into the test's id (``path::test@group``), as pytest-xdist means to.

    xdist schedules ``--dist loadgroup`` by that suffix, which it writes to ``item._nodeid``;
    pytest 9 keeps the id in ``item._id`` instead, so the mark alone grouped nothing and a
    module's shared fixture (the fresh virtualenv, a live server, an X screen) was built on
    both workers. tests/scripts/test_grouping.py checks that it is built once.
    """
    node_id = getattr(item, "_id", None)
    if node_id is None or "@" in item.nodeid:
        return  # an older pytest, where xdist's own suffix works
    item._id = type(node_id).parse(f"{item.nodeid}@{group}")
