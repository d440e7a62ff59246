"""The operator's commands of `onsite-server`: `doctor` and `install` (docs/deployment.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from . import create_app


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
               "enable --now onsite-server onsite-sync`, then `onsite-server doctor`")
