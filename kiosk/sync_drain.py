"""One drain of the outbox: up to ``in_flight`` requests at a time, planned by ``sync_plan``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass

from .outbox import Outbox, Row
from .sync_plan import Unit, next_unit

# What one request came back with: (keys acknowledged, rows settled, a row left waiting).
Outcome = tuple[list[str], int, bool]


@dataclass(frozen=True)
class DrainSettings:
    """What a drain needs of its sync worker (``SyncWorker.drain`` builds it)."""

    outbox: Outbox
    send: Callable[[Unit], Outcome]  # one request, on a sender thread
    note_backlog: Callable[[int], None]  # rows seen pending: the progress bar's total
    count_acked: Callable[[int, int], int]  # (rows deleted, rows settled) -> rows deleted
    stop: threading.Event
    in_flight: int
    batch_size: int
    batch_bytes: int


class Drain:
    """The state of one ``SyncWorker.drain``: what flies, what is owed a deletion, the outcome.

    The caller's thread plans and collects; the requests go on the ``senders`` pool, and every
    read and write of the outbox on the ``helper`` thread, so that the outbox's durable deletes
    and the opening of the next rows run while requests are in flight.
    """

    def __init__(self, settings: DrainSettings) -> None:
        self.settings = settings
        self.flying: dict[Future[Outcome], Unit] = {}
        self.owed: list[str] = []  # acknowledged by the server, not yet deleted here
        self.owed_settled = 0
        self.opened: dict[str, Row] = {}  # rows opened by the last read, by key
        self.failure: BaseException | None = None
        self.more = True  # false once nothing more may be sent in this drain
        self.total = 0

    def loop(self, senders: Executor, helper: Executor) -> None:
        """Send and collect until nothing flies and nothing more may go."""
        s = self.settings
        while True:
            while (self.more and self.failure is None and not s.stop.is_set()
                   and len(self.flying) < s.in_flight):
                unit = self._plan(helper)
                if unit is None:
                    if not self.flying:
                        self.more = False  # nothing left to send
                    break
                self.flying[senders.submit(s.send, unit)] = unit
            if self.owed:
                # The acknowledged rows are deleted while the next requests are in flight.
                self._settle(helper.submit(s.outbox.ack, self.owed).result())
            if not self.flying:
                return
            done, _ = wait(list(self.flying), return_when=FIRST_COMPLETED)
            for future in [f for f in self.flying if f in done]:  # in the order sent
                self._collect(future)

    def _plan(self, helper: Executor) -> Unit | None:
        """Read the head of the outbox (on the helper) and plan the next request from it."""
        s = self.settings
        busy = {key for unit in self.flying.values() for key in unit.keys}
        skip = busy | set(self.owed)
        # Room to pass over rows a request beside another may not take (about one in ten
        # items names a member on a busy site), besides the rows in flight and owed.
        limit = s.batch_size + s.batch_size // 2 + len(skip)
        read = helper.submit(s.outbox.pending, limit, opened=self.opened).result()
        self.opened = {row.key: row for row in read}
        rows = [row for row in read if row.key not in skip]
        unit = next_unit(rows, list(self.flying.values()), batch_size=s.batch_size,
                         batch_bytes=s.batch_bytes)
        if unit is not None:
            s.note_backlog(len(rows))
        return unit

    def _collect(self, future: Future[Outcome]) -> None:
        """Take one answered request's outcome: rows owed a deletion, or the failure."""
        self.flying.pop(future)
        try:
            acked, settled, _waiting = future.result()
        except Exception as exc:  # noqa: BLE001 - raised by drain once nothing flies
            if self.failure is None:
                self.failure = exc
            return
        self.owed.extend(acked)
        self.owed_settled += settled
        if settled == 0:
            self.more = False  # every row of the batch waits for later: do not spin on them

    def _settle(self, deleted: int) -> None:
        self.total += self.settings.count_acked(deleted, self.owed_settled)
        self.owed, self.owed_settled = [], 0

    def finish(self) -> None:
        """After an error of the caller's own: wait for what flies, delete what was acked."""
        for future in list(self.flying):
            wait([future])
            self._collect(future)
        if self.owed:
            self._settle(self.settings.outbox.ack(self.owed))
