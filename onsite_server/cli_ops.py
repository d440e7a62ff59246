"""The operator's commands of `onsite-server`: `doctor` and `install` (docs/deployment.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask

from . import create_app

if TYPE_CHECKING:
    from .backup import Target


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for monitoring.")
@click.option("--no-central", is_flag=True, help="Skip the check that calls central.")
def doctor(as_json: bool, no_central: bool) -> None:
    """Check configuration, database, disk, file modes, TLS, clock, central, sync and crises.

    Prints ok or what to fix for each check; exits 1 when any check fails.
    """
    from . import doctor as checks_module

    checks = checks_module.run(create_app, central=not no_central)
    if as_json:
        click.echo(json.dumps(checks_module.as_json(checks)))
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            mark = "ok  " if check.ok else "FAIL"
            click.echo(f"{mark} {check.name:<{width}}  {check.message}")
    if not all(c.ok for c in checks):
        raise SystemExit(1)


@click.command("install")
@click.option("--prefix", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="Root of the layout (/ on a real machine).")
@click.option("--user", default="onsite", show_default=True,
              help="The system user the services run as; it owns the instance folder.")
@click.option("--create-user", is_flag=True, help="Create the system user if it is missing.")
@click.option("--site", "site_slug", default="demo", show_default=True,
              help="The site slug written to the settings file.")
def install_command(prefix: Path, user: str, create_user: bool, site_slug: str) -> None:
    """Lay out a site: settings file with a new secret, instance folder, systemd units."""
    from .install import InstallError, Layout, create_system_user, install

    try:
        if create_user:
            create_system_user(user, Layout(prefix.resolve()).instance)
        written = install(prefix, user, site_slug)
    except InstallError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in written:
        click.echo(f"wrote {path}")
    layout = Layout(prefix.resolve())
    click.echo(f"next: edit {layout.env_file}, then `systemctl daemon-reload && systemctl "
               "enable --now onsite-server onsite-sync onsite-backup.timer`, then `onsite-server "
               "doctor`; copy ONSITE_BACKUP_PASSPHRASE somewhere safe off this machine")


def _instance_folder() -> Path:
    """The instance folder create_app will use, found without building the app."""
    configured = os.environ.get("ONSITE_INSTANCE_PATH")
    if configured:
        return Path(configured)
    from flask import Flask

    return Path(Flask("onsite_server").instance_path)


def _target(app: Flask) -> Target:
    from .backup import Target

    return Target(instance=Path(app.instance_path), database_url=str(app.config["DATABASE_URL"]),
                  key_dir=Path(str(app.config["SIGNING_KEY_DIR"])))


@click.command("backup")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The encrypted backup file to write.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write onsite-<UTC time>.bak into this folder instead (scheduled backups).")
@click.option("--keep", type=click.IntRange(1, 10000), default=None,
              help="With --out-dir: keep this many newest backups there, remove older ones.")
def backup_command(out_file: Path | None, out_dir: Path | None, keep: int | None) -> None:
    """Back up the database, signing keys, secret and TLS pair into one encrypted file."""
    from datetime import UTC, datetime

    from . import migrate
    from .backup import BackupError, backup, prune
    from .db import get_db

    if (out_file is None) == (out_dir is None):
        raise click.UsageError("give either --out FILE or --out-dir DIR")
    if keep is not None and out_dir is None:
        raise click.UsageError("--keep goes with --out-dir")
    if out_dir is not None:
        out_file = out_dir / f"onsite-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.bak"
    assert out_file is not None
    app = create_app()
    try:
        manifest = backup(_target(app), out_file, app.config.get("BACKUP_PASSPHRASE"),
                          revision=migrate.current_revision(get_db(app)))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        get_db(app).dispose()
    click.echo(f"backup written to {out_file} ({manifest['database']} database at revision "
               f"{manifest['revision']}, {len(manifest['keys'])} signing keys)")
    if out_dir is not None and keep is not None:
        for removed in prune(out_dir, keep):
            click.echo(f"removed the older backup {removed}")


@click.command("restore")
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database and keys that are there.")
def restore_command(backup_file: Path, force: bool) -> None:
    """Restore a backup into the configured (empty) instance and database."""
    from .backup import BackupError, restore
    from .db import get_db

    secret = _instance_folder() / "secret_key"
    had_secret = secret.exists()
    app = create_app()
    if not had_secret:
        # create_app makes a secret for a new instance; the backup's own secret replaces it.
        secret.unlink(missing_ok=True)
    try:
        manifest = restore(_target(app), get_db(app), backup_file,
                           app.config.get("BACKUP_PASSPHRASE"), force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        get_db(app).dispose()
    click.echo(f"restored the backup of {manifest['created_at']} ({manifest['database']} "
               f"database at revision {manifest['revision']}); run `onsite-server init-db` "
               "if this code is newer, then `onsite-server doctor`")
