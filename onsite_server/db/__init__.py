"""Database engine, sessions and the request-scoped unit of work.

``engines`` (engines, the Database that owns them, what a refusal means), ``sqlite_writes``
(SQLite's write queue and BEGIN handling), ``group_commit`` (requests of one process sharing
SQLite COMMITs) and ``flask`` (the Database bound to an app, the
request's sessions); the package re-exports their public names.
"""

from __future__ import annotations

from .engines import (
    DB_UNAVAILABLE,
    Database,
    PgLimits,
    database_problem,
    is_sqlite,
    make_engine,
    rollback_quietly,
)
from .flask import (
    WRITE_METHODS,
    commit_request,
    get_db,
    get_read_session,
    get_session,
    init_app,
    keep_on_refusal,
    release_request_session,
)
from .group_commit import GroupCommit, GroupCommitFailed
from .sqlite_writes import WriteQueueConnection, WriteQueueTimeout

__all__ = [
    "DB_UNAVAILABLE",
    "WRITE_METHODS",
    "Database",
    "GroupCommit",
    "GroupCommitFailed",
    "PgLimits",
    "WriteQueueConnection",
    "WriteQueueTimeout",
    "commit_request",
    "database_problem",
    "get_db",
    "get_read_session",
    "get_session",
    "init_app",
    "is_sqlite",
    "keep_on_refusal",
    "make_engine",
    "release_request_session",
    "rollback_quietly",
]
