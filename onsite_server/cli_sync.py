"""`onsite-server sync`: forward the outbox to central and run the periodic jobs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from . import config as config_module
from .app_settings import of as settings_of
from .cli_context import context_app as _app
from .db import get_db


@click.command("sync")
@click.option("--once", is_flag=True, help="Forward everything due, then exit.")
@click.option("--interval", type=float, default=None,
              help="Seconds between cycles (default SYNC_INTERVAL_SECONDS).")
@click.pass_context
def sync_command(ctx: click.Context, once: bool, interval: float | None) -> None:
    """Forward the outbox to central (FHIR R4) and run the periodic jobs."""
    import socket
    import time
    from datetime import timedelta

    from . import metrics
    from .central import client_for
    from .fhir import Systems
    from .services.signing import KeyStore
    from .services.sync import SyncSettings, pull_statuses, run_cycle

    app = _app(ctx)
    conf = settings_of(app)
    settings = SyncSettings(
        systems=Systems.from_config(app.config), site=conf.site_slug,
        keys=KeyStore(Path(conf.signing_key_dir)),
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        ticket_grace=timedelta(days=conf.ticket_grace_days),
        retention_days=conf.retention_days,
        reminder_lead=timedelta(hours=conf.reminder_hours),
        backoff_base=conf.sync_backoff_base_seconds,
        backoff_cap=conf.sync_backoff_cap_seconds,
        crisis_backoff_base=conf.sync_crisis_backoff_base_seconds,
        crisis_backoff_cap=conf.sync_crisis_backoff_cap_seconds,
        revive_jitter=conf.sync_revive_jitter_seconds,
        crisis_hold=timedelta(seconds=conf.sync_crisis_hold_seconds),
        # The longest a request may take: the lease on claimed rows is sized from it.
        request_timeout=conf.central_connect_timeout_seconds + conf.central_read_timeout_seconds,
        batch=conf.sync_batch)
    try:
        client = client_for(conf.central)
    except config_module.ConfigError as exc:  # plain http://: refuse before sending anything
        raise click.ClickException(str(exc)) from exc
    db = get_db(app)
    pause = interval if interval is not None else conf.sync_interval_seconds
    # Later rows are built and validated in a child process, on the other core. A worker
    # starts it now; a single cycle only once it has more rows to prepare ahead than the
    # child's start costs (``ONCE_CHILD_AFTER``).
    preparer = _preparer(db, settings, warm=not once)
    if preparer is not None:
        ctx.call_on_close(preparer.close)
    hold_until: datetime | None = None
    while True:
        # Central asked us to wait (Retry-After): no directory or status pull, no key push
        # and no revived backlog until then; rows due by their own timers still go.
        holding = hold_until is not None and datetime.now(UTC) < hold_until
        if not holding and not _central_accepts_us(db, client):
            metrics.record_sync_cycle(app.instance_path, {"credentials_refused": True})
            if once:
                raise click.ClickException("central refuses the sync's credentials (see the "
                                           "dashboard alert); nothing was sent")
            time.sleep(pause)
            continue
        answered = not holding and _before_cycle(db, client, settings)
        report = run_cycle(db.transaction, client, settings, central_answered=answered,
                           preparer=preparer)
        moved = 0 if holding else _guarded("status pull", lambda: pull_statuses(
            db.transaction, client, settings)) or 0
        hold_until = report.hold_until or (hold_until if holding else None)
        outcome = {"sent": report.sent, "withheld": report.withheld,
                   "retried": report.retried, "revived": report.revived,
                   "central_unavailable": report.central_unavailable,
                   "dead": report.dead, "no_shows": report.no_shows,
                   "waitlist_expired": report.waitlist_expired,
                   "reminders": report.reminders, "purged": report.purged,
                   "alerts": report.alerts, "statuses_moved": moved}
        click.echo(json.dumps(outcome))
        metrics.record_sync_cycle(app.instance_path, outcome)
        if once:
            return
        time.sleep(_sync_pause(pause, report.next_due))


def _guarded(what: str, work: Callable[[], Any]) -> Any:
    """Run a request of the cycle's besides forwarding; a failure is logged, never raised.

    Central's failures are expected (CentralError). Anything else is a mistake in how we
    read one of its answers, and must not stop the worker: forwarding would stop with it.
    """
    from .central import CentralError

    try:
        return work()
    except CentralError as exc:  # central unreachable or refusing: next cycle
        click.echo(f"sync: {what} failed: {exc}", err=True)
    except Exception as exc:  # noqa: BLE001 - logged with its traceback; forwarding goes on
        logging.getLogger("onsite_server.sync").exception("sync: %s failed", what)
        click.echo(f"sync: {what} failed: {type(exc).__name__}: {exc}", err=True)
    return None


def _before_cycle(db: Any, client: Any, settings: Any) -> bool:
    """Push changed keys and pull the directory; return whether central answered the pull."""
    from .services.central_keys import push_if_changed
    from .services.directory import pull_directory

    # A new, rotated or retired key reaches central even when no row is due; otherwise they
    # go with the next cycle (and with every bundle).
    if _guarded("key push", lambda: push_if_changed(db.transaction, client, settings.keys,
                                                    settings.site, settings.ticket_grace)):
        click.echo("sync: keys sent to central", err=True)
    directory = _guarded("directory pull", lambda: pull_directory(
        db.transaction, client, settings.systems))
    if directory is None:  # central unreachable: the onsite directory stands
        return False
    if directory.advocates_added or directory.reassigned or directory.assigned:
        click.echo(f"sync: directory {directory}", err=True)
    return True  # central answers: rows waiting on it need not wait longer


# Rows a ``sync --once`` prepares ahead on a thread before it starts its preparing child:
# starting the child costs about 1.2 s of CPU (a Python process importing the FHIR models),
# what building and validating 100-150 rows costs (about 8 ms a row here,
# bench/forwarding.py), and most of a ``sync --once`` with a few rows due.
ONCE_CHILD_AFTER = 100


def _preparer(db: Any, settings: Any, *, warm: bool = True) -> Any:
    """Start the child process that prepares rows ahead; None (a thread does it) where a
    second process cannot open the database, or the child does not start.

    Not warmed (``--once``), the child starts with the first rows handed to it after
    ``ONCE_CHILD_AFTER`` rows (those are prepared on a thread). Should it then fail to start,
    the rows handed to it are built by the command itself as they go (``cycle._Batch``).
    """
    from .sync_preparer import ProcessPreparer, shareable

    if not shareable(db.url):
        return None
    if not warm:
        return ProcessPreparer(db.url, settings, start_after=ONCE_CHILD_AFTER)
    preparer = ProcessPreparer(db.url, settings)
    try:
        preparer.warm()
    except Exception as exc:  # noqa: BLE001 - the worker still forwards, on one core
        click.echo(f"sync: the preparing process did not start ({exc}); preparing on a "
                   "thread", err=True)
        preparer.close()
        return None
    return preparer


def _sync_pause(interval: float, next_due: datetime | None) -> float:
    """Seconds to wait before the next cycle: the interval, or less when a row is due sooner.

    A crisis retry (2 s doubling, capped at 30 s) and rows made due when central answered
    must not wait out a 30 s interval; the floor keeps a loop that found work from spinning.
    """
    if next_due is None:
        return interval
    wait = (next_due - datetime.now(UTC)).total_seconds()
    return max(0.2, min(interval, wait))


def _central_accepts_us(db: Any, client: Any) -> bool:
    """Check central's answer to our credentials before a cycle touches any outbox row.

    invalid_client is not transient: every row would fail the same way, so the cycle stops,
    the log and an alert say why, and the next cycle asks once again (an admin may have
    fixed the key at central meanwhile). Any other failure is the rows' to retry.
    """
    from .central import CentralError
    from .services import central_health

    try:
        client.authenticate()
    except CentralError as exc:
        if not exc.credentials_refused:
            return True
        click.echo(f"sync: {exc}", err=True)
        with db.transaction() as session:
            central_health.credentials_refused(session, str(exc))
        return False
    with db.transaction() as session:
        central_health.credentials_accepted(session)
    return True
