"""`onsite-server upgrade` keeps data: a database at an older revision, with a generated row in
every table, is backed up, migrated to head and checked, on SQLite and PostgreSQL.

The rows are made from the old schema itself (reflected), not from today's models, so the test
needs no fixture file and follows every future migration: each column gets a value of its type,
foreign keys point at the row made for the table they name.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from onsite_server.db import Database
from onsite_server.migrate import alembic_config, current_revision, head_revision, upgrade

from ..cli_in_process import run_cli

pytestmark = pytest.mark.slow
SKIP_TABLES = {"alembic_version"}


def _previous(revision: str | None) -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    down = script.get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


def _value(column: sa.Column[Any], n: int) -> Any:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 1  # also fits every check constraint (a slot's 1 seat of 1)
    if isinstance(kind, (sa.Float, sa.Numeric)):
        return 1.5
    if isinstance(kind, sa.DateTime):
        return dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
    if isinstance(kind, sa.Date):
        return dt.date(2026, 11, 1)
    if isinstance(kind, sa.JSON):
        return {"generated": n}
    if isinstance(kind, sa.LargeBinary):
        return b"\x00generated"
    length = getattr(kind, "length", None) or 64
    return f"g{n}-{column.name}"[:length]


def _fill(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """Insert one generated row into every table, parents first; return what was written."""
    meta = sa.MetaData()
    meta.reflect(engine)
    written: dict[str, dict[str, Any]] = {}
    ids: dict[str, Any] = {}
    with engine.begin() as conn:
        for n, table in enumerate(meta.sorted_tables):
            if table.name in SKIP_TABLES:
                continue
            row: dict[str, Any] = {}
            for column in table.columns:
                fks = list(column.foreign_keys)
                if fks:
                    row[column.name] = ids[fks[0].column.table.name]
                elif column.primary_key and isinstance(column.type, sa.Integer):
                    row[column.name] = 1
                else:
                    row[column.name] = _value(column, n)
            conn.execute(table.insert().values(**row))
            pk = list(table.primary_key.columns)
            ids[table.name] = row[pk[0].name] if pk else None
            written[table.name] = row
    return written


def _read(engine: sa.Engine, tables: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    meta = sa.MetaData()
    meta.reflect(engine)
    out = {}
    with engine.connect() as conn:
        for name, before in tables.items():
            table = meta.tables[name]
            rows = conn.execute(sa.select(table)).mappings().all()
            assert len(rows) == 1, (name, len(rows))
            out[name] = {key: rows[0][key] for key in before}
    return out


def _same(before: Any, after: Any) -> bool:
    if isinstance(before, dt.datetime) and isinstance(after, dt.datetime):
        # SQLite gives back naive UTC; PostgreSQL a timestamp with or without its zone.
        return before.replace(tzinfo=None) == after.replace(tzinfo=None)
    return bool(before == after)


@pytest.mark.parametrize("start", ["previous", "first"])
def test_upgrade_keeps_every_row(empty_database_url: str, tmp_path: Path, start: str) -> None:
    head = head_revision()
    revision = _previous(head) if start == "previous" else "0001"
    database = Database()
    database.configure(empty_database_url)
    upgrade(database, revision)
    assert database.engine is not None
    written = _fill(database.engine)
    database.dispose()
    # Every table of the old schema has its row, the ones holding members' data among them.
    assert {"member", "referral", "submission", "booking", "outbox_message"} <= set(written)

    env: dict[str, str | None] = {"ONSITE_DATABASE_URL": empty_database_url,
                                  "ONSITE_INSTANCE_PATH": str(tmp_path / "instance"),
                                  "ONSITE_BACKUP_PASSPHRASE": "upgrade drill"}
    done = run_cli(env, "upgrade")
    assert done.exit_code == 0, done.output
    assert f"upgraded from {revision} to {head}" in done.stdout
    backups = list((tmp_path / "instance" / "backups").glob("onsite-pre-upgrade-*.bak"))
    assert len(backups) == 1 and revision in backups[0].name

    database.configure(empty_database_url)
    try:
        assert current_revision(database) == head
        assert database.engine is not None
        after = _read(database.engine, written)
    finally:
        database.dispose()
    changed = {(table, column): (value, after[table][column])
               for table, row in written.items() for column, value in row.items()
               if not _same(value, after[table][column])}
    assert changed == {}

    again = run_cli(env, "upgrade")
    assert again.exit_code == 0 and "already at" in again.stdout


def test_a_failed_migration_names_the_backup_and_the_way_back(
        empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from onsite_server import migrate
    from onsite_server.cli import main

    database = Database()
    database.configure(empty_database_url)
    upgrade(database, _previous(head_revision()))
    database.dispose()

    def broken(_database: Database, revision: str = "head") -> None:
        raise sa.exc.OperationalError("ALTER TABLE", {}, Exception("disk I/O error"))

    monkeypatch.setattr(migrate, "upgrade", broken)
    monkeypatch.setenv("ONSITE_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("ONSITE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("ONSITE_BACKUP_PASSPHRASE", "p")
    result = CliRunner().invoke(main, ["upgrade"])
    assert result.exit_code == 1
    saved = next((tmp_path / "instance" / "backups").glob("*.bak"))
    assert "failed" in result.output and f"onsite-server restore --force {saved}" in result.output


def test_no_backup_no_upgrade(empty_database_url: str, tmp_path: Path) -> None:
    database = Database()
    database.configure(empty_database_url)
    upgrade(database, _previous(head_revision()))
    database.dispose()
    env: dict[str, str | None] = {"ONSITE_DATABASE_URL": empty_database_url,
                                  "ONSITE_INSTANCE_PATH": str(tmp_path / "instance"),
                                  "ONSITE_BACKUP_PASSPHRASE": None}
    done = run_cli(env, "upgrade")
    assert done.exit_code == 1 and "BACKUP_PASSPHRASE" in done.stderr
    database.configure(empty_database_url)
    try:
        assert current_revision(database) != head_revision()
    finally:
        database.dispose()
