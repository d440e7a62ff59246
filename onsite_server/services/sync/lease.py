"""A worker's claim on the rest of its batch, renewed before a request needs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .queue import renew
from .settings import Sender, SyncSettings


class LeaseLost(Exception):
    """Another worker took the row over (our lease ran out): this worker must not send it."""


class Lease:
    """This worker's claim on the rest of its batch, renewed before a request needs it."""

    def __init__(self, transaction: Callable[..., Any], settings: SyncSettings,
                 ids: list[int], until: datetime, now: Callable[[], datetime]) -> None:
        self.transaction = transaction
        self.settings = settings
        self.ids = ids
        self.until = until
        self.now = now
        # Rows central took whose outcome is not committed yet: still this worker's, so their
        # lease is renewed with the rest's until they are recorded.
        self.done: list[int] = []

    def keep(self, session: Session, rest: list[int], moment: datetime) -> None:
        """Carry on with rest, renewing its lease in the caller's transaction if it runs short.

        Rows another worker took over meanwhile (this one stalled past its lease) are dropped
        from the batch: that worker sends them.
        """
        self.ids = rest
        if rest and self.until - moment < self.settings.renew_before:
            self.ids = renew(session, self.settings, rest, moment)
            self.until = moment + self.settings.lease

    def before_request(self) -> None:
        """Make sure the lease outlasts the next request; LeaseLost if the row is gone."""
        moment = self.now()
        if self.until - moment >= self.settings.renew_before:
            return
        with self.transaction() as session:
            kept = renew(session, self.settings, [*self.ids, *self.done], moment)
        self.until = moment + self.settings.lease
        done = set(self.done)
        self.done = [row_id for row_id in kept if row_id in done]
        kept = [row_id for row_id in kept if row_id not in done]
        current, self.ids = self.ids[0], kept
        if current not in kept:  # another worker sends it now
            self.ids = [current, *kept]  # the loop moves past it as for any row
            raise LeaseLost(f"outbox row {current} was taken over")

    def guard(self, sender: Sender) -> Sender:
        """Wrap the sender so every request to central first checks the lease."""
        return _LeasedSender(sender, self)


class _LeasedSender:
    def __init__(self, sender: Sender, lease: Lease) -> None:
        self.sender = sender
        self.lease = lease

    def transaction(self, bundle: Any) -> Any:
        self.lease.before_request()
        return self.sender.transaction(bundle)

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        self.lease.before_request()
        return self.sender.search(resource_type, params)

