"""What gunicorn's master does when it loads the app for its workers (`onsite-server serve`)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from onsite_server import cli_serve
from onsite_server.db import Database


class _StartupObject:
    """Stands for what imports and create_app leave behind for the worker's whole life."""


def _app_with_database(url: str) -> Flask:
    app = Flask("worker")
    database = Database()
    database.configure(url)
    app.extensions["onsite_db"] = database
    return app


def test_the_workers_startup_heap_is_kept_out_of_the_collector(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """load_app freezes what start-up built, so full collections no longer walk it."""
    kept: list[_StartupObject] = []

    def create_app() -> Flask:
        kept.append(_StartupObject())
        return _app_with_database(f"sqlite:///{tmp_path / 'db.sqlite'}")

    monkeypatch.setattr(cli_serve, "create_app", create_app)
    gc.unfreeze()
    try:
        app = cli_serve.load_app()
        assert isinstance(app, Flask)
        assert gc.get_freeze_count() > 0
        # The start-up object is in the permanent generation, not in any the collector walks.
        tracked = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
        assert id(kept[0]) not in tracked
        # Objects made after start-up are collected as before.
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def test_no_connection_start_up_opened_is_left_for_the_workers_to_inherit(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The workers are forks of the master: a pooled connection would be theirs together."""
    opened: list[Database] = []

    def create_app() -> Flask:
        app = _app_with_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
        database = app.extensions["onsite_db"]
        with database.transaction(write=False) as session:  # start-up reading the database
            session.execute(text("SELECT 1"))
        assert database.engine is not None and database.engine.pool.checkedin() == 1
        opened.append(database)
        return app

    monkeypatch.setattr(cli_serve, "create_app", create_app)
    gc.unfreeze()
    try:
        cli_serve.load_app()
    finally:
        gc.unfreeze()
    engine = opened[0].engine
    assert engine is not None
    assert engine.pool.checkedin() == 0
    opened[0].dispose()

