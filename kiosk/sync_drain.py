"""One drain of the outbox: up to ``in_flight`` requests at a time, planned by ``sync_plan``."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import TYPE_CHECKING

from .outbox import Row
from .sync_plan import Unit, next_unit

if TYPE_CHECKING:
    from .api_client import ApiClient
    from .sync import SyncWorker


class Drain:
    """The state of one ``SyncWorker.drain``: what flies, what is owed a deletion, the outcome.

    The caller's thread plans and collects; the requests go on the ``senders`` pool, and every
    read and write of the outbox on the ``helper`` thread, so that the outbox's durable deletes
    and the opening of the next rows run while requests are in flight.
    """

    def __init__(self, worker: SyncWorker, client: ApiClient) -> None:
        self.worker = worker
        self.client = client
        self.flying: dict[Future[tuple[list[str], int, bool]], Unit] = {}
        self.owed: list[str] = []  # acknowledged by the server, not yet deleted here
        self.owed_settled = 0
        self.opened: dict[str, Row] = {}  # rows opened by the last read, by key
        self.failure: BaseException | None = None
        self.more = True  # false once nothing more may be sent in this drain
        self.total = 0

    def loop(self, senders: Executor, helper: Executor) -> None:
        """Send and collect until nothing flies and nothing more may go."""
        worker = self.worker
        while True:
            while (self.more and self.failure is None and not worker._stop.is_set()
                   and len(self.flying) < worker.in_flight):
                unit = self._plan(helper)
                if unit is None:
                    if not self.flying:
                        self.more = False  # nothing left to send
                    break
                self.flying[senders.submit(worker._send_unit, self.client, unit)] = unit
            if self.owed:
                # The acknowledged rows are deleted while the next requests are in flight.
                self._settle(helper.submit(worker.outbox.ack, self.owed).result())
            if not self.flying:
                return
            done, _ = wait(list(self.flying), return_when=FIRST_COMPLETED)
            for future in [f for f in self.flying if f in done]:  # in the order sent
                self._collect(future)

    def _plan(self, helper: Executor) -> Unit | None:
        """Read the head of the outbox (on the helper) and plan the next request from it."""
        worker = self.worker
        busy = {key for unit in self.flying.values() for key in unit.keys}
        skip = busy | set(self.owed)
        # Room to pass over rows a request beside another may not take (about one in ten
        # items names a member on a busy site), besides the rows in flight and owed.
        limit = worker.batch_size + worker.batch_size // 2 + len(skip)
        read = helper.submit(worker.outbox.pending, limit, opened=self.opened).result()
        self.opened = {row.key: row for row in read}
        rows = [row for row in read if row.key not in skip]
        unit = next_unit(rows, list(self.flying.values()), batch_size=worker.batch_size,
                         batch_bytes=worker.batch_bytes)
        if unit is not None:
            worker._note_backlog(len(rows))
        return unit

    def _collect(self, future: Future[tuple[list[str], int, bool]]) -> None:
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
        self.total += self.worker._count_acked(deleted, self.owed_settled)
        self.owed, self.owed_settled = [], 0

    def finish(self) -> None:
        """After an error of the caller's own: wait for what flies, delete what was acked."""
        for future in list(self.flying):
            wait([future])
            self._collect(future)
        if self.owed:
            self._settle(self.worker.outbox.ack(self.owed))
