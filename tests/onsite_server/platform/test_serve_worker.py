"""What a gunicorn worker does when it loads the app (`onsite-server serve`)."""

from __future__ import annotations

import gc

import pytest
from flask import Flask

from onsite_server import cli_serve


class _StartupObject:
    """Stands for what imports and create_app leave behind for the worker's whole life."""


def test_the_workers_startup_heap_is_kept_out_of_the_collector(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """load_app freezes what start-up built, so full collections no longer walk it."""
    kept: list[_StartupObject] = []

    def create_app() -> Flask:
        kept.append(_StartupObject())
        return Flask("worker")

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
