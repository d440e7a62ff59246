"""Fixtures of the kiosk's window tests: a live onsite server with the demo data."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from onsite_server.devserver import free_port
from tests.kiosk.backend.helpers import TlsServer
from tests.onsite_server.cli_in_process import run_cli


@contextmanager
def running_demo_server(folder: Path) -> Iterator[tuple[TlsServer, str]]:
    """A live onsite server over TLS with the demo data in ``folder``; it and a pairing code."""
    instance = folder / "instance"
    db_url = f"sqlite:///{folder / 'server.sqlite'}"
    env = {**os.environ, "ONSITE_DATABASE_URL": db_url, "ONSITE_INSTANCE_PATH": str(instance),
           "ONSITE_SECRET_KEY": "kiosk-ui-live-secret", "ONSITE_IDENTIFY_MIN_SECONDS": "0",
           # Nothing listens there: the advocate link only needs central's web address.
           "ONSITE_CENTRAL_URL": f"http://127.0.0.1:{free_port()}/fhir"}
    server = TlsServer(env=env, instance=instance, database_url=db_url,
                       log_path=folder / "server.log")
    # The demo data by its command, in this process (a process of its own cost about 1 s of
    # CPU to start; the kiosk and the server it starts next are what these tests are about).
    made = run_cli(env, "demo-data")
    assert made.exit_code == 0, made.output
    summary = json.loads(made.stdout.strip().splitlines()[-1])
    server.start()
    try:
        yield server, str(summary["pairing_code"])
    finally:
        server.stop()


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[TlsServer, str]]:
    """A live onsite server over TLS with the demo data; yields it and a pairing code."""
    with running_demo_server(tmp_path) as running:
        yield running
