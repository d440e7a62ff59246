"""The kiosk's local outbox: what waits for the server, encrypted at rest, crisis first.

One SQLite file under the kiosk's data directory. Every payload is sealed with AES-256-GCM
under a key kept in its own file in a separate directory (0700 directory, 0600 file), so a
copy of the data directory alone reveals no member's id, birth date or answers. The row's
idempotency key and kind are the AEAD's associated data: a sealed payload cannot be moved to
another row and still open. What stays in clear is only what ordering and acknowledging need:
the key (a random UUID), the kind, a lane (0 for a crisis, 1 otherwise) and the timestamps.

Rows are deleted as soon as the server acknowledges them. Writes commit with
``synchronous=FULL`` (WAL): once ``put`` returns, a power cut or ``kill -9`` loses nothing.
The roster is never stored here; an identity typed while offline is kept only sealed, beside
the items it belongs to, until the server has matched it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

Kind = Literal["submission", "consent", "crisis_alert", "identity"]
KINDS: tuple[str, ...] = ("submission", "consent", "crisis_alert", "identity")
# Kinds the sync worker sends; an "identity" row is a sealed, offline-typed id that items
# copy from, never sent on its own.
SENDABLE: tuple[str, ...] = ("submission", "consent", "crisis_alert")
CRISIS_LANE, NORMAL_LANE = 0, 1
KEY_BYTES = 32
NONCE_BYTES = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    lane INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (dead, lane, seq);
"""


# SQLite's primary codes for a file that is not (or no longer) a sound database.
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
# A walk from seq 1 ends after this many seqs in a row hold no row (deletes leave gaps).
_SALVAGE_MISSES = 10_000


class _Damaged(Exception):
    """The outbox file is not, or no longer, a sound SQLite database."""


def _readable_rows(path: Path) -> list[tuple[Any, ...]]:
    """The outbox rows a damaged file still yields, in order: each looked up by its own seq.

    A truncated file's header still counts the pages it lost, and SQLite then reads nothing
    of it: a copy whose header counts the pages present is read instead. A scan stops at the
    first damaged page, so each row is looked up on its own, by the seqs the ``outbox_order``
    index still lists and by a walk from 1 (the index may be what was lost).
    """
    rows: list[tuple[Any, ...]] = []
    copy = path.with_name(path.name + ".salvage")
    data = bytearray(path.read_bytes()) if path.exists() else bytearray()
    if data[:16] == b"SQLite format 3\x00":
        size = int.from_bytes(data[16:18], "big")
        page = 65536 if size == 1 else size
        if page >= 512:
            data[28:32] = (len(data) // page).to_bytes(4, "big")
            data[18:20] = b"\x01\x01"  # a rollback-journal file: read without a -wal or -shm
            data = data[:len(data) // page * page]
    copy.write_bytes(bytes(data))
    try:
        db = sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True)
        try:
            for seq in _seqs(db):
                try:
                    found = db.execute(
                        "SELECT key, kind, lane, nonce, sealed, created_at, attempts, dead, "
                        "last_error FROM outbox WHERE seq = ?", (seq,)).fetchone()
                except sqlite3.DatabaseError:
                    found = None
                if found is not None:
                    rows.append(tuple(found))
        finally:
            db.close()
    except sqlite3.Error:
        pass  # nothing of it can be read: the rows read so far are what is saved
    finally:
        copy.unlink(missing_ok=True)
    return rows


def _seqs(db: sqlite3.Connection) -> list[int]:
    """The seqs worth looking up in a damaged outbox, in order."""
    listed: set[int] = set()
    try:
        for (seq,) in db.execute("SELECT seq FROM outbox INDEXED BY outbox_order"):
            listed.add(int(seq))
    except sqlite3.DatabaseError:
        pass
    seq, missed = 0, 0
    while missed < _SALVAGE_MISSES:
        seq += 1
        try:
            hit = db.execute("SELECT 1 FROM outbox WHERE seq = ?", (seq,)).fetchone()
        except sqlite3.DatabaseError:
            hit = None
        if hit is None:
            missed += 1
        else:
            missed = 0
            listed.add(seq)
    return sorted(listed)


class OutboxKeyError(RuntimeError):
    """The outbox key is missing or wrong for rows already written: they cannot be opened."""


@dataclass(frozen=True)
class Row:
    """One outbox row, opened: its key, kind, lane and the payload the server will get."""

    seq: int
    key: str
    kind: str
    lane: int
    payload: dict[str, Any]
    created_at: str
    attempts: int
    # The payload's compact JSON as sealed, in bytes (0: not known): what it adds to a request.
    json_bytes: int = 0

    @property
    def crisis(self) -> bool:
        """True when the row travels in the crisis lane."""
        return self.lane == CRISIS_LANE


@dataclass(frozen=True)
class Entry:
    """A row to write: the idempotency key, kind, payload and whether it is a crisis."""

    key: str
    kind: Kind
    payload: Mapping[str, Any]
    crisis: bool = False


def load_or_create_key(path: Path) -> bytes:
    """Return the 32-byte key at path, creating it (0600, in a 0700 directory) if absent."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(path.parent, 0o700)
    except PermissionError:
        pass  # a shared, admin-made directory: the file's own mode still protects the key
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise OutboxKeyError(f"{path}: not a {KEY_BYTES}-byte outbox key") from None
        return key
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


class Outbox:
    """The encrypted, durable queue of everything the kiosk still owes the server."""

    def __init__(self, db_path: Path, key_path: Path) -> None:
        db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if key_path.resolve().is_relative_to(db_path.resolve().parent):
            # A copy of the data directory must not carry the key that opens it.
            raise ValueError("key_path: the outbox key must be outside the data directory")
        fresh_db = not db_path.exists()
        if not fresh_db and not key_path.exists():
            # A new key would make every waiting row unreadable: refuse instead of losing them.
            raise OutboxKeyError(f"{key_path}: the outbox key is missing; the rows in "
                                 f"{db_path} cannot be opened without it")
        self._aead = AESGCM(load_or_create_key(key_path))
        self.path = db_path
        self._lock = threading.Lock()
        # What start-up found wrong with the file and did about it, for the admin screen.
        self.recovered: str | None = None
        # Identities this process sealed, by key: when, on the monotonic clock. The wall clock
        # of a kiosk that booted offline jumps hours when NTP first reaches it, and a visit's
        # identity then looked expired in the middle of the visit.
        self._identities: dict[str, float] = {}
        try:
            self._db = self._connect(db_path)
        except _Damaged as exc:
            self._db = self._recover(db_path, str(exc))
        self._check_key()

    @staticmethod
    def _connect(db_path: Path) -> sqlite3.Connection:
        # One connection shared by the UI thread and the sync worker, serialised by _lock.
        db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            # Every page read once (milliseconds for the few rows an outbox holds): damage
            # found now, not at the first read of a row behind it, mid-visit.
            (verdict,) = db.execute("PRAGMA quick_check(1)").fetchone()
        except sqlite3.DatabaseError as exc:
            db.close()
            if exc.sqlite_errorcode & 0xFF in _DAMAGED:
                raise _Damaged(str(exc)) from exc
            raise  # a full disk or a lock: the file itself is sound, so keep it as it is
        if verdict != "ok":
            db.close()
            raise _Damaged(str(verdict))
        os.chmod(db_path, 0o600)
        return db

    def _recover(self, db_path: Path, damage: str) -> sqlite3.Connection:
        """Set a damaged file aside, start a fresh one and carry over every row still readable.

        A truncated or overwritten outbox made the app fail at every start (a crash loop that
        left the kiosk unusable, crises included). The damaged file is kept beside, for
        support to recover more from; rows that no longer open with the key are not carried.
        """
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm", "-journal"):
            part = db_path.with_name(db_path.name + suffix)
            if part.exists():
                part.replace(kept.with_name(kept.name + suffix))
        rows = _readable_rows(kept)
        db = self._connect(db_path)
        carried = []
        for row in rows:
            try:
                self._open(row[0], row[1], row[3], row[4])
            except (OutboxKeyError, ValueError):
                continue
            carried.append(row)
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT OR IGNORE INTO outbox (key, kind, lane, nonce, sealed, created_at, "
                       "attempts, dead, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", carried)
        db.execute("COMMIT")
        self.recovered = (f"the outbox file was damaged ({' '.join(damage.split())}); "
                          f"{len(carried)} rows were recovered, the damaged file is kept as "
                          f"{kept.name}")
        return db

    # ------------------------------------------------------------------ sealing

    def _seal(self, key: str, kind: str, payload: Mapping[str, Any]) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return nonce, self._aead.encrypt(nonce, plain, f"{kind}\n{key}".encode())

    def _open(self, key: str, kind: str, nonce: bytes, sealed: bytes) -> dict[str, Any]:
        return self._open_sized(key, kind, nonce, sealed)[0]

    def _open_sized(self, key: str, kind: str, nonce: bytes, sealed: bytes
                    ) -> tuple[dict[str, Any], int]:
        """The payload, and the length of its compact JSON (as sealed)."""
        try:
            plain = self._aead.decrypt(nonce, sealed, f"{kind}\n{key}".encode())
        except InvalidTag as exc:
            raise OutboxKeyError(f"outbox row {key}: cannot be opened with this key") from exc
        data: dict[str, Any] = json.loads(plain.decode("utf-8"))
        return data, len(plain)

    def _check_key(self) -> None:
        """Fail at start, not at the first send, when the key does not open the rows."""
        with self._lock:
            first = self._db.execute(
                "SELECT key, kind, nonce, sealed FROM outbox ORDER BY seq LIMIT 1").fetchone()
        if first is not None:
            self._open(*first)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ writing

    def put(self, key: str, kind: Kind, payload: Mapping[str, Any], *,
            crisis: bool = False) -> None:
        """Queue one payload under its idempotency key; durable when this returns."""
        self.put_many([Entry(key, kind, payload, crisis)])

    def put_many(self, entries: Iterable[Entry]) -> None:
        """Queue several payloads in one transaction: all of a visit's items, or none.

        A key already queued is left as it is (a retried write must not duplicate it).
        """
        now = datetime.now(UTC).isoformat()
        rows = []
        for e in entries:
            if e.kind not in KINDS:
                raise ValueError(f"kind: must be one of {', '.join(KINDS)}, got {e.kind!r}")
            nonce, sealed = self._seal(e.key, e.kind, e.payload)
            rows.append((e.key, e.kind, CRISIS_LANE if e.crisis else NORMAL_LANE, nonce,
                         sealed, now))
        with self._write() as db:
            db.executemany("INSERT OR IGNORE INTO outbox (key, kind, lane, nonce, sealed, "
                           "created_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
            written = time.monotonic()
            for row in rows:
                if row[1] == "identity":
                    self._identities.setdefault(row[0], written)

    # ------------------------------------------------------------------ reading

    def pending(self, limit: int = 100, kinds: Sequence[str] = SENDABLE, *,
                opened: Mapping[str, Row] | None = None) -> list[Row]:
        """The next rows to send, crisis lane first, then in the order they were written.

        ``opened``: rows this caller opened before, by key; a row found there is not opened
        again (a drain reads the rows still in flight with each read; rows never change).
        """
        marks = ",".join("?" * len(kinds))
        with self._lock:
            found = self._db.execute(
                f"SELECT seq, key, kind, lane, nonce, sealed, created_at, attempts FROM outbox "
                f"WHERE dead = 0 AND kind IN ({marks}) ORDER BY lane, seq LIMIT ?",
                (*kinds, limit)).fetchall()
        known = opened or {}
        return [known.get(found_row[1]) or self._row(*found_row) for found_row in found]

    def _row(self, seq: int, key: str, kind: str, lane: int, nonce: bytes, sealed: bytes,
             created: str, tries: int) -> Row:
        payload, size = self._open_sized(key, kind, nonce, sealed)
        return Row(seq, key, kind, lane, payload, created, tries, size)

    def get(self, key: str) -> Row | None:
        """The row with this key, opened, or None."""
        with self._lock:
            found = self._db.execute(
                "SELECT seq, key, kind, lane, nonce, sealed, created_at, attempts FROM outbox "
                "WHERE key = ?", (key,)).fetchone()
        if found is None:
            return None
        return self._row(*found)

    def depth(self) -> int:
        """How many rows still wait to be sent (dead letters and identities not counted)."""
        marks = ",".join("?" * len(SENDABLE))
        with self._lock:
            (n,) = self._db.execute(
                f"SELECT count(*) FROM outbox WHERE dead = 0 AND kind IN ({marks})",
                SENDABLE).fetchone()
        return int(n)

    def dead_count(self) -> int:
        """How many rows the server refused for good (kept sealed for an admin to see)."""
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM outbox WHERE dead = 1").fetchone()
        return int(n)

    def keys(self) -> list[str]:
        """Every key in the outbox, in sending order (tests and the admin screen)."""
        with self._lock:
            return [k for (k,) in self._db.execute(
                "SELECT key FROM outbox ORDER BY dead, lane, seq").fetchall()]

    # ------------------------------------------------------------------ outcomes

    def ack(self, keys: Iterable[str]) -> int:
        """Delete rows the server acknowledged; return how many were deleted."""
        batch = [(k,) for k in keys]
        if not batch:
            return 0
        with self._write() as db:
            before = db.total_changes
            db.executemany("DELETE FROM outbox WHERE key = ?", batch)
            return int(db.total_changes - before)

    def failed(self, keys: Iterable[str], error: str) -> None:
        """Count one more failed attempt on rows that will be tried again."""
        with self._write() as db:
            db.executemany("UPDATE outbox SET attempts = attempts + 1, last_error = ? "
                           "WHERE key = ?", [(error[:500], k) for k in keys])

    def bury(self, key: str, error: str) -> None:
        """Set a row aside for good: the server refused it and a resend would change nothing."""
        with self._write() as db:
            db.execute("UPDATE outbox SET dead = 1, attempts = attempts + 1, last_error = ? "
                       "WHERE key = ?", (error[:500], key))

    def forget_identities(self, older_than: timedelta) -> int:
        """Delete offline-typed identities no visit can still use (the hard cap has passed).

        Age is read on the monotonic clock, never the wall clock, which a kiosk's time sync
        may move by hours; an identity an earlier run sealed is no visit's any more (a visit
        lives in memory) and goes at once.
        """
        cutoff = time.monotonic() - older_than.total_seconds()
        with self._write() as db:
            stored = [key for (key,) in db.execute(
                "SELECT key FROM outbox WHERE kind = 'identity'").fetchall()]
            stale = [(key,) for key in stored
                     if self._identities.get(key, float("-inf")) < cutoff]
            before = db.total_changes
            db.executemany("DELETE FROM outbox WHERE kind = 'identity' AND key = ?", stale)
            for (key,) in stale:
                self._identities.pop(key, None)
            return int(db.total_changes - before)

    def close(self) -> None:
        """Close the database (a checkpoint keeps the WAL from growing across restarts)."""
        with self._lock:
            self._db.close()
