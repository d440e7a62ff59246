"""The test and benchmark server starter (onsite_server/devserver.py): it runs `init-db` only for
a database that needs it."""

from __future__ import annotations

from pathlib import Path

from onsite_server import devserver


def test_init_db_is_asked_for_only_below_the_head(database_url: str, tmp_path: Path) -> None:
    # A copy of the migrated template (both backends): `init-db` would change nothing.
    assert devserver._at_head({"ONSITE_DATABASE_URL": database_url})
    # An empty database, no database named (the instance folder's default), one that cannot
    # be opened: `init-db` runs and says what it finds.
    assert not devserver._at_head({"ONSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert not devserver._at_head({})
    assert not devserver._at_head(
        {"ONSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}"})
