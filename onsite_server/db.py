"""Database engine, sessions and the request-scoped unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_sqlite(url: str | URL) -> bool:
    """Tell whether a SQLAlchemy URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, busy_timeout_ms: int = 15000, pool_size: int = 10) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and explicit BEGIN."""
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take a write lock up front,
    # which turns concurrent writers into "database is locked"; we issue BEGIN ourselves.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """Owns the engine and session factories of one app (created once, at configuration)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.url: str = ""
        self._read: sessionmaker[Session] | None = None
        self._write: sessionmaker[Session] | None = None

    def configure(self, url: str, *, busy_timeout_ms: int = 15000, pool_size: int = 10) -> None:
        """Create the engine and the session factories for url."""
        self.url = url
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        write_bind = self.engine
        if is_sqlite(url):
            write_bind = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._write = sessionmaker(write_bind, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """Tell whether this database is SQLite."""
        return is_sqlite(self.url)

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
            session.rollback()
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
    """Return the request's session, opening it on first use (write lock for write methods)."""
    if "db_session" not in g:
        write = request.method in WRITE_METHODS if has_request_context() else True
        g.db_session = get_db().session(write=write)
    session: Session = g.db_session
    return session


def init_app(app: Flask) -> None:
    """Bind the database to the app and close the request session at teardown."""
    db = Database()
    db.configure(
        app.config["DATABASE_URL"],
        busy_timeout_ms=int(app.config["SQLITE_BUSY_TIMEOUT_MS"]),
        pool_size=int(app.config["DB_POOL_SIZE"]),
    )
    app.extensions["onsite_db"] = db

    @app.after_request
    def _commit(response: Response) -> Response:
        # The request is the unit of work: commit before the answer leaves, so nothing we
        # acknowledged can be lost; a failed commit becomes an error answer, not a lie.
        session: Session | None = g.get("db_session")
        if session is not None:
            if response.status_code < 400:
                session.commit()
            else:
                session.rollback()
        return response

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is None:
            return
        try:
            session.rollback()
        finally:
            session.close()
