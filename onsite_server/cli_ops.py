"""The operator's commands of `onsite-server`: doctor, install, backup, restore, upgrade and
make-signing-keys (docs/deployment.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask

from . import create_app
from .app_settings import of as settings_of

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
    from .services.errors import ServiceError
    from .services.sites import check_slug

    try:
        # Written into the settings file as a line of its own: refused before anything is laid out.
        check_slug(site_slug, "site")
    except ServiceError as exc:
        raise click.BadParameter(exc.errors[0]["message"], param_hint="--site") from exc
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


@click.command("make-signing-keys")
@click.option("--dir", "folder", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder every node reads as ONSITE_SIGNING_KEY_DIR.")
def make_signing_keys(folder: Path) -> None:
    """Make the token signing keys once, for the folder several nodes share (MULTI_NODE).

    Keys already there are kept: running it again changes nothing (`keys rotate` adds one).
    """
    from shared.tokens import Purpose

    from .services.signing import KeyStore

    store = KeyStore(folder)
    for purpose in Purpose:
        key = store.current(purpose)
        click.echo(f"{purpose.label}: {key.key_id}")
    click.echo(f"copy {folder} (0700, its files 0600) to the same path on every node")


def _instance_folder() -> Path:
    """The instance folder create_app will use, found without building the app."""
    configured = os.environ.get("ONSITE_INSTANCE_PATH")
    if configured:
        return Path(configured)
    from flask import Flask

    return Path(Flask("onsite_server").instance_path)


def _target(app: Flask) -> Target:
    from .backup import Target

    settings = settings_of(app)
    return Target(instance=Path(app.instance_path), database_url=settings.database_url,
                  key_dir=Path(settings.signing_key_dir))


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
        manifest = backup(_target(app), out_file, settings_of(app).backup_passphrase,
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
                           settings_of(app).backup_passphrase, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        get_db(app).dispose()
    click.echo(f"restored the backup of {manifest['created_at']} ({manifest['database']} "
               f"database at revision {manifest['revision']}); run `onsite-server init-db` "
               "if this code is newer, then `onsite-server doctor`")


@click.command("upgrade")
@click.option("--backup-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the pre-upgrade backup goes (default: <instance>/backups).")
@click.option("--no-backup", is_flag=True,
              help="Skip the backup (only when one was just taken another way).")
def upgrade_command(backup_dir: Path | None, no_backup: bool) -> None:
    """Back up, run the migrations, then check the database; say the way back on failure."""
    from .db import get_db

    app = create_app()
    database = get_db(app)
    try:
        saved, current, head = _upgrade(app, backup_dir, no_backup)
    finally:
        database.dispose()
    if current == head:
        click.echo(f"the schema is already at {head}: nothing to upgrade")
        return
    click.echo(f"upgraded from {current} to {head}; the database takes writes"
               + (f"; the backup from before is {saved}" if saved else ""))


def _upgrade(app: Flask, backup_dir: Path | None, no_backup: bool
             ) -> tuple[Path | None, str | None, str | None]:
    """Back up, migrate and check; return (backup path, revision before, head)."""
    from datetime import UTC, datetime

    from sqlalchemy.exc import SQLAlchemyError

    from . import doctor as checks_module
    from . import migrate
    from .backup import BackupError, backup
    from .db import get_db

    database = get_db(app)
    current, head = migrate.current_revision(database), migrate.head_revision()
    if current == head:
        return None, current, head
    saved: Path | None = None
    if not no_backup:
        folder = backup_dir or Path(app.instance_path) / "backups"
        saved = folder / (f"onsite-pre-upgrade-{current or 'empty'}-"
                          f"{datetime.now(UTC):%Y%m%dT%H%M%S}.bak")
        try:
            backup(_target(app), saved, settings_of(app).backup_passphrase, revision=current)
        except BackupError as exc:
            raise click.ClickException(f"no upgrade: the backup first failed: {exc}") from exc
        click.echo(f"backup of revision {current} written to {saved}")
    try:
        migrate.upgrade(database)
    except (SQLAlchemyError, OSError, ValueError) as exc:
        way_back = (f"restore the backup with `onsite-server restore --force {saved}`"
                    if saved else "restore your own backup")
        raise click.ClickException(
            f"the migration from {current} to {head} failed ({type(exc).__name__}: {exc}). "
            f"The way back: reinstall the previous version of the code, then {way_back}, "
            "then `onsite-server doctor`") from exc
    failed = [c for c in checks_module.check_database(app) if not c.ok]
    if failed:
        raise click.ClickException("the migrations ran but the database is not right: " +
                                   "; ".join(f"{c.name}: {c.message}" for c in failed))
    return saved, current, head
