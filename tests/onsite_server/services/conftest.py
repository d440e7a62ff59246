"""Services fixtures: a session of the test's own, as a request's unit of work would hold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from onsite_server.db import get_db


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """One session on the test database, rolled back at the end; each test commits where a
    request would."""
    s = get_db(app).session()
    try:
        yield s
    finally:
        s.rollback()
        s.close()
