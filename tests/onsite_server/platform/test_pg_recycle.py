"""The tests' reused PostgreSQL databases (tests/onsite_server/pg_databases.py): a database is
reused only when the test changed nothing but rows, and then it is as empty as a fresh copy."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from onsite_server.migrate import head_revision

from ..conftest import PG_URL
from ..pg_databases import _connect, _spare, give_back_pg_copy, take_pg_copy

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only")


def _exists(url: str) -> bool:
    assert PG_URL
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() \
            is not None


def _rows(url: str) -> dict[str, int]:
    with _connect(url) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {t: int(str((conn.execute(f'SELECT count(*) FROM "{t}"').fetchone() or (0,))[0]))
                for t in tables}


def _fill(url: str) -> None:
    with _connect(url) as conn:
        conn.execute("INSERT INTO employer (slug, name, created_at)"
                     " VALUES ('e1', 'E', now()), ('e2', 'E', now())")
        conn.execute("INSERT INTO site (employer_id, slug, name, timezone, settings, created_at)"
                     " SELECT id, 's-' || slug, 'S', 'UTC', '{}', now() FROM employer")


def test_a_database_whose_rows_changed_comes_back_empty_with_its_sequences_restarted(
        pg_template: str) -> None:
    """Rows in two related tables are gone, ids start again at 1, the head is still recorded."""
    url = take_pg_copy(pg_template)
    try:
        _fill(url)
        assert _rows(url)["site"] == 2
        assert give_back_pg_copy(url)
        assert take_pg_copy(pg_template) == url  # the same database, reused
        rows = _rows(url)
        assert rows.pop("alembic_version") == 1
        assert set(rows.values()) == {0}
        with _connect(url) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == \
                (head_revision(),)
            new_id = conn.execute("INSERT INTO employer (slug, name, created_at)"
                                  " VALUES ('x', 'X', now())"
                                  " RETURNING id").fetchone()
        assert new_id == (1,)
    finally:
        give_back_pg_copy(url)


def _ddl(url: str) -> None:
    with _connect(url) as conn:
        conn.execute("CREATE TABLE left_behind (id int)")


def _index(url: str) -> None:
    with _connect(url) as conn:
        conn.execute("DROP INDEX IF EXISTS ix_site_employer_id")
        conn.execute("CREATE INDEX ix_left_behind ON site (name)")


def _setting(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _connect(url) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')


def _revision(url: str) -> None:
    with _connect(url) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'elsewhere'")


@pytest.mark.parametrize("change", [_ddl, _index, _setting, _revision],
                         ids=["table", "index", "database-setting", "revision"])
def test_a_database_whose_schema_or_settings_changed_is_dropped(
        pg_template: str, change: Callable[[str], None]) -> None:
    """A new table or index, a database setting, another revision: never handed on."""
    url = take_pg_copy(pg_template)
    change(url)
    assert not give_back_pg_copy(url)
    assert url not in _spare
    assert not _exists(url)


def test_a_database_with_a_connection_left_open_is_dropped(pg_template: str) -> None:
    """A server or pool the test left behind may still write: the database is not reused."""
    url = take_pg_copy(pg_template)
    left = _connect(url)
    try:
        assert not give_back_pg_copy(url)
        assert not _exists(url)
    finally:
        left.close()
