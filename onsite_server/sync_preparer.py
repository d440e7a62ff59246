"""Rows prepared ahead in a child process: reading, building and validating on a core of its own.

A worker that prepares its next rows on a second thread shares one GIL between preparing and
sending: the two take turns, and every wait of the sending thread (the socket, the commit's
fsync, each SQLite statement) ends with a wait for the GIL. A child process with its own
database connection builds and validates the rows on the other core while the worker sends
and records; only the prepared rows (entries and the validated bundle) come back, pickled.

Reading, building and validating a row costs the child about twice what sending and recording
it costs the worker, so the child would set the pace; while its next row is not ready, the
worker therefore prepares the chunks the child has not started itself (``cycle._Batch._wait``),
and the two share the work. ``processes=2`` starts two children that take a batch's chunks in
turn; on the 2-core benchmark machine they used about a tenth more CPU and were not measurably
faster than one (docs/BENCHMARKS.md, issue 20 P5 session 11), so the worker starts one.

It lives beside the worker's command (``cli_sync``), not in ``services/``: it starts a process and
opens a database, which services leave to their callers. The child only reads. What the worker does
with a prepared row is unchanged: it is used only when its referral's version is still the one it
was built from (``cycle._Batch``), so a row prepared in the child never sends more, or older, than
the database holds when it goes.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from .central import SCOPE_PERMISSIONS
from .db.engines import Database, is_sqlite
from .db.sqlite_writes import database_path
from .fhir.validate import model
from .models import utcnow
from .services.sync.bundles import KeySnapshot
from .services.sync.forward import Outcome, Prepared, prepare_many
from .services.sync.settings import SyncSettings

Ready = dict[int, Prepared | Outcome]
_CHILD: tuple[Database, SyncSettings] | None = None


def shareable(url: str) -> bool:
    """Tell whether a second process can open the database (a file or a server)."""
    return not is_sqlite(url) or database_path(url) is not None


def _orphaned(parent: int) -> None:
    """End the child when the worker that started it is gone (killed, not shut down)."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def _start(url: str, settings: SyncSettings, parent: int) -> None:
    """Open the child's own database connection (reads only)."""
    global _CHILD
    threading.Thread(target=_orphaned, args=(parent,), daemon=True).start()
    database = Database()
    database.configure(url, group_commit=False)
    # The FHIR models are imported (and their validators built) on first use: do it here,
    # at start-up, not inside the first rows.
    for kind in ("Bundle", *SCOPE_PERMISSIONS):
        model(kind)
    _CHILD = (database, settings)


def _ready() -> bool:
    return _CHILD is not None


def _prepare(row_ids: list[int], keys: KeySnapshot) -> Ready:
    assert _CHILD is not None
    database, settings = _CHILD
    return prepare_many(database.transaction, settings, row_ids, utcnow, keys)


class ProcessPreparer:
    """Prepares a worker's rows ahead in child processes, each with its own database connection.

    What ``run_cycle`` takes as ``preparer``; started once per worker, closed at its end. The
    database must be one a second process can open (a file or a server, not ``:memory:``).
    Each chunk of rows goes to the child with the fewest rows still to prepare (``processes``
    children, each about 100 MB once the FHIR models are imported).

    Not warmed, the children start with the first rows handed to them after ``start_after``
    rows; those first rows are prepared on a thread of the worker instead, as ``run_cycle``
    does without a preparer. Starting a child costs about 1.2 s of CPU, what preparing 100-150
    rows does (``bench/forwarding.py``), so a ``sync --once`` with a few rows due does not
    pay for one (``cli_sync.ONCE_CHILD_AFTER``).
    """

    def __init__(self, database_url: str, settings: SyncSettings, processes: int = 1,
                 start_after: int = 0) -> None:
        self.database_url = database_url
        self.settings = settings
        # Made with the first rows for a child (or ``warm``): a pool's queue makes
        # multiprocessing start its resource tracker, a Python process of its own.
        self.pools: list[ProcessPoolExecutor] = []
        self._processes = max(1, processes)
        # Rows each child was given and has not handed back yet.
        self._queued = [0] * self._processes
        self._lock = threading.Lock()
        self.start_after = start_after
        self._on_thread = 0  # rows prepared on the thread while the children were not needed
        self._thread: ThreadPoolExecutor | None = None

    def _pools(self) -> list[ProcessPoolExecutor]:
        if not self.pools:
            self.pools = [self._new_pool() for _ in range(self._processes)]
        return self.pools

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the worker's engine, sockets and threads must not be copied.
        return ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start, initargs=(self.database_url, self.settings, os.getpid()))

    def warm(self) -> None:
        """Start the children now and wait until they are ready (each imports the FHIR
        models)."""
        started = [pool.submit(_ready) for pool in self._pools()]
        if not all(task.result() for task in started):
            raise RuntimeError("a preparing process did not start")

    def children(self) -> list[int]:
        """The process ids of the children running now."""
        return [pid for pool in self.pools for pid in list(pool._processes or {})]

    def submit(self, transaction: Callable[..., Any], settings: SyncSettings,
               row_ids: Sequence[int], now: Callable[[], datetime],
               keys: KeySnapshot) -> Future[Ready]:
        """Prepare the rows in a child (``prepare_many``); its own connection reads them.

        The child with the fewest rows still queued takes them. A child that died (killed, out
        of memory) is replaced by a new one; the rows it was preparing are built by the worker
        as they go (``cycle._Batch``).
        """
        rows = list(row_ids)
        if self._on_thread < self.start_after:
            self._on_thread += len(rows)
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1,
                                                  thread_name_prefix="sync-prepare")
            return self._thread.submit(prepare_many, transaction, settings, rows, now, keys)
        self._pools()
        index = self._pick(len(rows))
        try:
            task = self.pools[index].submit(_prepare, rows, keys)
        except BrokenProcessPool:
            self.pools[index].shutdown(wait=False, cancel_futures=True)
            self.pools[index] = self._new_pool()
            try:
                task = self.pools[index].submit(_prepare, rows, keys)
            except BaseException:
                self._done(index, len(rows))
                raise
        task.add_done_callback(lambda _task: self._done(index, len(rows)))
        return task

    def _pick(self, rows: int) -> int:
        """Choose the child with the fewest rows still to prepare, and count these in."""
        with self._lock:
            index = min(range(self._processes), key=self._queued.__getitem__)
            self._queued[index] += rows
        return index

    def _done(self, index: int, rows: int) -> None:
        with self._lock:
            self._queued[index] -= rows

    def close(self) -> None:
        """Stop the children (and the thread); rows they were preparing are not needed any
        more."""
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)
        for pool in self.pools:
            pool.shutdown(wait=True, cancel_futures=True)
