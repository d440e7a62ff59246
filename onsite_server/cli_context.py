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


def _not_utf8(text: str) -> bool:
    """Whether text holds bytes that were not UTF-8 (Python keeps them as lone surrogates)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


class TextCheckedCommand(click.Command):
    """A command that refuses a text option typed in a terminal that is not UTF-8.

    A title typed as Latin-1 (Caf\\xe9) reaches Python as a lone surrogate that no database
    can store: the command died with a traceback. Paths are left alone (a file name is bytes).
    """

    def invoke(self, ctx: click.Context) -> object:
        """Check the text options, then run the command."""
        for param in self.params:
            value = ctx.params.get(param.name or "")
            if isinstance(param.type, click.types.StringParamType) and \
                    isinstance(value, str) and _not_utf8(value):
                shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                raise click.BadParameter(
                    f"{shown!r} is not UTF-8 text: set the terminal to UTF-8 "
                    "(for example LANG=C.UTF-8) and type it again", ctx=ctx, param=param)
        return super().invoke(ctx)


class TextCheckedGroup(click.Group):
    """A command group whose commands refuse text that is not UTF-8 (TextCheckedCommand)."""

    command_class = TextCheckedCommand
