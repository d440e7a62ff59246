"""Schema migrations with Alembic, run on the app's own engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .db import Database

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported by the functions that use it: it costs every process that imports this
# module (each `onsite-server` command and server start) about a quarter of a second, and most
# of them never migrate.

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """Return an Alembic Config pointing at our migrations and url."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(database: Database, revision: str = "head") -> None:
    """Create or upgrade the schema to revision."""
    from alembic import command

    assert database.engine is not None
    cfg = alembic_config(database.url)
    with database.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(database: Database) -> str | None:
    """Return the schema's current revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    assert database.engine is not None
    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """Return the newest revision in the migrations folder."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
