"""Which rows the sync worker's next request carries, given the requests still in flight.

A drain keeps up to two requests in flight, so the server's second process prepares one batch
(validation, scoring, hashing: no lock) while the other batch is written. The server may then
write the later batch first. That is harmless only between rows that never meet on the
server, so a request sent while another is in flight takes only such rows (docs/submissions.md,
"Two requests in flight"):

- no row of a kiosk session the other request holds, nor one after a row of its session that
  waits: a visit's items are triaged with its earlier ones, so they go in order;
- no identified row (a member reference, an id typed offline, a consent) when the other
  request holds one, nor one after an identified row that waits: the kiosk cannot tell two
  visits of one member apart (a reference is opaque to it), and a member's findings fold into
  their referral in order, so only one request with identified rows is ever in flight and
  those rows go in the order written;
- nothing beside a request holding a crisis-lane row (the crisis is recorded before anything
  sent after it), and nothing after a crisis-lane row that cannot go yet (it goes first, in
  the next request);
- no consent or crisis alert: those go alone, with nothing else in flight.

With nothing in flight a request is what it always was: the leading run of submission items
(or one other row), up to ``batch_size`` items and ``batch_bytes`` of JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .outbox import CRISIS_LANE, Row


def session_of(row: Row) -> str:
    """The kiosk session a row belongs to (a row without one is a session of its own)."""
    session = row.payload.get("session_id")
    return str(session) if session else f"row:{row.key}"


def identified(row: Row) -> bool:
    """Whether a row may name a member: anything but a submission sent as anonymous."""
    return row.kind != "submission" or row.payload.get("anonymous") is not True


def payload_bytes(row: Row) -> int:
    """The row's share of a request's JSON body (its item and a separator)."""
    # The outbox seals the same compact JSON, so its length comes with the row for free.
    size = row.json_bytes or len(json.dumps(row.payload, separators=(",", ":")))
    return size + 1


@dataclass(frozen=True)
class Unit:
    """One request's rows, and what a request sent beside it must stay clear of."""

    rows: tuple[Row, ...]
    keys: frozenset[str]
    sessions: frozenset[str]
    identified: bool
    crisis: bool

    @classmethod
    def of(cls, rows: Sequence[Row]) -> Unit:
        """The unit of these rows."""
        return cls(tuple(rows), frozenset(r.key for r in rows),
                   frozenset(session_of(r) for r in rows), any(identified(r) for r in rows),
                   any(r.lane == CRISIS_LANE for r in rows))


def next_unit(rows: Sequence[Row], flying: Sequence[Unit], *, batch_size: int,
              batch_bytes: int) -> Unit | None:
    """The next request's rows, or None when nothing may go until a request is answered.

    ``rows``: the pending rows in sending order, less those in flight or acknowledged.
    """
    if not rows:
        return None
    if not flying:
        return Unit.of(_leading_run(rows, batch_size, batch_bytes))
    if any(u.crisis for u in flying):
        return None  # a crisis in flight is answered (recorded) before anything else goes
    busy_sessions = frozenset().union(*(u.sessions for u in flying))
    busy_member = any(u.identified for u in flying)
    waiting_sessions: set[str] = set()
    member_waits = False
    taken: list[Row] = []
    size = 0
    for row in rows:
        if row.kind != "submission":
            break  # goes alone, in order, once nothing is in flight
        session, named = session_of(row), identified(row)
        if (session in busy_sessions or session in waiting_sessions
                or (named and (busy_member or member_waits))):
            if row.lane == CRISIS_LANE:
                break  # nothing overtakes a crisis
            waiting_sessions.add(session)
            member_waits = member_waits or named
            continue
        size += payload_bytes(row)
        if taken and size > batch_bytes:
            break
        taken.append(row)
        if len(taken) == batch_size:
            break
    return Unit.of(taken) if taken else None


def _leading_run(rows: Sequence[Row], batch_size: int, batch_bytes: int) -> list[Row]:
    """The leading run of submission items, or the one other row at the head.

    The run stops before the item that would take the request past ``batch_bytes`` of JSON
    (one item always goes, whatever its size); the rest follow in the next request.
    """
    head = rows[0]
    if head.kind != "submission":
        return [head]
    run: list[Row] = []
    size = 0
    for row in rows[:batch_size]:
        if row.kind != "submission":
            break
        size += payload_bytes(row)
        if run and size > batch_bytes:
            break
        run.append(row)
    return run
