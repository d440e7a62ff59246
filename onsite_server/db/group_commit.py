"""SQLite group commit: requests that queue for the write lock together share one COMMIT.

**Why** (issue 20). With ``synchronous=FULL`` each COMMIT syncs the WAL (one ``fsync``, 4-6 ms
on the site's disk) under the write lock, so requests that queued for the lock together paid one
sync each, one after another. Within one server process they now share one transaction and one
COMMIT:

- The first request of a group takes the write lock (``sqlite_writes``) and opens the group's
  transaction on a connection of its own, and works in it directly: a request alone sends what
  it sent before, BEGIN IMMEDIATE, its statements, COMMIT.
- The requests that queued meanwhile then each take their *turn* on that connection, one at a
  time, each in a SAVEPOINT of its own (``RequestSession``), and run their work as in a
  transaction of their own: they see what the requests before them in the group wrote, as
  they would have seen those requests' commits.
- A request whose work fails or is refused rolls back its own work (the first one: the
  transaction, which holds nothing else, and the group ends; a later one: its SAVEPOINT) and
  is answered at once: it kept nothing, so it waits for no commit.
- A request that keeps its work hands the turn to the next one that queues, if any; the last
  (nobody queues, or the group holds ``max_members``) COMMITs for all. Nobody waits on a timer:
  with no queue a request commits at once, as before. A group is bounded by the threads of
  the process (a request waiting for its COMMIT holds its thread).
- Every request of the group is answered only after that COMMIT returned, so the sync that
  makes its writes durable came first, as with a COMMIT of its own (``synchronous=FULL`` is
  unchanged, and no other connection sees the group's writes before that sync: SQLite
  publishes a WAL commit only after syncing it, so nobody reads and acts on work that could
  still be lost). If the COMMIT fails, or SQLite rolled the whole transaction back under a
  later request (a full disk, an I/O error), every request of the group that kept work fails
  (503, ``GroupCommitFailed``; the kiosk resends with the same idempotency key) and none is
  answered as stored. A crash before the COMMIT answers nobody, and SQLite's recovery drops
  the whole group.

Only a request's own session joins a group (``db.flask``); the CLI, workers and services
that write in transactions of their own (``Database.transaction``) queue for the write lock
as before, behind the group.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from .sqlite_writes import WriteQueueTimeout, held_by_thread

log = logging.getLogger("onsite_server.db")


class GroupCommitFailed(OperationalError):
    """The COMMIT a request's kept work waited for failed or never came: nothing is stored.

    Answered 503 with Retry-After like any refusal of the database (``DB_UNAVAILABLE``); the
    kiosk resends with the same idempotency key, which replays the answer if the work did
    reach the disk after all (a COMMIT that outlived the wait).
    """

    def __init__(self, cause: BaseException | str) -> None:
        orig = cause.orig if isinstance(cause, DBAPIError) else cause
        if not isinstance(orig, Exception):
            orig = sqlite3.OperationalError(str(orig))
        super().__init__("COMMIT", None, orig)


class _LockHolder:
    """Owns a group connection's write lock (instead of the thread that opened the group)."""

    def __init__(self) -> None:
        self.count = 0


class _Group:
    """One open transaction shared by the requests that queued for it, and its outcome."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.holder = _LockHolder()
        self.members = 0
        self.kept = 0
        self.error: BaseException | None = None
        # One lock per member waiting for the COMMIT, released by whoever COMMITs: one wake
        # each, where an Event would wake them all onto its one lock.
        self.waiters: list[threading.Lock] = []


class GroupMember:
    """One request's turn in a group, on the group's connection.

    The first member of a group works in the group's transaction itself (a request alone
    sends what it sent before: BEGIN IMMEDIATE, its statements, COMMIT); the later ones each
    work in a SAVEPOINT of their own (``RequestSession`` sets the session's join mode).
    """

    def __init__(self, owner: GroupCommit, group: _Group, first: bool) -> None:
        self._owner = owner
        self._group = group
        self.first = first
        self.connection = group.connection

    def finish(self, keep: bool) -> None:
        """End this request's turn, its session's transaction already ended.

        Kept work returns only once the group's COMMIT is durable, and raises
        GroupCommitFailed if it failed; dropped work returns at once.
        """
        self._owner._leave(self._group, self.first, keep)


class GroupCommit:
    """The requests of one process that queue for SQLite's write lock share one COMMIT.

    See the module docstring for the protocol. ``bind`` begins IMMEDIATE through the write
    queue; ``wait_seconds`` bounds the wait for a turn (``WriteQueueTimeout``, as the queue)
    and, twice over, the wait for the COMMIT; ``max_members`` bounds a group, so the other
    worker process (queued on the lock file) is not kept out for long.
    """

    def __init__(self, bind: Engine, *, wait_seconds: float, max_members: int = 16) -> None:
        self._bind = bind
        self.wait_seconds = wait_seconds
        self.max_members = max_members
        # The turn is handed from thread to thread through one lock per waiter (a ticket):
        # one wake per hand-over. A Condition's notify wakes the waiter onto the lock the
        # notifier still holds, a second wake; under load those wakes showed in the profile.
        self._guard = threading.Lock()
        self._turn_taken = False
        self._waiting: deque[threading.Lock] = deque()
        self._group: _Group | None = None
        self.commits = 0  # groups committed by this process (read by tests and benchmarks)
        self.members = 0  # requests that kept work in them

    @property
    def _queued(self) -> int:
        return len(self._waiting)

    def join(self) -> GroupMember:
        """Wait for a turn on the open group's connection (opening one if none is open).

        The member holds the turn until ``finish``.
        """
        deadline = time.monotonic() + self.wait_seconds
        with self._guard:
            ticket = None
            if self._turn_taken:
                ticket = threading.Lock()
                ticket.acquire()
                self._waiting.append(ticket)
            else:
                self._turn_taken = True
        if ticket is not None and not ticket.acquire(timeout=max(deadline - time.monotonic(),
                                                                 0.0)):
            with self._guard:
                try:
                    self._waiting.remove(ticket)
                except ValueError:
                    pass  # handed the turn just as the wait ended: it is ours
                else:
                    raise WriteQueueTimeout(self.wait_seconds)
        group = self._group
        if group is None:
            try:
                group = self._open(deadline)
            except BaseException:
                self._hand_over(None)
                raise
        first = group.members == 0
        group.members += 1
        # This thread now writes under the queue, as if it had taken it itself: a second
        # write transaction it opened would wait for itself (see acquire_write_lock).
        held_by_thread().count += 1
        return GroupMember(self, group, first)

    def _open(self, deadline: float) -> _Group:
        conn = self._bind.connect()
        group = _Group(conn)
        try:
            conn.execution_options(write_lock_holder=group.holder,
                                   write_wait_seconds=max(deadline - time.monotonic(), 0.0))
            conn.begin()
        except BaseException:
            conn.close()
            raise
        self._group = group
        return group

    def _hand_over(self, group: _Group | None, *, keep_open: bool = False,
                   ticket: threading.Lock | None = None) -> bool:
        """Give the turn to the next request that queues, or free it; return keep_open.

        The group stays open for that request only if ``keep_open`` and someone queues;
        else it is closed to newcomers (the next one opens a new group). ``ticket``: this
        request's wait for the COMMIT, registered before anyone else can COMMIT.
        """
        with self._guard:
            if ticket is not None and group is not None:
                group.waiters.append(ticket)
            following = self._waiting.popleft() if self._waiting else None
            keep_open = keep_open and following is not None
            if not keep_open:
                self._group = None
            if following is None:
                self._turn_taken = False
        if following is not None:
            following.release()
        return keep_open

    def _leave(self, group: _Group, first: bool, keep: bool) -> None:
        held_by_thread().count -= 1
        error: BaseException | None = None
        ended = not _in_transaction(group.connection)
        if first and not keep and not ended:
            # Only this request's work is in the transaction: drop it with the transaction.
            try:
                group.connection.rollback()
            except SQLAlchemyError:
                pass
            ended = True
        if ended and not first:
            # SQLite rolls the whole transaction back on some errors (a full disk, I/O):
            # the work of the requests before this one went with it.
            error = sqlite3.OperationalError("the group's transaction was rolled back")
        if keep and error is None:
            group.kept += 1
        ticket = None
        if keep:
            ticket = threading.Lock()
            ticket.acquire()
        open_for_next = self._hand_over(
            group, ticket=ticket,
            keep_open=not ended and group.members < self.max_members)
        if not open_for_next:
            self._close(group, error)
        if ticket is None:
            return
        if not ticket.acquire(timeout=2 * self.wait_seconds):
            raise GroupCommitFailed("the group's COMMIT did not come in time")
        if group.error is not None:
            raise GroupCommitFailed(group.error) from group.error

    def _close(self, group: _Group, error: BaseException | None) -> None:
        """COMMIT the group (or roll it back after an error), then wake its members."""
        conn = group.connection
        try:
            if error is None:
                try:
                    conn.commit()
                except Exception as exc:  # noqa: BLE001 - whatever failed, nobody is told "stored"
                    error = exc
                else:
                    self.commits += 1
                    self.members += group.kept
                    log.debug("group commit: %d of %d requests kept work", group.kept,
                              group.members)
            if error is not None:
                try:
                    conn.rollback()
                except SQLAlchemyError:
                    pass  # a dead connection: nothing is left to roll back
        finally:
            try:
                conn.close()
            except SQLAlchemyError:
                pass
            group.error = error
            with self._guard:
                waiters, group.waiters = group.waiters, []
            for waiter in waiters:
                waiter.release()


def _in_transaction(conn: Connection) -> bool:
    try:
        return bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]
    except (SQLAlchemyError, sqlite3.ProgrammingError, AttributeError):
        return False
