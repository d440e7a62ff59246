"""Emulator fixtures: an app and test client, and a real threaded server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from central_emulator import create_app

from ..live import serve_in_thread
from .helpers import SiteKeys


@pytest.fixture
def app() -> Flask:
    """The emulator with the demo directory."""
    return create_app({"TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def keys() -> SiteKeys:
    """One onsite server's signing keys."""
    return SiteKeys()


@dataclass
class Live:
    """A running emulator: its app and base URL."""

    app: Flask
    url: str


@pytest.fixture
def live(app: Flask) -> Iterator[Live]:
    """The emulator served by werkzeug in a thread, as the console script serves it."""
    with serve_in_thread(app) as port:
        yield Live(app=app, url=f"http://127.0.0.1:{port}")
