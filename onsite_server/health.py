"""GET /healthz: answers 200 only when the database takes writes and the disk has room.

A database that answers reads but refuses writes (a read-only file or mount, a full disk, a
standby) used to look healthy while every kiosk write answered 503. The check therefore writes:
one no-op UPDATE in a transaction that is rolled back, under SQLite's write queue for well
under a millisecond. It also compares the free space of the SQLite database's folder (and the
room the database may still grow into, ``PRAGMA max_page_count``) with HEALTH_MIN_FREE_MB.
Results are reused for HEALTH_CHECK_SECONDS so that frequent polling neither queues for the
write lock nor turns the health route into database load. The version is shown only to an
authenticated caller.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import Connection, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .app_settings import of as settings_of
from .db import Database, database_problem, get_db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

# Touches one row that every migrated database has, changes nothing, and is rolled back; it
# still needs a write transaction, which is what a read-only or standby database refuses.
_WRITE_PROBE = text("UPDATE alembic_version SET version_num = version_num")


@dataclass
class HealthReport:
    """What the checks found: the database's state, the disk's, and the reasons in words."""

    database: str = "ok"
    disk: str = "ok"
    reasons: list[str] = field(default_factory=list)
    checked_at: float = 0.0

    @property
    def ok(self) -> bool:
        """Tell whether everything needed to take writes is in order."""
        return not self.reasons


class _Unreachable(Exception):
    """No connection to the database could be made."""


def _probe_writes(db: Database, wait_seconds: float) -> None:
    """Run the write probe and roll it back; raises what the database answered."""
    assert db.engine is not None
    bind = db.write_bind or db.engine
    try:
        conn = bind.connect()
    except SQLAlchemyError as exc:
        raise _Unreachable(type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__
                           ) from exc
    # A health check waits briefly for the write queue: a load balancer must get an answer.
    with conn.execution_options(write_wait_seconds=wait_seconds):
        trans = conn.begin()
        try:
            if not db.is_sqlite:
                # The same brief wait on PostgreSQL, for this transaction only.
                ms = max(1, int(wait_seconds * 1000))
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            conn.execute(_WRITE_PROBE)
            if db.is_sqlite:
                _check_sqlite_room(conn)
        finally:
            trans.rollback()


class _DatabaseFull(Exception):
    """The SQLite database cannot grow: max_page_count reached, no free pages left."""


def _check_sqlite_room(conn: Connection) -> None:
    # The no-op UPDATE needs no new page, so a database at its size limit passes it; the
    # pages it may still use tell whether the next insert would fail as "disk is full".
    page_count = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    max_pages = conn.exec_driver_sql("PRAGMA max_page_count").scalar_one()
    free_pages = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
    if int(max_pages) - int(page_count) + int(free_pages) < _MIN_SPARE_PAGES:
        raise _DatabaseFull(f"{page_count} of at most {max_pages} pages used, "
                            f"{free_pages} free")


# A submission touches a handful of pages; fewer spare than this and the next writes fail.
_MIN_SPARE_PAGES = 16


def sqlite_folder(url: str) -> str | None:
    """Return the folder of a file-based SQLite database (None for other databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    return os.path.dirname(os.path.abspath(database))


def run_checks(app: Flask) -> HealthReport:
    """Check that the database takes writes and that its disk has room; never raises."""
    report = HealthReport(checked_at=time.monotonic())
    db = get_db(app)
    settings = settings_of(app)
    wait = min(settings.health_write_wait_seconds, settings.sqlite_busy_timeout_ms / 1000)
    try:
        _probe_writes(db, wait)
    except _Unreachable as exc:
        report.database = "unreachable"
        report.reasons.append("database: unreachable")
        log.warning("healthz: cannot connect to the database: %s", exc)
    except _DatabaseFull as exc:
        report.database = "full"
        report.reasons.append("database: full (it has reached its size limit)")
        log.warning("healthz: the database cannot grow any more: %s", exc)
    except SQLAlchemyError as exc:
        report.database = database_problem(exc)
        report.reasons.append(f"database: {report.database}")
        # The driver's message names the state ("attempt to write a readonly database"); the
        # probe carries no parameters, so it holds no member data.
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        first_line = (str(orig).strip().splitlines() or [""])[0]
        log.warning("healthz: the database does not take writes (%s): %s: %s",
                    report.database, type(orig).__name__, first_line)
    folder = sqlite_folder(db.url)
    if folder is not None:
        min_free = settings_of(app).health_min_free_mb * 1024 * 1024
        try:
            free = shutil.disk_usage(folder).free
        except OSError as exc:
            report.disk = "unknown"
            report.reasons.append("disk: cannot read free space")
            log.warning("healthz: cannot read the free space of %s: %s", folder, exc)
        else:
            if free < min_free:
                report.disk = "low"
                report.reasons.append("disk: free space below the configured minimum")
                log.warning("healthz: %d MB free in %s, below HEALTH_MIN_FREE_MB=%d",
                            free // (1024 * 1024), folder, min_free // (1024 * 1024))
    return report


class _Cache:
    """The last report of one worker process, reused for HEALTH_CHECK_SECONDS."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.report: HealthReport | None = None


def current_report(app: Flask) -> HealthReport:
    """Return a recent report, running the checks when the last one is too old."""
    cache: _Cache = app.extensions["onsite_health"]
    max_age = settings_of(app).health_check_seconds
    with cache.lock:
        # One check at a time per process: a burst of polls waits for it instead of
        # queueing many probes for the write lock.
        report = cache.report
        if report is None or time.monotonic() - report.checked_at >= max_age:
            report = cache.report = run_checks(app)
    return report


def _authenticated() -> bool:
    """Tell whether the caller showed a valid kiosk device token (dashboard log-ins: later)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    from .api import hash_token
    from .models import Kiosk

    try:
        with get_db().transaction(write=False) as session:
            kiosk = session.scalars(select(Kiosk).where(
                Kiosk.token_hash == hash_token(token.strip()))).first()
            return kiosk is not None and kiosk.revoked_at is None
    except SQLAlchemyError:
        return False


@bp.get("/healthz")
def healthz() -> tuple[Response, int] | Response:
    """Answer 200 when the database takes writes and the disk has room, else 503 with why."""
    from . import __version__

    report = current_report(current_app)
    body: dict[str, Any] = {"status": "ok" if report.ok else "degraded",
                            "database": report.database, "disk": report.disk}
    if not report.ok:
        body["reasons"] = report.reasons
    # The version tells an attacker which known flaws to try: only for callers we know.
    if _authenticated():
        body["version"] = __version__
    response = jsonify(body)
    if report.ok:
        return response
    response.headers["Retry-After"] = "5"
    return response, 503


def init_app(app: Flask) -> None:
    """Register /healthz and its per-process cache."""
    app.extensions["onsite_health"] = _Cache()
    app.register_blueprint(bp)
