"""SQLAlchemy's compiled SQL, shared by every engine a test process builds alike.

Every server test builds an app, and each app a new engine. SQLAlchemy keeps the SQL it
compiles in a cache of the engine's own (and, for the ORM's flushes, in a cache of each
mapper), keyed by the statement and by the engine's dialect object. A new engine has a new
dialect, so each test compiled every statement it ran afresh: about a fifth of an in-process
server test's CPU (docs/BENCHMARKS.md, "Session 11: the tests' CPU").

Here the engines of this process and the mappers use one cache whose keys name the dialect by
what its compiled SQL depends on (its class and its settings) instead of by the object, so an
engine configured like an earlier one reuses that one's compiled statements. Engines set up
differently (another backend, another server version, another JSON encoder) never share.
Nothing else is shared: each engine keeps its own dialect, pool and connections.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.orm import Mapper
from sqlalchemy.util import LRUCache

_PLAIN = (str, int, float, bool, bytes, type(None))
_signatures: weakref.WeakKeyDictionary[Dialect, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def _plain(value: Any) -> bool:
    """Tell whether value is data that two dialects can hold equal copies of."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, tuple | frozenset):
        return all(_plain(v) for v in value)
    return False


def dialect_signature(dialect: Dialect) -> tuple[Any, ...]:
    """What a dialect's compiled SQL depends on: its class, its data, the functions it uses.

    Its own helper objects (the identifier preparer, the type compiler) are made from these
    by the dialect's class; a function is signed by its code, any other callable by itself.
    A dialect is signed once it has met its database (the server's version is known), and
    the signature kept for its life.
    """
    known = _signatures.get(dialect)
    if known is not None:
        return known
    parts: list[Any] = [type(dialect)]
    for name, value in sorted(vars(dialect).items()):
        if _plain(value):
            parts.append((name, value))
        elif isinstance(value, types.FunctionType):
            # By its code: the functions one engine set-up gives each dialect (our SQLite
            # engines' savepoint statements) are closures of one definition over that dialect.
            parts.append((name, value.__code__))
        elif callable(value) or isinstance(value, types.ModuleType):
            parts.append((name, id(value)))  # a JSON encoder object, the DB-API module
    signature = tuple(parts)
    if getattr(dialect, "server_version_info", None) is not None:
        _signatures[dialect] = signature
    return signature


class SharedCompiledCache:
    """A compiled-SQL cache that engines configured alike share (see the module's text)."""

    def __init__(self, size: int = 20_000) -> None:
        self._lru: LRUCache[Any, Any] = LRUCache(size)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(key: tuple[Any, ...]) -> tuple[Any, ...]:
        # SQLAlchemy's key is (dialect, statement key, column keys, translate map?, many?).
        return (dialect_signature(key[0]), *key[1:])

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        """The compiled form of key's statement for a dialect like key's, if compiled before."""
        found = self._lru.get(self._key(key))
        if found is None:
            self.misses += 1
            return default
        self.hits += 1
        return found

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        """Keep a freshly compiled statement for every engine configured alike."""
        self._lru[self._key(key)] = value


SHARED = SharedCompiledCache()
_original: Callable[..., Engine] | None = None


def _make_engine_sharing(*args: Any, **kwargs: Any) -> Engine:
    """The app's own make_engine, whose engine then uses the process's shared cache."""
    assert _original is not None
    engine = _original(*args, **kwargs)
    if engine._compiled_cache is not None:
        engine._compiled_cache = SHARED  # type: ignore[assignment]
    return engine


def share_compiled_sql() -> None:
    """Make the engines this process builds and the ORM's mappers share compiled SQL."""
    global _original
    from onsite_server.db import engines

    if _original is None:
        _original = engines.make_engine
        engines.make_engine = _make_engine_sharing
        # Mapper._compiled_cache is a memoized attribute, which a mapper's reconfiguration
        # forgets (SQLAlchemy resets a mapper's memoized values when mappers are configured
        # again): a property cannot be forgotten, so every mapper's flushes use the shared one.
        shared = property(_shared_for_flushes)
        Mapper._compiled_cache = shared  # type: ignore[assignment,method-assign]


def _shared_for_flushes(mapper: Mapper[Any]) -> SharedCompiledCache:
    """The cache a mapper's flush statements (INSERT, UPDATE, DELETE) are compiled into."""
    return SHARED
