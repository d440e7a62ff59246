"""`onsite-server keys`: list, rotate and retire the QR token signing keys (docs/tokens.md)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from shared.tokens import Purpose

from .app_settings import of as settings_of
from .cli_context import context_app
from .db import get_db
from .services.signing import KeyStore


def _app(ctx: click.Context) -> Flask:
    return context_app(ctx)


def _store(app: Flask) -> KeyStore:
    return KeyStore(Path(settings_of(app).signing_key_dir))


@click.group("keys")
def keys() -> None:
    """The signing keys of advocate links and tickets: list, rotate, retire."""


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
@click.pass_context
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """Show every key: its id, purpose, status (active, rotated, retired) and whether central
    holds it."""
    from .services.central_keys import central_holds

    store = _store(_app(ctx))
    for info in store.describe():
        held = info.status != "retired" and central_holds(store, info.kid)
        since = info.since.strftime("%Y-%m-%d %H:%M") if info.since else "?"
        if as_json:
            click.echo(json.dumps({"kid": info.kid, "purpose": info.purpose.label,
                                   "status": info.status, "since": since,
                                   "central_holds": held}))
        else:
            click.echo(f"{info.kid}  {info.purpose.label:<13}  {info.status:<7}  {since}"
                       + ("  at central" if held else ""))


@keys.command("rotate")
@click.option("--purpose", type=click.Choice([p.label for p in Purpose]), required=True)
@click.pass_context
def rotate_key(ctx: click.Context, purpose: str) -> None:
    """Make a new signing key for a purpose; the old one keeps verifying what it signed."""
    key = _store(_app(ctx)).rotate(Purpose.from_label(purpose))
    click.echo(f"new {purpose} key {key.key_id}; central learns it at the next link or sync")


@keys.command("retire")
@click.argument("kid")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@click.pass_context
def retire_key(ctx: click.Context, kid: str, reason: str) -> None:
    """Retire a compromised key: nothing it signed verifies again, here or at central.

    Its private key is deleted, a new key signs from now on, and central is told at once (or
    by the next sync cycle when it cannot be reached). Members need new links and tickets.
    """
    from .central import CentralError, client_for
    from .config import ConfigError
    from .services import audit
    from .services.central_keys import push, snapshot
    from .services.signing import UnknownKey

    app = _app(ctx)
    store = _store(app)
    try:
        purpose = store.retire(kid)
    except UnknownKey as exc:
        raise click.BadParameter(str(exc), param_hint="KID") from exc
    # The key is retired here whatever follows: the audit entry and telling central are
    # reported, and left to the sync worker (which pushes changed keys) when they fail.
    click.echo(f"retired {purpose.label} key {kid}; new key "
               f"{store.current(purpose).key_id} signs from now on")
    db = get_db(app)
    try:
        with db.transaction() as session:
            audit.record(session, "cli", "keys.retired", f"key:{kid}",
                         detail={"purpose": purpose.label}, note=reason or None)
    except SQLAlchemyError as exc:
        click.echo(f"the audit log was not written ({type(exc).__name__}): is the database "
                   "set up (init-db)?", err=True)
    try:
        client = client_for(settings_of(app).central)
        with db.transaction(write=False) as session:
            snap = snapshot(session, store,
                            timedelta(days=settings_of(app).ticket_grace_days))
        push(client, store, settings_of(app).site_slug, snap)
    except (CentralError, ConfigError, OSError, SQLAlchemyError) as exc:
        click.echo(f"central was not told yet ({exc}); the sync worker tells it at its next "
                   "cycle", err=True)
        ctx.exit(2)
    click.echo("central was told: it refuses tokens signed with this key")
