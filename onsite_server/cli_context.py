"""The one app a command-line invocation builds, shared by every command group."""

from __future__ import annotations

import click
from flask import Flask

from . import create_app


def context_app(ctx: click.Context) -> Flask:
    """Build the app once per invocation (with its logging set up) and keep it on the context."""
    obj = ctx.ensure_object(dict)
    if "app" not in obj:
        obj["app"] = create_app()
        from . import logs

        logs.configure(obj["app"].config["LOG_FORMAT"], obj["app"].config["LOG_LEVEL"])
    app: Flask = obj["app"]
    return app
