"""Database engine, sessions and the request-scoped unit of work."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from .instance import open_private, touch_private

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The database refused or could not be reached in time: a lock or statement timeout, a lost
# or refused connection, a pool with no free connection. The request answers 503 with
# Retry-After and the client retries with the same idempotency key; that is safe even for a
# COMMIT cut off after the server applied it, since the retry then replays the stored answer.
# InterfaceError: psycopg raises it for a connection it already knows is closed.
DB_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


def is_sqlite(url: str | URL) -> bool:
    """Tell whether a SQLAlchemy URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


class WriteQueueConnection(sqlite3.Connection):
    """A SQLite connection that queues for the write lock on a lock file before BEGIN IMMEDIATE.

    SQLite's busy handler sleeps 1-100 ms between retries, so the lock sits idle while writers
    nap and some writers starve (p99 near a second under load). A blocking ``flock`` hands the
    lock over as soon as it is free, across threads and gunicorn worker processes. Each
    connection opens the lock file itself: flock belongs to the open file description, so two
    threads of one process exclude each other too. The lock is held from just before
    ``BEGIN IMMEDIATE`` until the transaction ends (commit, rollback or close, including the
    pool's rollback on check-in), so it can never outlive the connection's checkout.
    SQLite's own busy timeout stays in force for writers that do not queue (the CLI, a
    deferred transaction that writes).
    """

    lock_path: str = ""
    # How long a writer waits for the queue before giving up with WriteQueueTimeout: the same
    # bound as SQLite's busy_timeout, so no write waits longer than that for either lock.
    wait_seconds: float = 15.0
    # Threads of one process queue here first: one waiter per process on the file lock, and
    # a release wakes one thread instead of every thread blocked in flock.
    process_lock: threading.Lock = threading.Lock()
    _lock_file: IO[bytes] | None = None
    _holder: Any = None

    def acquire_write_lock(self, wait_seconds: float | None = None) -> None:
        """Wait for this database's write queue (no-op if held, or if this thread queues).

        Raises WriteQueueTimeout when the queue stays taken for wait_seconds (default: the
        connection's bound), with nothing held.
        """
        if self._holder is not None or fcntl is None or not self.lock_path:
            return
        held = _held_by_thread()
        if held.count:
            # This thread already holds the queue through another connection (a nested
            # transaction on a second session): waiting here would wait for ourselves.
            # SQLite's busy timeout handles it, as it would without the queue.
            return
        bound = self.wait_seconds if wait_seconds is None else wait_seconds
        deadline = time.monotonic() + bound
        if not self.process_lock.acquire(timeout=max(bound, 0.0)):
            raise WriteQueueTimeout(bound)
        try:
            if not self._take_file_lock(deadline):
                raise WriteQueueTimeout(bound)
        except BaseException:
            self.process_lock.release()
            raise
        self._holder = held
        held.count += 1

    def _take_file_lock(self, deadline: float) -> bool:
        if self._lock_file is None:
            # 0600 like the database beside it (instance.open_private).
            self._lock_file = os.fdopen(open_private(self.lock_path, os.O_RDWR | os.O_APPEND),
                                        "a+b")
            # A connection the pool drops without close() would otherwise leave the file to
            # the garbage collector (an "unclosed file" warning, and a descriptor held).
            weakref.finalize(self, self._lock_file.close)
        try:
            # The common case, uncontended: one system call, as before the bound.
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        waiter = _FlockWaiter(self._lock_file)
        if waiter.wait(deadline - time.monotonic()):
            return True
        # The helper thread now owns the file and closes it, dropping the lock, if it ever
        # gets it; this connection opens a fresh description next time.
        self._lock_file = None
        return False

    def release_write_lock(self) -> None:
        """Leave the write queue if this connection holds it."""
        holder, self._holder = self._holder, None
        if holder is None:
            return
        holder.count -= 1
        try:
            if self._lock_file is not None and fcntl is not None:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        finally:
            self.process_lock.release()

    def commit(self) -> None:
        """Commit, then leave the write queue once the transaction is over."""
        try:
            super().commit()
        finally:
            self._release_if_ended()

    def rollback(self) -> None:
        """Roll back, then leave the write queue once the transaction is over."""
        try:
            super().rollback()
        finally:
            self._release_if_ended()

    def _release_if_ended(self) -> None:
        try:
            ended = not self.in_transaction
        except sqlite3.ProgrammingError:  # closed: no transaction can be left
            ended = True
        if ended:
            self.release_write_lock()

    def close(self) -> None:
        """Close the connection and its lock file (which drops any lock held)."""
        try:
            super().close()
        finally:
            self.release_write_lock()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None


class WriteQueueTimeout(OperationalError):
    """The SQLite write queue stayed taken past its bound (answered 503 with Retry-After)."""

    def __init__(self, waited_seconds: float) -> None:
        super().__init__(
            "BEGIN IMMEDIATE", None,
            sqlite3.OperationalError(
                f"write queue still taken after {waited_seconds:.1f} s (another writer holds "
                "it: a long import, a stuck command)"),
        )
        self.waited_seconds = waited_seconds


class _FlockWaiter:
    """Blocks in flock on a helper thread, so that the caller can wait with a timeout.

    flock has no timeout. Polling with LOCK_NB and sleeps would lose nearly every race to
    the holder's own next thread, which retries the instant the lock is free, while a poller
    only looks when it wakes: under load one process's writers would starve into 503s. A
    thread blocked in flock is woken by the kernel the moment the lock is let go, as before.
    It is started only when the lock is taken (the uncontended path never sees it).
    """

    def __init__(self, lock_file: IO[bytes]) -> None:
        self._file = lock_file
        self._state = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._error: OSError | None = None
        threading.Thread(target=self._run, name="sqlite-write-queue", daemon=True).start()

    def _run(self) -> None:
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        except OSError as exc:  # pragma: no cover - a closed or broken lock file
            self._error = exc
        with self._state:
            if self._abandoned:
                # Nobody waits for it any more: closing the description drops the lock.
                self._file.close()
                return
            self._done.set()

    def wait(self, timeout: float) -> bool:
        """Return True once the lock is held, False if timeout passed first (then abandoned)."""
        done = self._done.wait(max(timeout, 0.0))
        if not done:
            with self._state:
                done = self._done.is_set()
                self._abandoned = not done
        if done and self._error is not None:
            raise self._error
        return done


_thread_state = threading.local()


def _held_by_thread() -> Any:
    state = _thread_state
    if not hasattr(state, "count"):
        state.count = 0
    return state


def _write_queue_path(url: str) -> str | None:
    """Return the lock file path of a file-based SQLite URL (None for in-memory databases)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or \
            parsed.query.get("mode") == "memory":
        return None
    return os.path.abspath(database) + ".writelock"


def _database_path(url: str) -> str | None:
    """Return the file path of a file-based SQLite URL (None for in-memory databases)."""
    lock_path = _write_queue_path(url)
    return lock_path.removesuffix(".writelock") if lock_path is not None else None


@dataclass(frozen=True)
class PgLimits:
    """Bounds on every wait for PostgreSQL; past one, the request fails and answers 503."""

    pool_size: int = 5
    pool_timeout_ms: int = 3000
    lock_timeout_ms: int = 3000
    statement_timeout_ms: int = 10000
    connect_timeout_seconds: int = 3

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PgLimits:
        """Read the limits from the app's configuration (pool sized from the thread count)."""
        from .config import pool_size

        return cls(
            pool_size=pool_size(dict(config)),
            pool_timeout_ms=int(config["DB_POOL_TIMEOUT_MS"]),
            lock_timeout_ms=int(config["PG_LOCK_TIMEOUT_MS"]),
            statement_timeout_ms=int(config["PG_STATEMENT_TIMEOUT_MS"]),
            connect_timeout_seconds=int(config["PG_CONNECT_TIMEOUT_SECONDS"]),
        )


def make_engine(url: str, *, busy_timeout_ms: int = 15000, pg: PgLimits | None = None) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and explicit BEGIN."""
    if is_sqlite(url):
        connect_args: dict[str, Any] = {"timeout": busy_timeout_ms / 1000,
                                        "check_same_thread": False}
        lock_path = _write_queue_path(url)
        if lock_path is not None and fcntl is not None:
            connect_args["factory"] = type(
                "WriteQueueConnection", (WriteQueueConnection,),
                {"lock_path": lock_path, "process_lock": threading.Lock(),
                 "wait_seconds": busy_timeout_ms / 1000},
            )
        engine = create_engine(url, connect_args=connect_args, hide_parameters=True)
        _configure_sqlite(engine, busy_timeout_ms, _database_path(url))
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


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, path: str | None) -> None:
    @event.listens_for(engine, "do_connect")
    def _create_private(*_args: Any) -> None:
        # SQLite would create the file 0644 (umask permitting), and it gives the -wal and -shm
        # files the database file's mode; an empty 0600 file made first is a new database.
        if path is not None:
            try:
                touch_private(path)
            except OSError:
                pass  # a missing folder or a read-only file: SQLite's own error says it better

    # pysqlite's own transaction handling defers BEGIN and cannot take a write lock up front,
    # which turns concurrent writers into "database is locked"; we issue BEGIN ourselves.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: in WAL mode, NORMAL syncs only at checkpoints, so a power cut or an OS crash
        # can lose commits the kiosk was already told were stored (and has deleted). FULL
        # syncs the WAL at every commit; docs/BENCHMARKS.md gives what that costs.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        mode = options.get("sqlite_begin", "DEFERRED")
        dbapi_conn = conn.connection.dbapi_connection
        queue = mode == "IMMEDIATE" and isinstance(dbapi_conn, WriteQueueConnection)
        if queue:
            dbapi_conn.acquire_write_lock(options.get("write_wait_seconds"))
        try:
            conn.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            if queue:
                dbapi_conn.release_write_lock()
            raise


class Database:
    """Owns the engine and session factories of one app (created once, at configuration)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.url: str = ""
        self._is_sqlite = False
        self._read: sessionmaker[Session] | None = None
        self._write: sessionmaker[Session] | None = None
        self.write_bind: Engine | None = None

    def configure(self, url: str, *, busy_timeout_ms: int = 15000,
                  pg: PgLimits | None = None) -> None:
        """Create the engine and the session factories for url."""
        self.url = url
        self._is_sqlite = is_sqlite(url)
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms, pg=pg)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self.write_bind = self.engine
        if self._is_sqlite:
            self.write_bind = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._write = sessionmaker(self.write_bind, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """Tell whether this database is SQLite."""
        return self._is_sqlite

    def session(self, *, write: bool = True) -> Session:
        """Open a new session; write sessions take SQLite's write lock when they begin."""
        factory = self._write if write else self._read
        if factory is None:
            raise RuntimeError("database is not configured")
        return factory()

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


def get_db(app: Flask | None = None) -> Database:
    """Return the Database bound to app (default: the current app)."""
    database: Database = (app or current_app).extensions["onsite_db"]
    return database


def get_session() -> Session:
    """Return the request's session for writing, opening it on first use.

    Write methods get SQLite's write lock when the transaction begins (BEGIN IMMEDIATE). If
    the request's reads ran first (``get_read_session``), their read transaction ends here and
    the same session carries on with the write lock; what it loaded stays attached.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        write = request.method in WRITE_METHODS if has_request_context() else True
        session = g.db_session = get_db().session(write=write)
    elif g.get("db_read_phase"):
        _end_read_phase(session)
    return session


def get_read_session() -> Session:
    """Return the request's session for the reads that come before any write.

    On SQLite, a write request's transaction holds the database's only write lock from its
    first statement, so the checks that only read (device token, member reference) run here
    first, in a plain read transaction; ``get_session`` ends it before the write transaction
    begins (a read transaction that later writes could fail on SQLite without waiting, which
    is why writes begin IMMEDIATE). Only read through it. On PostgreSQL, for read methods, or
    once the write phase began, it is the request's session as it stands.
    """
    session: Session | None = g.get("db_session")
    if session is not None:
        return session
    db = get_db()
    if not (db.is_sqlite and has_request_context() and request.method in WRITE_METHODS):
        return get_session()
    g.db_read_phase = True
    session = g.db_session = db.session(write=False)
    return session


def _end_read_phase(session: Session) -> None:
    g.db_read_phase = False
    # Nothing was written, so this only ends the read transaction; with expire_on_commit off,
    # what it loaded stays usable. The next statement begins the write transaction.
    session.commit()
    session.bind = get_db().write_bind


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


def init_app(app: Flask) -> None:
    """Bind the database to the app and close the request session at teardown."""
    from .errors import database_unavailable

    db = Database()
    db.configure(
        app.config["DATABASE_URL"],
        busy_timeout_ms=int(app.config["SQLITE_BUSY_TIMEOUT_MS"]),
        pg=PgLimits.from_config(app.config),
    )
    app.extensions["onsite_db"] = db

    @app.after_request
    def _commit(response: Response) -> Response:
        # The request is the unit of work: commit before the answer leaves, so nothing we
        # acknowledged can be lost; a failed commit becomes an error answer, not a lie.
        session: Session | None = g.get("db_session")
        if session is not None:
            if response.status_code < 400:
                try:
                    session.commit()
                except DB_UNAVAILABLE as exc:
                    # An error raised here would skip the error handlers and become a 500.
                    rollback_quietly(session)
                    return database_unavailable(exc)
            else:
                rollback_quietly(session)
        return response

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        g.pop("db_read_phase", None)
        session: Session | None = g.pop("db_session", None)
        if session is None:
            return
        try:
            # After the answer was built: an error here would replace it with a 500.
            rollback_quietly(session)
        finally:
            session.close()
