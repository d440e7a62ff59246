"""Database engines (SQLite and PostgreSQL), the Database that owns them, and their errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from ..settings import Settings

from .group_commit import GroupCommit, GroupMember
from .sqlite_writes import (
    WriteQueueTimeout,
    configure_sqlite,
    database_path,
    write_queue_factory,
)

log = logging.getLogger("onsite_server.db")

# The database refused or could not be reached in time: a lock or statement timeout, a lost
# or refused connection, a pool with no free connection. The request answers 503 with
# Retry-After and the client retries with the same idempotency key; that is safe even for a
# COMMIT cut off after the server applied it, since the retry then replays the stored answer.
# InterfaceError: psycopg raises it for a connection it already knows is closed.
DB_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


def is_sqlite(url: str | URL) -> bool:
    """Tell whether a SQLAlchemy URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def database_problem(exc: BaseException) -> str:
    """Name the state of a database that refused a write, from the driver's error.

    One of busy, read-only, full, unreachable, refuses writes: /healthz reports it, and a
    request the database refused answers 503 naming it (errors.database_unavailable).
    """
    if isinstance(exc, WriteQueueTimeout | PoolTimeout):
        return "busy"
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = str(getattr(orig, "sqlstate", "") or "")
    message = str(orig).lower()
    if "no such savepoint" in message:
        # SQLite rolled the whole transaction back on the first error (a full disk, I/O),
        # so rolling back to a SAVEPOINT failed too: the first error names the problem.
        first = exc.__context__ or (orig.__context__ if orig is not None else None)
        if first is not None and first is not exc:
            return database_problem(first)
    if sqlstate == "25006" or "readonly" in message or "read-only" in message:
        return "read-only"
    if sqlstate == "53100" or "disk is full" in message or "no space" in message:
        return "full"
    if "locked" in message or sqlstate in ("55P03", "57014"):
        return "busy"
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "unreachable"
    return "refuses writes" if isinstance(exc, DBAPIError) else "unreachable"


@dataclass(frozen=True)
class PgLimits:
    """Bounds on every wait for PostgreSQL; past one, the request fails and answers 503."""

    pool_size: int = 5
    pool_timeout_ms: int = 3000
    lock_timeout_ms: int = 3000
    statement_timeout_ms: int = 10000
    connect_timeout_seconds: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> PgLimits:
        """Take the limits from the server's settings (pool sized from the thread count)."""
        return cls(
            pool_size=settings.pool_size(),
            pool_timeout_ms=settings.db_pool_timeout_ms,
            lock_timeout_ms=settings.pg_lock_timeout_ms,
            statement_timeout_ms=settings.pg_statement_timeout_ms,
            connect_timeout_seconds=settings.pg_connect_timeout_seconds,
        )


def make_engine(url: str, *, busy_timeout_ms: int = 15000, pg: PgLimits | None = None) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and explicit BEGIN."""
    if is_sqlite(url):
        connect_args: dict[str, Any] = {"timeout": busy_timeout_ms / 1000,
                                        "check_same_thread": False}
        factory = write_queue_factory(url, busy_timeout_ms)
        if factory is not None:
            connect_args["factory"] = factory
        engine = create_engine(url, connect_args=connect_args, hide_parameters=True)
        configure_sqlite(engine, busy_timeout_ms, database_path(url))
        return engine
    engine = _make_pg_engine(url, pg or PgLimits())
    _unavailable_as_operational(engine)
    return engine


# PostgreSQL states in which the database, not the request, is at fault: a read-only
# transaction (a standby, default_transaction_read_only) and insufficient resources (disk
# full, out of memory, too many connections). psycopg raises them as InternalError and
# friends, which would answer 500; as OperationalError they answer 503 with Retry-After, as
# SQLite's "readonly database" and "disk is full" already do.
_UNAVAILABLE_SQLSTATES = ("25006", "53")


def _unavailable_as_operational(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> BaseException | None:
        orig = context.original_exception
        sqlstate = str(getattr(orig, "sqlstate", "") or "")
        if isinstance(context.sqlalchemy_exception, OperationalError) or \
                not sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return None
        return OperationalError(context.statement, context.parameters, orig,
                                hide_parameters=True)


def _make_pg_engine(url: str, pg: PgLimits) -> Engine:
    # Without these, a row lock held elsewhere or a stuck server makes a request wait as long
    # as it lasts, holding a worker thread, until every thread (and /healthz) is stuck. With
    # them, lock waits, statements and new connections fail within seconds, as OperationalError,
    # which answers 503 with Retry-After. Sent as startup options: no extra round trip.
    options = (f"-c lock_timeout={int(pg.lock_timeout_ms)} "
               f"-c statement_timeout={int(pg.statement_timeout_ms)}")
    return create_engine(
        url,
        connect_args={"connect_timeout": int(pg.connect_timeout_seconds), "options": options},
        # One connection per request thread (config.pool_size), and no overflow: connections
        # beyond that only count against PostgreSQL's max_connections. A pool that is empty
        # all the same fails after pool_timeout (PoolTimeout), not SQLAlchemy's default 30 s.
        pool_size=pg.pool_size, max_overflow=0, pool_timeout=pg.pool_timeout_ms / 1000,
        pool_pre_ping=True,
        # hide_parameters: a database error's text must never carry answers or contact details
        # into the logs.
        hide_parameters=True,
    )


class RequestSession(Session):
    """A session whose writes may run in the process's group commit (SQLite, a request).

    While ``group`` is set, the first statement waits for a turn in the group
    (``GroupCommit.join``) and the session works on the group's connection: in its
    transaction (``rollback_only``: the session's commit only flushes) when it opened the
    group, else in a SAVEPOINT (``create_savepoint``); ``end_turn`` ends the turn at the
    request's boundary (``db.flask``). Without a group it is a plain Session.
    """

    group: GroupCommit | None = None
    member: GroupMember | None = None

    def get_bind(self, mapper: Any = None, **kw: Any) -> Engine | Connection:
        """Return the group's connection once the session writes in a group, else the bind."""
        if self.group is not None:
            if self.member is None:
                self.member = self.group.join()
                # The first request of a group works in its transaction; a later one in a
                # SAVEPOINT, so that its rollback leaves the others' work alone.
                self.join_transaction_mode = ("rollback_only" if self.member.first
                                              else "create_savepoint")
            return self.member.connection
        return super().get_bind(mapper, **kw)

    def end_turn(self, keep: bool) -> None:
        """Leave the group (no-op outside one): see ``GroupMember.finish``.

        End the session's own transaction first (commit, rollback or close).
        """
        member, self.member, self.group = self.member, None, None
        if member is not None:
            member.finish(keep)


class Database:
    """Owns the engine and session factories of one app (created once, at configuration)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.url: str = ""
        self._is_sqlite = False
        self._read: sessionmaker[RequestSession] | None = None
        self._write: sessionmaker[RequestSession] | None = None
        self._read_phase: sessionmaker[RequestSession] | None = None
        self.write_bind: Engine | None = None
        # SQLite file databases: a request's writes share COMMITs (group_commit.GroupCommit).
        self.group: GroupCommit | None = None

    def configure(self, url: str, *, busy_timeout_ms: int = 15000,
                  pg: PgLimits | None = None, group_commit: bool = True) -> None:
        """Create the engine and the session factories for url (group commit: SQLite files)."""
        self.url = url
        self._is_sqlite = is_sqlite(url)
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms, pg=pg)
        # create_savepoint: a session bound to a group's connection keeps its work in a
        # SAVEPOINT of its own (RequestSession); on an engine the mode changes nothing.
        self._read = sessionmaker(self.engine, class_=RequestSession, expire_on_commit=False,
                                  join_transaction_mode="create_savepoint")
        self._read_phase = self._read
        self.write_bind = self.engine
        self.group = None
        if self._is_sqlite:
            self._read_phase = sessionmaker(
                self.engine.execution_options(sqlite_begin="NONE"), class_=RequestSession,
                expire_on_commit=False, join_transaction_mode="create_savepoint")
            self.write_bind = self.engine.execution_options(sqlite_begin="IMMEDIATE")
            if database_path(url) is not None and group_commit:
                self.group = GroupCommit(self.write_bind, wait_seconds=busy_timeout_ms / 1000)
        self._write = sessionmaker(self.write_bind, class_=RequestSession,
                                   expire_on_commit=False,
                                   join_transaction_mode="create_savepoint")

    @property
    def is_sqlite(self) -> bool:
        """Tell whether this database is SQLite."""
        return self._is_sqlite

    def session(self, *, write: bool = True) -> RequestSession:
        """Open a new session; write sessions take SQLite's write lock when they begin."""
        factory = self._write if write else self._read
        if factory is None:
            raise RuntimeError("database is not configured")
        return factory()

    def request_session(self, *, write: bool) -> RequestSession:
        """Open a request's session: its writes join the group commit where there is one."""
        if not write or self.group is None:
            return self.session(write=write)
        session = self.session(write=False)
        session.group = self.group
        return session

    def read_phase_session(self) -> RequestSession:
        """Open a write request's session for its reads before the write lock (SQLite).

        Its statements run without BEGIN and COMMIT: each SELECT is a transaction of its
        own (the read phase needs no snapshot across its checks, and the write phase
        re-reads under the lock what it decides on). ``write_in_group`` turns it into the
        request's write session.
        """
        if self._read_phase is None:
            raise RuntimeError("database is not configured")
        return self._read_phase()

    def write_in_group(self, session: RequestSession) -> None:
        """Let a request's read-phase session write: in the group, or with the write lock."""
        if self.group is not None:
            session.group = self.group
        else:
            session.bind = self.write_bind

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """Yield a session that commits on success and rolls back on error (CLI, workers)."""
        session = self.session(write=write)
        try:
            yield session
            session.commit()
        except BaseException:
            # Quietly: a rollback failing on a dead connection must not hide the first error.
            rollback_quietly(session)
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close all pooled connections."""
        if self.engine is not None:
            self.engine.dispose()


def rollback_quietly(session: Session) -> None:
    """Roll back a failed request's session; a dead connection is dropped, not raised again."""
    try:
        session.rollback()
    except SQLAlchemyError as exc:
        # The connection died under the transaction (backend terminated, server restarted):
        # nothing is left to roll back, and raising here, in an error path, would turn the
        # request's 503 into a 500. Drop the connection so the pool never hands it out again.
        log.warning("rollback failed, connection dropped: %s", type(exc).__name__)
        session.invalidate()
