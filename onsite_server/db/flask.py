"""The database in a Flask app: one Database per app, and the request as the unit of work."""

from __future__ import annotations

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy.orm import Session

# The module, not its names: errors imports db.engines, so this import may run while errors
# is itself still importing (the names are read at request time).
from .. import errors
from ..app_settings import of as settings_of
from .engines import DB_UNAVAILABLE, Database, PgLimits, RequestSession, rollback_quietly

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_db(app: Flask | None = None) -> Database:
    """Return the Database bound to app (default: the current app)."""
    database: Database = (app or current_app).extensions["onsite_db"]
    return database


def get_session() -> Session:
    """Return the request's session for writing, opening it on first use.

    Write methods get SQLite's write lock when the transaction begins (BEGIN IMMEDIATE), on a
    SQLite file as a turn in the process's group commit (``group_commit.GroupCommit``: the
    writes of requests that queue together share one COMMIT, each after the first in a
    SAVEPOINT of its own, and each is answered after that COMMIT). If the request's reads ran first
    (``get_read_session``), their read transaction ends here and the same session carries on
    with the write lock; what it loaded stays attached.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        write = request.method in WRITE_METHODS if has_request_context() else True
        session = g.db_session = get_db().request_session(write=write)
    elif g.get("db_read_phase"):
        _end_read_phase(session)
    return session


def get_read_session() -> Session:
    """Return the request's session for the reads that come before any write.

    On SQLite, a write request's transaction holds the database's only write lock from its
    first statement, so the checks that only read (device token, member reference) run here
    first, each SELECT in an implicit transaction of its own (no BEGIN, no COMMIT sent);
    ``get_session`` ends the read phase before the write transaction begins (a read
    transaction that later writes could fail on SQLite without waiting, which is why writes
    begin IMMEDIATE). Only read through it. On PostgreSQL, for read methods, or
    once the write phase began, it is the request's session as it stands.
    """
    session: Session | None = g.get("db_session")
    if session is not None:
        return session
    db = get_db()
    if not (db.is_sqlite and has_request_context() and request.method in WRITE_METHODS):
        return get_session()
    g.db_read_phase = True
    session = g.db_session = db.read_phase_session()
    return session


def _end_read_phase(session: Session) -> None:
    g.db_read_phase = False
    # Nothing was written, so this only ends the read transaction; with expire_on_commit off,
    # what it loaded stays usable. The next statement begins the write transaction.
    session.commit()
    assert isinstance(session, RequestSession)
    get_db().write_in_group(session)


def _end_turn(session: Session, keep: bool) -> None:
    # The request's group commit turn, if it holds one (its session's transaction is over).
    if isinstance(session, RequestSession):
        session.end_turn(keep)


def _commit_durably(session: Session) -> None:
    """Commit the request's work and leave its group commit turn; on failure keep nothing."""
    try:
        session.commit()
        # In a group commit, this returns once the group's COMMIT is durable.
        _end_turn(session, keep=True)
    except BaseException:
        rollback_quietly(session)
        _end_turn(session, keep=False)
        raise


def keep_on_refusal() -> None:
    """Keep what this request wrote so far even if it is answered with a refusal (4xx).

    For writes that must stand whatever the answer: a failed pairing that counts toward its
    limit, a crisis read from a body that is refused. The boundary commits them with the
    answer, as it commits any request's work, so no view commits; a 5xx still rolls back.
    """
    g.db_keep_on_refusal = True


def commit_request() -> None:
    """Commit the request's work now, before its answer is built; return once it is durable.

    For a view whose answer is decided once its work is stored (a keyed write: the answer is
    the one stored for its key). On SQLite the request's group commit turn, which every other
    write of the process waits for, then ends before the answer is serialised and the
    after-request hooks run, not after (issue 20 P2). The answer still leaves only after the
    COMMIT that holds the work is durable. A commit that fails raises (answered 503 like any
    refusal of the database) with nothing kept; nothing can be written through the request's
    session afterwards.
    """
    session = g.pop("db_session", None)
    g.pop("db_read_phase", None)
    if session is None:
        return
    try:
        _commit_durably(session)
    finally:
        session.close()


def release_request_session() -> None:
    """End the request's transaction and give its connection back before a service's own.

    For a service that writes in transactions of its own (a roster import's chunks, an
    identify attempt that must count whatever the answer): holding the request's connection
    meanwhile would take a second pooled connection for one request thread. Nothing written
    through the request's session is kept, so call it before any write there.
    """
    session = g.pop("db_session", None)
    g.pop("db_read_phase", None)
    if session is not None:
        # close() ends the transaction without expiring what was loaded (rollback() would):
        # the kiosk read by the token check stays readable, detached.
        try:
            session.close()
        finally:
            _end_turn(session, keep=False)


def init_app(app: Flask) -> None:
    """Bind the database to the app and close the request session at teardown."""
    db = Database()
    settings = settings_of(app)
    db.configure(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                 pg=PgLimits.from_settings(settings))
    app.extensions["onsite_db"] = db

    @app.after_request
    def _commit(response: Response) -> Response:
        # The request is the unit of work: commit before the answer leaves, so nothing we
        # acknowledged can be lost; a failed commit becomes an error answer, not a lie.
        session: Session | None = g.get("db_session")
        if session is not None:
            status = response.status_code
            if status < 400 or (status < 500 and g.get("db_keep_on_refusal")):
                try:
                    _commit_durably(session)
                except DB_UNAVAILABLE as exc:
                    # An error raised here would skip the error handlers and become a 500.
                    return errors.database_unavailable(exc)
            else:
                rollback_quietly(session)
                _end_turn(session, keep=False)
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
            try:
                session.close()
            finally:
                _end_turn(session, keep=False)
