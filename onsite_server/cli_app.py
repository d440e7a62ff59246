"""The app a command works on: built once per command line, with the logging it configures.

Its own module so that every group of commands (cli, cli_keys) can use it without importing
each other.
"""

from __future__ import annotations

import click
from flask import Flask

from . import create_app


def app_for(ctx: click.Context) -> Flask:
    """Return the command line's app, building it (and configuring logging) on first use."""
    obj = ctx.ensure_object(dict)
    if "app" not in obj:
        obj["app"] = create_app()
        from . import logs

        logs.configure(obj["app"].config["LOG_FORMAT"], obj["app"].config["LOG_LEVEL"])
    app: Flask = obj["app"]
    return app
