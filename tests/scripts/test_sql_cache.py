"""The tests' shared compiled SQL (tests/sql_cache.py): reused only between engines set up alike."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.orm import Session

from onsite_server.db import Database
from onsite_server.migrate import upgrade
from onsite_server.models import Base, Site

from ..onsite_server.helpers import gen_site
from ..sql_cache import SHARED, dialect_signature, share_compiled_sql


def _migrated(folder: Path, name: str) -> Database:
    database = Database()
    database.configure(f"sqlite:///{folder / name}.sqlite")
    upgrade(database)
    return database


def test_a_second_engine_reuses_the_firsts_compiled_sql_and_reads_its_own_rows(
        tmp_path: Path) -> None:
    """The same query and the same flush compile once; each engine still reads its own data."""
    share_compiled_sql()
    first, second = _migrated(tmp_path, "first"), _migrated(tmp_path, "second")
    try:
        query = select(Site.slug).where(Site.slug.like("site-%")).order_by(Site.slug)
        for database, slug in ((first, "site-one"), (second, "site-two")):
            assert database.engine is not None
            assert database.engine._compiled_cache is SHARED  # type: ignore[comparison-overlap]
            # A reconfiguration of the mappers (another test's models) forgets their memoized
            # values; the flushes must keep using the shared cache all the same.
            for mapper in Base.registry.mappers:
                mapper._expire_memoizations()
            flushes = SHARED.hits
            with Session(database.engine) as session, session.begin():
                gen_site(session, slug)
            if database is second:
                assert SHARED.hits > flushes  # the INSERTs the first engine's flush compiled
            hits = SHARED.hits
            with Session(database.engine) as session:
                rows = session.scalars(query).all()
            assert rows == [slug]
            if database is second:
                assert SHARED.hits > hits  # compiled for the first engine, reused here
        assert first.engine is not None and second.engine is not None
        assert dialect_signature(first.engine.dialect) == dialect_signature(second.engine.dialect)
    finally:
        first.dispose()
        second.dispose()


def test_engines_set_up_differently_never_share(tmp_path: Path) -> None:
    """Another JSON encoder, or another backend's dialect, gives another signature."""
    share_compiled_sql()
    plain = create_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    encoded = create_engine(f"sqlite:///{tmp_path / 'b.sqlite'}",
                            json_serializer=lambda value: json.dumps(value, sort_keys=True))
    for engine in (plain, encoded):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    try:
        assert dialect_signature(plain.dialect) != dialect_signature(encoded.dialect)
        assert dialect_signature(PGDialect_psycopg()) != dialect_signature(plain.dialect)
    finally:
        plain.dispose()
        encoded.dispose()
