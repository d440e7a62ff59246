"""Statements built once that SQLAlchemy would otherwise compile on every execution, and
statements compiled once that the driver runs directly (``Prepared``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Dialect, Insert, Table, bindparam, text
from sqlalchemy.orm import Session

from ..models import AuditLog

# An audit entry written by a statement rather than through the unit of work (seven services
# had each built this same statement).
INSERT_AUDIT: Insert = cast(Table, AuditLog.__table__).insert()


def insert_ignoring_conflicts(table: Table, names: tuple[str, ...], conflict: str = "",
                              rows: int = 1) -> Any:
    """``INSERT ... ON CONFLICT [(conflict)] DO NOTHING RETURNING id`` as a cacheable statement.

    The same text on SQLite (3.35 on) and PostgreSQL, each parameter typed by its column;
    without ``conflict``, any unique index refuses the row. SQLAlchemy's own
    ``on_conflict_do_nothing()`` statements carry no cache key (2.0.x:
    ``_generate_cache_key()`` is None), so each execution compiled them anew, which cost
    more than the database's work for the statement. With ``rows`` > 1 the statement inserts
    that many rows, each refused or not on its own; row i's parameters end in ``_i``.
    """
    target = f' ("{conflict}")' if conflict else ""
    columns = ", ".join(f'"{name}"' for name in names)
    keys = [[name if rows == 1 else f"{name}_{i}" for name in names] for i in range(rows)]
    values = ", ".join("(" + ", ".join(f":{key}" for key in row) + ")" for row in keys)
    return text(
        f'INSERT INTO "{table.name}" ({columns}) VALUES {values} '
        f"ON CONFLICT{target} DO NOTHING RETURNING id"
    ).bindparams(*(bindparam(key, type_=table.c[name].type) for row in keys
                   for key, name in zip(row, names, strict=True))).columns(table.c.id)


class _Compiled:
    """One dialect's SQL text of a Prepared statement, and how to pass its parameters."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        # What the driver cannot be handed as-is is refused here, once, not met at run time:
        # expanding IN lists, literal-rendered values, names the dialect escapes, and
        # column defaults that SQLAlchemy would compute per execution (a callable's).
        prefetch = [*(getattr(compiled, "insert_prefetch", None) or ()),
                    *(getattr(compiled, "update_prefetch", None) or ())]
        if compiled.post_compile_params or compiled.literal_execute_params or \
                compiled.escaped_bind_names or not all(
                    column.default is not None and column.default.is_scalar
                    for column in prefetch):
            raise ValueError(f"cannot prepare: {compiled.string[:80]!r}")
        self.sql: str = compiled.string
        self.order: tuple[str, ...] | None = tuple(compiled.positiontup) \
            if compiled.positional else None
        self.defaults: dict[str, Any] = {}
        self.required: frozenset[str] = frozenset(
            name for bind, name in compiled.bind_names.items() if bind.required)
        processors: dict[str, Callable[[Any], Any]] = {}
        for bind, name in compiled.bind_names.items():
            if not bind.required:
                self.defaults[name] = bind.effective_value
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        for column in prefetch:  # a column's scalar default, as SQLAlchemy would fill it in
            self.defaults[column.key] = column.default.arg
        self.processors = tuple(processors.items())


class Prepared:
    """A Core statement compiled once per dialect and run by the driver's own execute.

    **Why** (issue 20 P2, P7). Running a cached Core statement through a session costs about
    60-80 µs of Python a time on these machines (the cache key, the parameters built and
    processed generically, the execution context), against 2-10 µs for the driver's own
    ``execute``: on the door's scan and a kiosk's booking, whose few statements are each
    already cheap in the database, that was the largest part of the request's CPU. Here the
    SQL text, the order of its parameters and each one's type processing (UTC datetimes,
    JSON) are worked out once per dialect, and each run hands the driver the processed
    values (``Connection.exec_driver_sql``: the engine's events, the session's transaction
    and the group commit's turn are the same as for ``session.execute``).

    For statements whose results need no type processing: UPDATEs and INSERTs (their row
    count, ``RETURNING`` an integer id) and SELECTs of a few integers and strings. Not for
    a SELECT of many columns of a plain table: there the driver's row description, read
    anew on every run, costs what compiling once saves (measured: a 16-column SELECT 40 µs
    this way, 46 µs as a cached Core statement). Every parameter of the statement must be
    given (``KeyError`` otherwise), except values built into it.
    """

    def __init__(self, statement: Any, *, flush: bool = False) -> None:
        self.statement = statement
        # As session.execute would for a statement naming mapped classes (not bare tables):
        # the session's pending changes are written first, so the statement sees them.
        self.flush = flush
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _Compiled(self.statement, dialect)
        return compiled

    def run(self, session: Session | Connection, params: dict[str, Any]) -> CursorResult[Any]:
        """Execute in the session's transaction (its connection) with these parameters."""
        if isinstance(session, Session):
            if self.flush and session.autoflush:
                session.flush()
            connection = session.connection()
        else:
            connection = session
        compiled = self._compiled(connection.dialect)
        missing = compiled.required.difference(params)
        if missing:
            raise KeyError(f"missing parameters: {sorted(missing)}")
        values = {**compiled.defaults, **params} if compiled.defaults else dict(params)
        for name, process in compiled.processors:
            values[name] = process(values[name])
        if compiled.order is None:
            return connection.exec_driver_sql(compiled.sql, values)
        return connection.exec_driver_sql(compiled.sql, tuple(values[n] for n in compiled.order))


_AUDIT = cast(Table, AuditLog.__table__)
# A booking's audit entry (the door's check-in, a kiosk's booking): INSERT_AUDIT with its
# columns fixed, run by the driver (``Prepared``); ``note`` stays NULL as before.
AUDIT_ROW = Prepared(_AUDIT.insert().values(
    {name: bindparam(name, type_=_AUDIT.c[name].type)
     for name in ("at", "actor", "action", "subject", "site_id", "detail")}))
