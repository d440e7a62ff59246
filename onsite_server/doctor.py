"""`onsite-server doctor`: the checks an administrator would otherwise learn the hard way.

Each check is a plain function that returns a :class:`Check` (its name, whether it passed and
one sentence: what was found, or what to fix). A check never raises: whatever goes wrong inside
it becomes its own failure, so one broken piece never hides the state of the others. The
command prints one line per check (or, with ``--json``, one object with a ``checks`` list for
monitoring) and exits non-zero when any check failed.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from .app_settings import of as settings_of
from .db import get_db
from .models import as_utc

# A clock before this instant cannot be right: this release was made after it, and signed
# tokens, tickets and TLS certificates would all look "not yet valid" to such a clock.
EARLIEST_SANE_CLOCK = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# The database server's clock and ours may differ this much before bookings and token expiry
# disagree visibly (a slot "starting now" on one clock and in a minute on the other).
MAX_CLOCK_SKEW_SECONDS = 60.0
# A certificate this close to its end is an outage waiting to happen: kiosks pin it.
TLS_WARN_DAYS = 14
# An outbox message pending this long means the sync worker is stopped or central refuses it.
SYNC_STALL_MINUTES = 30


@dataclass(frozen=True)
class Check:
    """One check's outcome: its name, whether it passed, and one sentence for people."""

    name: str
    ok: bool
    message: str


def _ok(name: str, message: str) -> Check:
    return Check(name, True, message)


def _fail(name: str, message: str) -> Check:
    return Check(name, False, message)


def check_database(app: Flask) -> list[Check]:
    """Return the database checks: reachable, migrations at head, takes writes."""
    from . import health, migrate

    db = get_db(app)
    try:
        current = migrate.current_revision(db)
    except SQLAlchemyError as exc:
        return [_fail("database", f"cannot reach the database ({type(exc).__name__}): check "
                      "ONSITE_DATABASE_URL and that the database server is running")]
    checks = [_ok("database", "reachable")]
    head = migrate.head_revision()
    if current is None:
        checks.append(_fail("migrations", "the database is empty: run `onsite-server "
                            "init-db` (or `onsite-server upgrade`)"))
    elif current != head:
        checks.append(_fail("migrations", f"the schema is at {current}, the code expects "
                            f"{head}: run `onsite-server init-db` to upgrade"))
    else:
        checks.append(_ok("migrations", f"at head ({head})"))
    report = health.run_checks(app)
    if report.database == "ok":
        checks.append(_ok("database-writes", "takes writes"))
    else:
        checks.append(_fail("database-writes", f"the database does not take writes "
                            f"({report.database}): see the server log for the driver's "
                            "message; free disk space or fix the file's owner and mode"))
    return checks


def check_disk(app: Flask) -> Check:
    """Return whether the instance folder's (and SQLite database's) disk has room."""
    from .health import sqlite_folder

    minimum = settings_of(app).health_min_free_mb
    folders = {app.instance_path}
    db_folder = sqlite_folder(get_db(app).url)
    if db_folder:
        folders.add(db_folder)
    worst: tuple[int, str] | None = None
    for folder in sorted(folders):
        try:
            free_mb = shutil.disk_usage(folder).free // (1024 * 1024)
        except OSError as exc:
            return _fail("disk", f"cannot read the free space of {folder}: {exc.strerror}")
        if worst is None or free_mb < worst[0]:
            worst = (free_mb, folder)
    assert worst is not None
    free_mb, folder = worst
    if free_mb < minimum:
        return _fail("disk", f"only {free_mb} MB free in {folder}, below HEALTH_MIN_FREE_MB="
                     f"{minimum}: free space or move the instance folder")
    return _ok("disk", f"{free_mb} MB free in {folder}")


def _private_files(app: Flask) -> list[Path]:
    instance = Path(app.instance_path)
    names = ["secret_key", "tls_key.pem", "tls_cert.pem", "onsite.sqlite", "config.py"]
    found = [instance / name for name in names if (instance / name).exists()]
    keys = Path(settings_of(app).signing_key_dir)
    if keys.is_dir():
        found += sorted(keys.glob("*.pem"))
    tls_key = settings_of(app).tls_key
    if tls_key and Path(tls_key).exists():
        found.append(Path(tls_key))
    return found


def check_file_modes(app: Flask) -> Check:
    """Return whether the instance folder is 0700 and its private files 0600, as the server sets."""
    instance = Path(app.instance_path)
    wrong: list[str] = []
    try:
        if stat.S_IMODE(instance.stat().st_mode) & 0o077:
            wrong.append(f"{instance} is {stat.S_IMODE(instance.stat().st_mode):o} (want 700)")
        keys = Path(settings_of(app).signing_key_dir)
        if keys.is_dir() and stat.S_IMODE(keys.stat().st_mode) & 0o077:
            wrong.append(f"{keys} is {stat.S_IMODE(keys.stat().st_mode):o} (want 700)")
        for path in _private_files(app):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                wrong.append(f"{path} is {mode:o} (want 600)")
    except OSError as exc:
        return _fail("file-modes", f"cannot read {exc.filename}: {exc.strerror}")
    if wrong:
        return _fail("file-modes", "readable by others: " + "; ".join(wrong) +
                     ": run chmod, or start the server once as its own user to tighten them")
    return _ok("file-modes", f"{instance} and its private files are readable by the owner only")


def check_tls(app: Flask, now: dt.datetime) -> Check:
    """Return whether the TLS certificate in use is valid, with its days to expiry."""
    from cryptography import x509

    configured = settings_of(app).tls_cert
    path = Path(configured) if configured else Path(app.instance_path) / "tls_cert.pem"
    if not path.exists():
        if configured:
            return _fail("tls", f"ONSITE_TLS_CERT names {path}, which does not exist")
        return _ok("tls", "no certificate yet: `onsite-server serve` makes a self-signed one "
                   "at first start (or set ONSITE_TLS_CERT/ONSITE_TLS_KEY)")
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        return _fail("tls", f"cannot read the certificate {path}: {exc}")
    if now < cert.not_valid_before_utc:
        return _fail("tls", f"the certificate {path} is not valid until "
                     f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: check the clock")
    days = (cert.not_valid_after_utc - now).days
    if now >= cert.not_valid_after_utc:
        return _fail("tls", f"the certificate {path} expired on "
                     f"{cert.not_valid_after_utc:%Y-%m-%d}: install a new one (kiosks pin "
                     "its fingerprint, so pair them again after replacing a self-signed one)")
    if days < TLS_WARN_DAYS:
        return _fail("tls", f"the certificate {path} expires in {days} days "
                     f"({cert.not_valid_after_utc:%Y-%m-%d}): renew it now")
    return _ok("tls", f"valid, expires in {days} days ({cert.not_valid_after_utc:%Y-%m-%d})")


def check_clock(app: Flask, now: dt.datetime) -> Check:
    """Return whether this machine's clock is plausible and agrees with the database's."""
    if now < EARLIEST_SANE_CLOCK:
        return _fail("clock", f"the clock says {now:%Y-%m-%d %H:%M} UTC, before this release "
                     "was made: set the time (enable NTP: timedatectl set-ntp true)")
    db = get_db(app)
    if db.is_sqlite:
        return _ok("clock", f"{now:%Y-%m-%d %H:%M:%S} UTC")
    try:
        with db.transaction(write=False) as session:
            theirs = session.scalar(text("SELECT now()"))
    except SQLAlchemyError as exc:
        return _fail("clock", f"cannot read the database server's clock ({type(exc).__name__})")
    skew = abs((theirs - now).total_seconds()) if theirs is not None else 0.0
    if skew > MAX_CLOCK_SKEW_SECONDS:
        return _fail("clock", f"this machine and the database server disagree by {skew:.0f} s: "
                     "enable NTP on both")
    return _ok("clock", f"{now:%Y-%m-%d %H:%M:%S} UTC, within {skew:.1f} s of the database's")


def check_signing_keys(app: Flask) -> Check:
    """Return whether the QR signing keys are present (they are made at first start)."""
    from shared.tokens import Purpose

    folder = Path(settings_of(app).signing_key_dir)
    missing = [p.label for p in Purpose if not list(folder.glob(f"{p.label}-*.pem"))]
    if missing:
        return _fail("signing-keys", f"no signing key for {', '.join(missing)} in {folder}: "
                     "start the server once (it makes them), or restore them from a backup; "
                     "tickets and advocate links already issued need the old keys")
    return _ok("signing-keys", f"present in {folder}")


def check_central(app: Flask) -> Check:
    """Return whether central answers and accepts our credentials (a one-result search)."""
    from .central import CentralError, client_for
    from .config import ConfigError

    try:
        client = client_for(settings_of(app).central)
    except (ConfigError, OSError) as exc:
        return _fail("central", f"cannot use the central settings: {exc}")
    client.connect_timeout = client.read_timeout = 5.0
    try:
        client.search("Practitioner", {"_count": "1"}, pages=1)
    except CentralError as exc:
        if exc.status in (401, 403):
            return _fail("central", f"central at {client.base_url} refused our credentials "
                         f"({exc}): check CENTRAL_CLIENT_ID and its key, or CENTRAL_TOKEN")
        return _fail("central", f"central at {client.base_url} did not answer as expected "
                     f"({exc}): check CENTRAL_URL and the network")
    return _ok("central", f"{client.base_url} answers and accepts our credentials")


def check_sync(app: Flask, now: dt.datetime) -> Check:
    """Return whether the sync keeps up: the oldest pending message's age and dead letters."""
    from .models import OutboxMessage

    try:
        with get_db(app).transaction(write=False) as session:
            oldest = session.scalar(select(func.min(OutboxMessage.created_at))
                                    .where(OutboxMessage.status.in_(("pending", "sending"))))
            dead = session.scalar(select(func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.status == "dead")) or 0
            # Why the oldest of them waits, when a try failed: a refused token, a TLS fault.
            why = session.scalar(select(OutboxMessage.last_error).where(
                OutboxMessage.status.in_(("pending", "sending")), OutboxMessage.attempts > 0,
                OutboxMessage.last_error.is_not(None))
                .order_by(OutboxMessage.created_at, OutboxMessage.id).limit(1))
    except SQLAlchemyError as exc:
        return _fail("sync", f"cannot read the outbox ({type(exc).__name__})")
    problems = []
    age_minutes = 0.0
    if oldest is not None:
        age_minutes = (now - as_utc(oldest)).total_seconds() / 60
        if age_minutes > SYNC_STALL_MINUTES:
            problems.append(f"the oldest message has waited {age_minutes:.0f} minutes: " + (
                f"the last try failed: {why[:300]}" if why else
                "is `onsite-server sync` running, and does central answer?"))
    if dead:
        problems.append(f"{dead} dead letters: see the dashboard's sync page")
    if problems:
        return _fail("sync", "; ".join(problems))
    waiting = f"oldest pending {age_minutes:.0f} min" if oldest is not None else "nothing waiting"
    return _ok("sync", f"{waiting}, no dead letters")


def check_crises(app: Flask, now: dt.datetime) -> Check:
    """Return whether any crisis waits unacknowledged, with the oldest one's age."""
    from .services.crisis import waiting_since

    try:
        with get_db(app).transaction(write=False) as session:
            waiting = waiting_since(session)
    except SQLAlchemyError as exc:
        return _fail("crises", f"cannot read crisis alerts ({type(exc).__name__})")
    if not waiting:
        return _ok("crises", "none waiting for acknowledgement")
    minutes = (now - min(as_utc(t) for t in waiting)).total_seconds() / 60
    return _fail("crises", f"{len(waiting)} crisis alert(s) not acknowledged, the oldest for "
                 f"{minutes:.0f} minutes: acknowledge them on the dashboard's crisis page")


def run(app_factory: Callable[[], Flask], *, central: bool = True) -> list[Check]:
    """Run every check in order; a configuration that fails stops the rest (they need it)."""
    from .config import ConfigError

    try:
        app = app_factory()
    except (ConfigError, OSError, ValueError) as exc:
        return [_fail("config", f"the configuration is not usable: {exc}")]
    checks = [_ok("config", "validates")]
    now = dt.datetime.now(dt.UTC)
    try:
        database = check_database(app)
        checks += database
        checks += [check_disk(app), check_file_modes(app), check_tls(app, now)]
        if database[0].ok:
            checks.append(check_clock(app, now))
        checks.append(check_signing_keys(app))
        if central:
            checks.append(check_central(app))
        if all(c.ok for c in database[:2]):
            checks += [check_sync(app, now), check_crises(app, now)]
    finally:
        get_db(app).dispose()
    return checks


def as_json(checks: list[Check]) -> dict[str, Any]:
    """Return the checks as one object for monitoring: ``ok`` and a ``checks`` list."""
    return {"ok": all(c.ok for c in checks), "checked_at": int(time.time()),
            "host": os.uname().nodename, "checks": [asdict(c) for c in checks]}
