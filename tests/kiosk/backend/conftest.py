"""Fixtures for the kiosk backend: a live TLS onsite server and kiosk settings in tmp dirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.settings import KioskSettings

from .helpers import TlsServer, start_tls_server

SITE = "kiosk-site"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """A live onsite server over TLS with one site (SQLite), shared by a module's tests."""
    srv = start_tls_server(tmp_path_factory.mktemp("server"), SITE)
    try:
        yield srv
    finally:
        # The tests are over and the database thrown away: no need to wait the seconds
        # gunicorn takes to drain its workers.
        srv.kill()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[TlsServer]:
    """A live server of the test's own, for tests that stop and restart it."""
    srv = start_tls_server(tmp_path / "server", SITE)
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def kiosk_settings(tmp_path: Path) -> KioskSettings:
    """Kiosk settings whose data and key folders are apart, under tmp_path."""
    return KioskSettings(data_dir=tmp_path / "kiosk" / "data",
                         key_dir=tmp_path / "kiosk-keys")
