"""Run an `onsite-server` command in the test's own process (click's runner), env set around it.

For the tests of what a command does (its checks, its answers, its exit code), not of its
process: a process costs about 1 s of CPU to start (Python, the app, Alembic, every model) and
an ``init-db`` from nothing about 2.5 s. Tests about processes (a server, a drill, another
process changing files under a running app) keep starting real ones.
"""

from __future__ import annotations

import logging
from typing import Any

from click.testing import CliRunner, Result

from onsite_server.cli import main
from onsite_server.db import get_db


def run_cli(env: dict[str, str | None], *args: str) -> Result:
    """Run ``onsite-server ARGS`` here with env's variables set (None: unset) while it runs.

    A command that builds its app on the context (``init-db``, ``doctor``) also sets up the
    command's logging; the app's database is disposed and the logging put back afterwards.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    obj: dict[str, Any] = {}
    try:
        return CliRunner().invoke(main, list(args), env=env, obj=obj)
    finally:
        if "app" in obj:
            get_db(obj["app"]).dispose()
        root.handlers[:] = handlers
        root.setLevel(level)
