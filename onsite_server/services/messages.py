"""What central hears about bookings: the Appointment as it stands, and messages to the member.

A booking's changes (booked, moved up, cancelled, checked in, no-show) reach central as its
Appointment, a conditional update built from the database when the row is sent, so one
pending outbox row per booking is enough however often it changes before the worker runs.
Messages to the member (DESIGN.md §5) go as Communication resources for central to deliver,
since central owns the member's contact channels; each is queued once per booking and kind,
with its text rendered now, in the member's language and the site's time, from
``assets/messages/booking.json``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from shared.paths import assets_dir

from ..models import Booking, OutboxMessage, utcnow
from .statements import Prepared, insert_ignoring_conflicts

MessageKind = Literal["confirmation", "waitlisted", "waitlist_promotion", "cancellation",
                      "waitlist_expired", "reminder"]
# After crisis (0) and urgent (1) referrals, before soon (5) and routine (10) ones: a seat
# that opened tomorrow morning is worth less than a crisis and more than a routine referral.
MESSAGE_PRIORITY = 4
APPOINTMENT_PRIORITY = 12


@cache
def _catalog() -> dict[str, Any]:
    data = json.loads((assets_dir() / "messages" / "booking.json").read_text(encoding="utf-8"))
    return dict(data["messages"])


def message_kinds() -> tuple[str, ...]:
    """Return the kinds of booking message the catalog defines."""
    return tuple(_catalog())


@dataclass(frozen=True)
class RenderedMessage:
    """A message's text in one language, ready for the Communication."""

    kind: str
    language: str
    category: str
    topic: str
    text: str

    def as_payload(self) -> dict[str, str]:
        """Return the outbox payload (what the worker turns into a Communication)."""
        return {"kind": self.kind, "language": self.language, "category": self.category,
                "topic": self.topic, "text": self.text}


def render(kind: str, language: str, *, event: str, start: datetime, timezone: str,
           place: str | None) -> RenderedMessage:
    """Render a booking message in the member's language (English when theirs is missing)."""
    spec = _catalog().get(kind)
    if spec is None:
        raise ValueError(f"kind: no booking message {kind!r}; known: {', '.join(_catalog())}")
    lang = language if language in spec["text"] else "en"
    local = start.astimezone(ZoneInfo(timezone))
    text = spec["text"][lang].format(event=event, date=local.strftime("%Y-%m-%d"),
                                     time=local.strftime("%H:%M"),
                                     place=f", {place}" if place else "")
    return RenderedMessage(kind=kind, language=lang, category=spec["category"],
                           topic=spec["topic"][lang], text=text)


_OUTBOX_COLUMNS = ("kind", "key", "priority", "payload", "booking_id", "status", "attempts",
                   "next_attempt_at", "created_at")


# A unique key and ON CONFLICT DO NOTHING rather than check-then-insert: two sync workers'
# housekeeping (or a retried request) may queue the same message at the same moment.
_INSERT_OUTBOX = Prepared(insert_ignoring_conflicts(cast(Table, OutboxMessage.__table__),
                                                    _OUTBOX_COLUMNS, "key"))


_INSERT_OUTBOX_PAIR = Prepared(insert_ignoring_conflicts(
    cast(Table, OutboxMessage.__table__), _OUTBOX_COLUMNS, "key", rows=2))


def _insert_ignoring_duplicates(session: Session, values: dict[str, Any]) -> bool:
    """Insert an outbox row unless its key exists; return whether this call inserted it."""
    return _INSERT_OUTBOX.run(session, values).first() is not None


_APPOINTMENT_COLUMNS = ("kind", "key", "priority", "payload", "booking_id", "status",
                        "attempts", "next_attempt_at", "created_at")


def _appointment_statement(dialect: str) -> Any:
    """Insert an Appointment row unless one is pending for the booking: one statement, where
    a SELECT for the pending row and an INSERT were two on every change of a booking."""
    table = cast(Table, OutboxMessage.__table__)

    def value(name: str) -> Any:
        param = bindparam(name, type_=table.c[name].type)
        # PostgreSQL gives a bare parameter in a select list no type; SQLite must not be told
        # one (its CAST to a type name it does not know would read the JSON as a number).
        return sql_cast(param, table.c[name].type) if dialect == "postgresql" else param

    pending = select(table.c.id).where(
        table.c.booking_id == bindparam("pending_for"), table.c.kind == "booking",
        table.c.status == "pending")
    rows = select(*(value(name) for name in _APPOINTMENT_COLUMNS)).where(~pending.exists())
    return insert(table).from_select(list(_APPOINTMENT_COLUMNS), rows)


_APPOINTMENTS = {name: Prepared(_appointment_statement(name))
                 for name in ("postgresql", "sqlite")}


def queue_appointment(session: Session, booking: Booking, *, new: bool = False) -> None:
    """Make sure a pending outbox row will send this booking's Appointment as it stands.

    A row already pending is enough: the bundle is built at send time, so it will carry this
    change too. ``new``: the booking was inserted in this transaction, so no row can be
    pending for it yet and the look for one is skipped.
    """
    session.flush()
    queue_appointment_row(session, booking.id, booking.public_id, new=new)


def _appointment_values(booking_id: int, booking_public_id: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "kind": "booking", "key": f"booking:{booking_public_id}:{uuid.uuid4().hex[:12]}",
        "priority": APPOINTMENT_PRIORITY, "payload": {"booking": booking_public_id},
        "booking_id": booking_id, "status": "pending", "attempts": 0,
        "next_attempt_at": now, "created_at": now}


def queue_appointment_row(session: Session, booking_id: int, booking_public_id: str, *,
                          new: bool = False) -> None:
    """``queue_appointment`` for a booking known by its id and public id, with no flush:
    for a caller that changed the booking's row by a statement, not through the session."""
    values = _appointment_values(booking_id, booking_public_id)
    if new:
        _insert_ignoring_duplicates(session, values)
        return
    _APPOINTMENTS[session.get_bind().dialect.name].run(session,
                                                       {**values, "pending_for": booking_id})


def notify_booking(session: Session, booking: Booking, kind: MessageKind) -> bool:
    """Queue a message to the booking's member (once per booking and kind) for central.

    Returns whether it was queued now (False when it was already queued). The Appointment
    travels in the same Bundle, so central can tie the message to it.
    """
    session.flush()
    member, event, slot = booking.member, booking.event, booking.slot
    return notify_booking_row(
        session, booking.id, booking.public_id, kind, language=member.language,
        title=event.title, title_es=event.title_es, location=event.location,
        start_at=slot.start_at, timezone=event.site.timezone)


def notify_booking_row(session: Session, booking_id: int, booking_public_id: str,
                       kind: MessageKind, *, language: str, title: str, title_es: str | None,
                       location: str | None, start_at: datetime, timezone: str) -> bool:
    """``notify_booking`` for a booking known by its ids and the values its message names,
    with no flush: for a caller that wrote the booking's row by a statement."""
    return _insert_ignoring_duplicates(session, _message_values(
        booking_id, booking_public_id, kind, language=language, title=title,
        title_es=title_es, location=location, start_at=start_at, timezone=timezone))


def _message_values(booking_id: int, booking_public_id: str, kind: MessageKind, *,
                    language: str, title: str, title_es: str | None, location: str | None,
                    start_at: datetime, timezone: str) -> dict[str, Any]:
    shown = title_es if language == "es" and title_es else title
    message = render(kind, language, event=shown, start=start_at, timezone=timezone,
                     place=location)
    now = utcnow()
    return {
        "kind": "message", "key": f"message:{booking_public_id}:{kind}",
        "priority": MESSAGE_PRIORITY,
        "payload": {"booking": booking_public_id, **message.as_payload(),
                    "queued_at": now.isoformat()},
        "booking_id": booking_id, "status": "pending", "attempts": 0,
        "next_attempt_at": now, "created_at": now}


def queue_new_booking(session: Session, booking_id: int, booking_public_id: str,
                      kind: MessageKind, *, language: str, title: str, title_es: str | None,
                      location: str | None, start_at: datetime, timezone: str) -> None:
    """For a booking inserted in this transaction: its Appointment row and its message to
    the member (``queue_appointment(new=True)`` and ``notify_booking_row``) in one
    statement, each row kept unless its key exists."""
    rows = (_appointment_values(booking_id, booking_public_id),
            _message_values(booking_id, booking_public_id, kind, language=language,
                            title=title, title_es=title_es, location=location,
                            start_at=start_at, timezone=timezone))
    _INSERT_OUTBOX_PAIR.run(session, {f"{name}_{i}": value for i, values in enumerate(rows)
                                      for name, value in values.items()}).all()
