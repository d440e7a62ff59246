"""The `onsite-server` command: database, users, sites, events, pairing, demo data, serving."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import migrate
from .app_settings import of as settings_of
from .cli_context import TextCheckedGroup
from .cli_context import context_app as _app
from .cli_serve import run_gunicorn, serve
from .cli_sync import _sync_pause, sync_command
from .db import get_db
from .models import (
    EVENT_KINDS,
    Employer,
    Event,
    Kiosk,
    Site,
)
from .services import events as events_svc
from .services import sites as sites_service
from .services import users as users_service
from .services.errors import ServiceError
from .services.pairing import issue_pairing_code, revoke_kiosk
from .services.spreadsheet import safe_row

ROLES = users_service.ROLES
# `serve` and `sync` live in cli_serve.py and cli_sync.py; their names stay importable here.
__all__ = ["ROLES", "_sync_pause", "main", "run_gunicorn", "serve", "sync_command"]


@click.group(cls=TextCheckedGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Onsite Wellness server: manage the site database and serve the kiosk API and dashboard."""
    ctx.ensure_object(dict)


@main.command("init-db")
@click.pass_context
def init_db(ctx: click.Context) -> None:
    """Create or upgrade the schema (Alembic migrations)."""
    app = _app(ctx)
    migrate.upgrade(get_db(app))
    click.echo(f"database ready at revision {migrate.current_revision(get_db(app))}")


def _site(session: Session, slug: str) -> Site:
    site = session.scalars(select(Site).where(Site.slug == slug)).first()
    if site is None:
        raise click.BadParameter(f"no site with slug {slug!r}", param_hint="--site")
    return site


@main.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--site", "site_slug", default=None,
              help="Site slug: the site an admin, coordinator or employer works at.")
@click.option("--advocate-id", default=None, help="Advocate public id, for advocate users.")
@click.pass_context
def create_user(ctx: click.Context, email: str, name: str, role: str, password: str,
                site_slug: str | None, advocate_id: str | None) -> None:
    """Create a dashboard user (admin, coordinator, advocate, employer or operator).

    An operator sees every site's audit log, sync health and alerts; only this command grants
    that role (the dashboard's invitations cannot). Admins, advocates and operators set up
    their authenticator app (TOTP) at their first log-in.
    """
    with get_db(_app(ctx)).transaction() as session:
        try:
            site_id = sites_service.find_site(session, site_slug).id if site_slug else None
            users_service.create_user(session, email=email, name=name, role=role,
                                      password=password, site_id=site_id,
                                      advocate_public_id=advocate_id, roles=ROLES)
        except ServiceError as exc:
            raise _bad_parameter(exc) from exc
    click.echo(f"created {role} {email.lower()}")


# The CLI's spelling of the fields services name in their refusals.
_OPTION_OF_FIELD = {"advocate": "--advocate-id", "site": "--site", "timezone": "--timezone",
                    "slug": "--slug", "email": "--email", "password": "--password",
                    "name": "--name", "role": "--role", "employer": "--employer",
                    "employer_name": "--employer-name"}


def _bad_parameter(exc: ServiceError) -> click.BadParameter:
    error = exc.errors[0] if exc.errors else {"field": "", "message": exc.detail}
    return click.BadParameter(error["message"],
                              param_hint=_OPTION_OF_FIELD.get(error["field"], error["field"]))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.BadParameter(f"unknown timezone {name!r}", param_hint="--timezone") from exc


@main.command("create-site")
@click.option("--employer", "employer_slug", required=True, help="Employer slug (created if new).")
@click.option("--employer-name", default=None)
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--timezone", "tz", default="America/New_York", show_default=True)
@click.pass_context
def create_site(ctx: click.Context, employer_slug: str, employer_name: str | None, slug: str,
                name: str, tz: str) -> None:
    """Create a site (and its employer if new)."""
    with get_db(_app(ctx)).transaction() as session:
        try:
            sites_service.create_site(session, employer_slug=employer_slug,
                                      employer_name=employer_name, slug=slug, name=name,
                                      timezone=tz)
        except ServiceError as exc:
            raise _bad_parameter(exc) from exc
    click.echo(f"created site {slug}")


@main.command("create-event")
@click.option("--site", "site_slug", required=True)
@click.option("--title", required=True)
@click.option("--title-es", default=None)
@click.option("--kind", type=click.Choice(EVENT_KINDS), default="other", show_default=True)
@click.option("--location", default=None)
@click.pass_context
def create_event(ctx: click.Context, site_slug: str, title: str, title_es: str | None,
                 kind: str, location: str | None) -> None:
    """Create an event at a site and print its id."""
    with get_db(_app(ctx)).transaction() as session:
        site = _site(session, site_slug)
        try:
            event = events_svc.create_event(session, site, events_svc.EventInput(
                title=title, title_es=title_es, kind=kind, location=location), actor="cli")
        except ServiceError as exc:
            raise click.BadParameter(exc.detail, param_hint="--" + exc.errors[0]["field"]
                                     .replace("_", "-")) from exc
        click.echo(event.public_id)


@main.command("add-slots")
@click.option("--event", "event_id", required=True, help="Event public id.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Local date at the site.")
@click.option("--start", type=click.DateTime(["%H:%M"]), required=True, help="Local start time.")
@click.option("--count", type=click.IntRange(1, 200), default=1, show_default=True)
@click.option("--minutes", type=click.IntRange(5, 480), default=15, show_default=True)
@click.option("--capacity", type=click.IntRange(1, 10000), default=1, show_default=True)
@click.pass_context
def add_slots(ctx: click.Context, event_id: str, day: datetime, start: datetime, count: int,
              minutes: int, capacity: int) -> None:
    """Add consecutive slots to an event, in the site's local time."""
    with get_db(_app(ctx)).transaction() as session:
        event = session.scalars(select(Event).where(Event.public_id == event_id)).first()
        if event is None:
            raise click.BadParameter(f"no event {event_id}", param_hint="--event")
        site = session.get(Site, event.site_id)
        assert site is not None
        try:
            events_svc.add_slots(session, event, day.date(), start.time(), count, minutes,
                                 capacity, _zone(site.timezone), actor="cli")
        except ServiceError as exc:
            field = exc.errors[0]["field"]
            hint = {"every": "--minutes", "event_id": "--event", "day": "--date"}.get(
                field, f"--{field}")
            raise click.BadParameter(exc.detail, param_hint=hint) from exc
    click.echo(f"added {count} slots")


@main.command("pairing-code")
@click.option("--site", "site_slug", required=True)
@click.option("--label", default="kiosk", show_default=True)
@click.option("--place", default=None, help="Where the kiosk stands, e.g. 'Lobby B'.")
@click.pass_context
def pairing_code(ctx: click.Context, site_slug: str, label: str, place: str | None) -> None:
    """Issue a one-time kiosk pairing code for a site."""
    app = _app(ctx)
    with get_db(app).transaction() as session:
        code = issue_pairing_code(session, _site(session, site_slug), label=label, place=place,
                                  ttl_seconds=settings_of(app).pairing_code_ttl_seconds)
    click.echo(code)


@main.command("revoke-kiosk")
@click.argument("kiosk_id")
@click.pass_context
def revoke_kiosk_cmd(ctx: click.Context, kiosk_id: str) -> None:
    """Revoke a kiosk's device token (by kiosk public id)."""
    with get_db(_app(ctx)).transaction() as session:
        kiosk = session.scalars(select(Kiosk).where(Kiosk.public_id == kiosk_id)).first()
        if kiosk is None:
            raise click.BadParameter(f"no kiosk {kiosk_id}", param_hint="KIOSK_ID")
        revoke_kiosk(session, kiosk)
    click.echo(f"revoked {kiosk_id}")


@main.command("demo-data")
@click.pass_context
def demo_data(ctx: click.Context) -> None:
    """Load a demo site, advocates, members, events and a pairing code (idempotent)."""
    from .demo import load_demo_data

    app = _app(ctx)
    migrate.upgrade(get_db(app))
    with get_db(app).transaction() as session:
        summary: dict[str, Any] = load_demo_data(session, app.config)
    for line in summary.pop("_lines", []):
        click.echo(line)
    click.echo(json.dumps(summary, sort_keys=True))


@main.command("import-roster")
@click.argument("csv_file", metavar="FILE.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--employer", "employer_slug", required=True, help="Employer slug.")
@click.option("--partial", is_flag=True, help="Import the good rows even if some are bad.")
@click.option("--dry-run", is_flag=True, help="Validate and count; write nothing.")
@click.option("--errors-out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              default=None, help="Also write the per-row error report to this CSV file.")
@click.pass_context
def import_roster_cmd(ctx: click.Context, csv_file: Path, employer_slug: str, partial: bool,
                      dry_run: bool, errors_out: Path | None) -> None:
    """Import members from CSV, upserting by employee id (all-or-nothing unless --partial)."""
    import csv

    from .services.roster import RosterImportError, import_roster
    from .services.roster_file import RosterFileError, open_roster

    try:
        stream = open_roster(csv_file)
    except RosterFileError as exc:
        raise click.ClickException(str(exc)) from exc
    total = max(0, sum(1 for line in stream if line.strip()) - 1)
    stream.seek(0)
    app = _app(ctx)
    db = get_db(app)
    with db.transaction(write=False) as session:
        employer_id = session.scalars(
            select(Employer.id).where(Employer.slug == employer_slug)).first()
    if employer_id is None:
        raise click.BadParameter(f"no employer {employer_slug!r} (create-site makes one)",
                                 param_hint="--employer")
    try:
        with click.progressbar(length=total, label="Checking rows", file=sys.stderr) as bar:
            # Not inside a transaction of ours: the import writes in short transactions of its
            # own, so kiosks keep writing while a large roster goes in.
            report = import_roster(db, employer_id, stream, partial=partial, dry_run=dry_run,
                                   progress=bar.update,
                                   max_rows=settings_of(app).roster_max_rows)
    except (RosterFileError, RosterImportError) as exc:
        raise click.ClickException(str(exc)) from exc
    for error in report.errors:
        click.echo(str(error), err=True)
    if errors_out is not None:
        # With a byte-order mark, as Excel's "CSV UTF-8": without it Excel misreads the
        # messages' quotes and any name they hold (spreadsheet.for_excel).
        with errors_out.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "column", "message"])
            # The file is opened in a spreadsheet to fix the roster, and its column names and
            # messages quote what the uploaded file held.
            writer.writerows(safe_row([e.row, e.column, e.message]) for e in report.errors)
    summary = report.as_dict()
    if report.errors and not partial:
        click.echo(f"{report.bad_rows} bad row(s); nothing imported (use --partial to import "
                   "the good rows)", err=True)
        click.echo(json.dumps(summary, sort_keys=True))
        ctx.exit(1)
    click.echo(json.dumps(summary, sort_keys=True))


@main.command("export-questionnaires")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder to write <id>-<version>.json into (created).")
@click.option("--all-versions", is_flag=True, help="Every version on disk, not only the current.")
@click.pass_context
def export_questionnaires(ctx: click.Context, out_dir: Path, all_versions: bool) -> None:
    """Write every instrument definition as a FHIR R4 Questionnaire (validated) for central,
    and our local CodeSystems (CodeSystem-<name>.json) that their answers and scores use."""
    from shared.assessments import available_versions, list_instruments

    from .fhir import Systems, code_systems, questionnaire, validate

    config = _app(ctx).config
    systems = Systems.from_config(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, dict[str, Any]]] = []
    for instrument_id, current in list_instruments():
        for version in (available_versions(instrument_id) if all_versions else [current]):
            written.append((out_dir / f"{instrument_id}-{version}.json",
                            questionnaire(instrument_id, version, systems)))
    for system in code_systems(systems):
        name = str(system["url"]).rsplit("/", 1)[-1]
        written.append((out_dir / f"CodeSystem-{name}.json", system))
    for path, resource in written:
        validate(resource)
        path.write_text(json.dumps(resource, indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        click.echo(str(path))


def _add_operator_commands() -> None:
    from .cli_keys import keys
    from .cli_ops import (
        backup_command,
        doctor,
        install_command,
        make_signing_keys,
        restore_command,
        upgrade_command,
    )

    for command in (serve, sync_command, doctor, install_command, backup_command,
                    restore_command, upgrade_command, keys, make_signing_keys):
        main.add_command(command)


_add_operator_commands()

if __name__ == "__main__":
    main()
