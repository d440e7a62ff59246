"""The server tests' PostgreSQL databases: copies of a migrated template, emptied and reused.

A copy of the template (``CREATE DATABASE … TEMPLATE``) and its drop cost the cluster about
130 ms of CPU and the test about 240 ms of waiting, for every one of about a thousand tests a
run (docs/BENCHMARKS.md, "Session 11: the tests' CPU"). A test's database is instead handed
back when the test ends: if nothing but rows changed (no connection left, no change to the
catalogs since the copy was made, the migration head still recorded, no database settings),
its tables are emptied and its sequences restarted, about 13 ms, and the next test of the
same worker gets it, as empty as a fresh copy. Anything else, and the database is dropped as
before. The rows a migrated template holds are only ``alembic_version``'s, which is kept.
A test must not leave a thread or process that connects again after it ends (an open
connection is seen, and the database dropped; a later one would reach the next test's).
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, text

if TYPE_CHECKING:
    import psycopg

PG_URL = os.environ.get("ONSITE_TEST_PG_URL")

# The newest change to the database's catalogs: any DDL, GRANT, TRUNCATE or temporary table
# writes new rows to one of these, with a newer transaction id.
_CATALOG_MARK = "SELECT max(x) FROM (" + " UNION ALL ".join(
    f"SELECT max(xmin::text::int8) AS x FROM pg_catalog.{name}"
    for name in ("pg_class", "pg_attribute", "pg_attrdef", "pg_constraint", "pg_index",
                 "pg_trigger", "pg_proc", "pg_type", "pg_namespace", "pg_extension",
                 "pg_rewrite", "pg_enum", "pg_policy", "pg_sequence")) + ") AS marks"

# A client's close does not wait for its backend to end: the backend leaves
# pg_stat_activity a moment later, later still on a loaded machine. Backends still listed are
# waited for this long before the database counts as still in use.
_LEAVING_SECONDS = 1.0

_OTHERS = """SELECT count(*) FROM pg_stat_activity
  WHERE datname = current_database() AND pid <> pg_backend_pid()
    AND backend_type = 'client backend'"""

# What decides whether a database can be emptied for the next test, in one round trip.
_STATE = f"""
SELECT
  ({_OTHERS}) AS others,
  ({_CATALOG_MARK}) AS mark,
  (SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
    WHERE d.datname = current_database()) AS settings,
  (SELECT xmin::text FROM pg_database WHERE datname = current_database()) AS row_version,
  (SELECT string_agg(version_num, ',') FROM alembic_version) AS revision
"""


@dataclass(frozen=True)
class _Copy:
    """A copy of the template as it was made: what must still hold to reuse it."""

    mark: int
    row_version: str
    revision: str
    tables: tuple[str, ...]


_copies: dict[str, _Copy] = {}
_spare: list[str] = []
_janitors: dict[str, psycopg.Connection[tuple[object, ...]]] = {}


@functools.cache
def _pg_admin() -> Engine:
    """One engine per process on the cluster's own database, to create and drop the tests'.

    Kept (with its one pooled connection) for the session: a new engine and connection for
    each database made and dropped cost about as much client CPU as a short test's body.
    """
    assert PG_URL
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_size=1, pool_pre_ping=True)


def fresh_pg_database(template: str | None = None) -> str:
    """Create a new database on the throwaway cluster (empty, or a copy of template); its URL."""
    assert PG_URL
    name = f"t_{uuid.uuid4().hex[:12]}"
    with _pg_admin().connect() as conn:
        # FILE_COPY: PostgreSQL 15's default (WAL_LOG) writes the template's pages through
        # the WAL, which is slower for a small template on a cluster without fsync.
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    """Drop a database that fresh_pg_database made, ending any connection still open to it.

    A test's copy is dropped when it cannot be reused: kept, the copies filled the cluster
    with gigabytes (about 9 MB each, a thousand a run) that the kernel wrote out to disk
    during the run and that took minutes to delete after it.
    """
    assert PG_URL
    name = url.rsplit("/", 1)[1]
    _copies.pop(url, None)
    _close_janitor(url)
    with _pg_admin().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A plain autocommit connection to the database at url (a SQLAlchemy URL)."""
    # Imported here: a run without PostgreSQL never needs the driver (0.13 s a worker).
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1),
                           autocommit=True)


def take_pg_copy(template: str) -> str:
    """A database at the migration head with no rows: one a test gave back, or a new copy."""
    if _spare:
        return _spare.pop()
    url = fresh_pg_database(template)
    conn = _janitor(url)
    _others, mark, _settings, row_version, revision = conn.execute(_STATE).fetchone() or ()
    tables = tuple(str(name) for (name,) in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename <> 'alembic_version' ORDER BY tablename"))
    _copies[url] = _Copy(int(str(mark)), str(row_version), str(revision), tables)
    return url


def _janitor(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """The worker's own connection to a copy, kept open from its making to its dropping.

    A copy keeps its name from test to test, so one connection serves every check and
    emptying of it. A new connection each time cost about 7 ms, and the check on a new
    backend about 19 ms more (the catalogs read into its caches afresh), against 7 ms on a
    warm one (docs/BENCHMARKS.md, "Session 12: the tests' CPU"). It is idle while a test
    runs, and the check leaves it out of the connections it counts.
    """
    conn = _janitors.get(url)
    if conn is None or conn.closed or conn.broken:
        conn = _janitors[url] = _connect(url)
    return conn


def _close_janitor(url: str) -> None:
    conn = _janitors.pop(url, None)
    if conn is not None:
        conn.close()


def _others_left(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Wait for the database's other connections to end; tell whether they all did in time."""
    deadline = time.monotonic() + _LEAVING_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.01)
        # Each autocommit statement is its own transaction, so each count is a new snapshot.
        if (conn.execute(_OTHERS).fetchone() or (1,))[0] == 0:
            return True
    return False


def give_back_pg_copy(url: str) -> bool:
    """Empty a test's database for the next test if only rows changed, else drop it.

    Tells whether it was kept.
    """
    import psycopg

    copy = _copies.get(url)
    if copy is None:
        drop_pg_database(url)
        return False
    try:
        conn = _janitor(url)
        others, mark, settings, row_version, revision = conn.execute(_STATE).fetchone() or ()
        unchanged = (int(str(mark)) == copy.mark and settings == 0
                     and str(row_version) == copy.row_version
                     and str(revision) == copy.revision
                     and (others == 0 or _others_left(conn)))
        if unchanged:
            # Foreign keys are checked by triggers, which the replica role skips: every
            # table is emptied, so the order does not matter. The role is the session's
            # own, and a kept connection keeps it, so it is set every time.
            conn.execute("SET session_replication_role = replica; " + "; ".join(
                f'DELETE FROM "{name}"' for name in copy.tables))
            conn.execute("SELECT setval(seqrelid::regclass, seqstart, false)"
                         " FROM pg_sequence")
    except psycopg.Error:
        unchanged = False
    if not unchanged:
        drop_pg_database(url)
        return False
    _spare.append(url)
    return True


def drop_spare_pg_copies() -> None:
    """Drop the databases kept for reuse (at the end of a worker's session)."""
    while _spare:
        drop_pg_database(_spare.pop())
