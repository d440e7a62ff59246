"""Statements built once that SQLAlchemy would otherwise compile on every execution."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, text

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
