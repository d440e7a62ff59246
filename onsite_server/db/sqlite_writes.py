"""SQLite writes: the write queue (one flock per database) and the engine's BEGIN handling.

**The write queue.** A writer takes the database's write lock file (``flock``) before
``BEGIN IMMEDIATE`` and lets it go when its transaction ends (``WriteQueueConnection``), so
writers of every thread and process are served in turn instead of sleeping in SQLite's busy
handler.

**Group commit** (``group_commit.GroupCommit``): the requests of one process that queue
for the lock together share one transaction and one COMMIT; its connection takes the lock with
a holder of its own (``acquire_write_lock(holder=...)``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ..instance import open_private, touch_private


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

    def acquire_write_lock(self, wait_seconds: float | None = None, holder: Any = None) -> None:
        """Wait for this database's write queue (no-op if held, or if this thread queues).

        Raises WriteQueueTimeout when the queue stays taken for wait_seconds (default: the
        connection's bound), with nothing held. ``holder`` (an object with a ``count``) owns
        the lock instead of the calling thread: a group's connection serves many threads.
        """
        if self._holder is not None or fcntl is None or not self.lock_path:
            return
        held = held_by_thread() if holder is None else holder
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


def held_by_thread() -> Any:
    state = _thread_state
    if not hasattr(state, "count"):
        state.count = 0
    return state


def write_queue_path(url: str) -> str | None:
    """Return the lock file path of a file-based SQLite URL (None for in-memory databases)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or \
            parsed.query.get("mode") == "memory":
        return None
    return os.path.abspath(database) + ".writelock"


def write_queue_factory(url: str, busy_timeout_ms: int) -> type[WriteQueueConnection] | None:
    """Return the connection class that queues on this database's lock file (None: no queue).

    A class per engine: its process lock and lock file are this database's alone.
    """
    lock_path = write_queue_path(url)
    if lock_path is None or fcntl is None:
        return None
    return type("WriteQueueConnection", (WriteQueueConnection,),
                {"lock_path": lock_path, "process_lock": threading.Lock(),
                 "wait_seconds": busy_timeout_ms / 1000})


def database_path(url: str) -> str | None:
    """Return the file path of a file-based SQLite URL (None for in-memory databases)."""
    lock_path = write_queue_path(url)
    return lock_path.removesuffix(".writelock") if lock_path is not None else None


def _savepoints_as_text(engine: Engine) -> None:
    """Send SAVEPOINT, RELEASE and ROLLBACK TO as plain SQL text on this engine.

    Every request after the first of a group commit works in a SAVEPOINT of its own
    (``group_commit``), so each runs SAVEPOINT and RELEASE (or ROLLBACK TO). SQLAlchemy
    builds and compiles a new statement object for each of them (savepoint statements are
    not cached): in a profile of concurrent writes that was about 8% of a request's Python.
    The names are SQLAlchemy's own (``sa_savepoint_N``), quoted by the dialect as before.
    """
    dialect = engine.dialect
    quote = dialect.identifier_preparer.quote

    def do_savepoint(connection: Any, name: str) -> None:
        connection.exec_driver_sql(f"SAVEPOINT {quote(name)}")

    def do_release_savepoint(connection: Any, name: str) -> None:
        connection.exec_driver_sql(f"RELEASE SAVEPOINT {quote(name)}")

    def do_rollback_to_savepoint(connection: Any, name: str) -> None:
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {quote(name)}")

    # This engine's dialect object only (each engine has its own).
    dialect.do_savepoint = do_savepoint  # type: ignore[method-assign]
    dialect.do_release_savepoint = do_release_savepoint  # type: ignore[method-assign]
    dialect.do_rollback_to_savepoint = do_rollback_to_savepoint  # type: ignore[method-assign]


def configure_sqlite(engine: Engine, busy_timeout_ms: int, path: str | None) -> None:
    """Give a SQLite engine private files, WAL, FULL sync, foreign keys and our own BEGIN."""
    _savepoints_as_text(engine)

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
        if mode == "NONE":
            # A request's read phase (db.flask.get_read_session): each of its few SELECTs is
            # its own implicit transaction, so no BEGIN and no COMMIT are sent for it.
            return
        dbapi_conn = conn.connection.dbapi_connection
        queue = mode == "IMMEDIATE" and isinstance(dbapi_conn, WriteQueueConnection)
        if queue:
            dbapi_conn.acquire_write_lock(options.get("write_wait_seconds"),
                                          options.get("write_lock_holder"))
        try:
            conn.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            if queue:
                dbapi_conn.release_write_lock()
            raise
