"""The one app a command-line invocation builds, shared by every command group."""

from __future__ import annotations

import click
from flask import Flask

from . import create_app
from .app_settings import of as settings_of


def context_app(ctx: click.Context) -> Flask:
    """Build the app once per invocation (with its logging set up) and keep it on the context."""
    obj = ctx.ensure_object(dict)
    if "app" not in obj:
        obj["app"] = create_app()
        from . import logs

        logs.configure(settings_of(obj["app"]).log_format, settings_of(obj["app"]).log_level)
    app: Flask = obj["app"]
    return app
