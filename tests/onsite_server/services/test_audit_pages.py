"""The audit log's pages: keyset cursors that walk a log of any length, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import insert

from onsite_server.db import get_db
from onsite_server.models import AuditLog
from onsite_server.services import audit
from onsite_server.services.scope import SERVER_WIDE


def _seed(app: Flask, n: int) -> list[int]:
    """n entries a second apart, with some sharing one timestamp; their ids newest first."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with get_db(app).transaction() as session:
        session.execute(insert(AuditLog), [{
            # Every third entry shares its time with the one before: the id breaks the tie.
            "at": start + timedelta(seconds=i - (i % 3 == 2)), "actor": "cli",
            "action": f"test.{i}", "subject": None, "detail": {}, "note": None,
        } for i in range(n)])
        rows = session.query(AuditLog.id, AuditLog.at).all()
    return [i for i, _at in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)]


def _ids(found: audit.AuditPage) -> list[int]:
    return [row.id for row in found.rows]


def test_pages_walk_the_whole_log_older_then_newer_without_gaps(app: Flask) -> None:
    expected = _seed(app, 23)
    seen: list[list[int]] = []
    with get_db(app).transaction(write=False) as session:
        found = audit.page(session, SERVER_WIDE, limit=5)
        assert found.newer is None and found.total == 23
        while True:
            seen.append(_ids(found))
            if found.older is None:
                break
            found = audit.page(session, SERVER_WIDE, before=found.older, limit=5)
        assert [i for page in seen for i in page] == expected
        assert [len(p) for p in seen] == [5, 5, 5, 5, 3]
        # And back: each "newer" page is the one before it, in the same newest-first order.
        back = [_ids(found)]
        while found.newer is not None:
            found = audit.page(session, SERVER_WIDE, after=found.newer, limit=5)
            back.append(_ids(found))
        assert [i for page in reversed(back) for i in page][:5] == expected[:5]
        assert sorted(i for page in back for i in page) == sorted(expected)


def test_the_oldest_page_is_reached_at_once(app: Flask) -> None:
    expected = _seed(app, 12)
    with get_db(app).transaction(write=False) as session:
        found = audit.page(session, SERVER_WIDE, oldest=True, limit=5)
    assert _ids(found) == expected[-5:]
    assert found.older is None and found.newer == expected[-5]


def test_the_count_stops_at_its_cap(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(app, 12)
    monkeypatch.setattr(audit, "COUNT_CAP", 10)
    with get_db(app).transaction(write=False) as session:
        found = audit.page(session, SERVER_WIDE, limit=5)
    assert found.capped and found.total == 11


def test_an_unknown_cursor_shows_the_newest_page(app: Flask) -> None:
    expected = _seed(app, 7)
    with get_db(app).transaction(write=False) as session:
        found = audit.page(session, SERVER_WIDE, before=10**9, limit=5)
    assert _ids(found) == expected[:5]
