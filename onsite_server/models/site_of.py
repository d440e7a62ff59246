"""The site of a row, worked out in SQL, and every audit entry's site filled in as it is written.

The same rule serves the pages (``services.scope`` filters by it), the audit log (the listener
below) and the migration that filled in old entries:

- a booking, slot, event, kiosk, crisis alert or alert has its site;
- a referral belongs to the site where the member's latest answers were taken (the kiosk of
  its newest submission);
- a user belongs to their site; a site-less user or actor (the CLI, the sync worker, an
  address) makes a server-wide entry, which only operators see.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, bindparam, cast, event, func, select
from sqlalchemy.sql.elements import BindParameter

from .clinical import CrisisAlert, Referral, Submission
from .core import AuditLog, Kiosk, Site, User
from .events import Booking, Event, Slot
from .outbox import Alert, OutboxMessage


def referral_site(referral_id: Any) -> Any:
    """The site of a referral: the kiosk of its newest submission (a scalar subquery)."""
    return (select(Kiosk.site_id).join(Submission, Submission.kiosk_id == Kiosk.id)
            .where(Submission.referral_id == referral_id)
            .order_by(Submission.taken_at.desc(), Submission.id.desc())
            .limit(1).scalar_subquery())


def _referral_site_by_public_id(public_id: Any) -> Any:
    return (select(Kiosk.site_id).join(Submission, Submission.kiosk_id == Kiosk.id)
            .join(Referral, Referral.id == Submission.referral_id)
            .where(Referral.public_id == public_id)
            .order_by(Submission.taken_at.desc(), Submission.id.desc())
            .limit(1).scalar_subquery())


def booking_site(booking_id: Any) -> Any:
    """The site of a booking: its event's (a scalar subquery)."""
    return (select(Event.site_id).join(Booking, Booking.event_id == Event.id)
            .where(Booking.id == booking_id).scalar_subquery())


def outbox_site() -> Any:
    """The site of an outbox row (correlated to OutboxMessage): its booking's or referral's."""
    return func.coalesce(booking_site(OutboxMessage.booking_id),
                         referral_site(OutboxMessage.referral_id))


_INT_KINDS = frozenset({"user", "crisis_alert", "alert"})


def _id_column(kind: str) -> Any:
    return {"user": User.id, "alert": Alert.id, "crisis_alert": CrisisAlert.id}[kind]


def site_of_reference(kind: str, key: Any) -> Any | None:
    """The site of an audit reference such as ``event:<id>`` (None: no site to find).

    ``key`` is the text after the colon: a Python string, a bound parameter (the prepared
    statements of ``audit_site``), or a SQL expression when the migration fills in old entries.
    """
    if kind in _INT_KINDS:
        if isinstance(key, str):
            if not (key.isdigit() and len(key) < 10):  # an id, within a 32-bit integer
                return None
            condition = _id_column(kind) == int(key)
        elif isinstance(key, BindParameter):  # a prepared statement's parameter
            condition = _id_column(kind) == key
        else:  # old entries: compare as text, as a SQL cast of text to int may fail
            condition = cast(_id_column(kind), String) == key
        if kind == "user":
            return select(User.site_id).where(condition).limit(1).scalar_subquery()
        if kind == "alert":
            return select(Alert.site_id).where(condition).limit(1).scalar_subquery()
        return (select(Kiosk.site_id).join(CrisisAlert, CrisisAlert.kiosk_id == Kiosk.id)
                .where(condition).limit(1).scalar_subquery())
    if kind == "kiosk":
        return select(Kiosk.site_id).where(Kiosk.public_id == key).limit(1).scalar_subquery()
    if kind == "site":
        return select(Site.id).where(Site.slug == key).limit(1).scalar_subquery()
    if kind == "event":
        return select(Event.site_id).where(Event.public_id == key).limit(1).scalar_subquery()
    if kind == "slot":
        return (select(Event.site_id).join(Slot, Slot.event_id == Event.id)
                .where(Slot.public_id == key).limit(1).scalar_subquery())
    if kind == "booking":
        return (select(Event.site_id).join(Booking, Booking.event_id == Event.id)
                .where(Booking.public_id == key).limit(1).scalar_subquery())
    if kind == "referral":
        return _referral_site_by_public_id(key)
    if kind == "outbox":
        return (select(outbox_site()).where(OutboxMessage.key == key).limit(1)
                .scalar_subquery())
    return None


def _references(subject: str | None, actor: str | None,
                event: str | None) -> list[tuple[str, str]]:
    """The (kind, key) pairs an audit entry names, in the order that decides its site."""
    out = []
    for reference in (subject, f"event:{event}" if event else None, actor):
        if reference and ":" in reference:
            kind, key = reference.split(":", 1)
            if kind in _INT_KINDS and not (key.isdigit() and len(key) < 10):
                continue  # not an id (a 32-bit integer) of that table
            out.append((kind, key))
    return out


# One prepared statement per kind (built once: building a select costs more than running it).
_BY_KIND: dict[str, Any] = {}


def _statement(kind: str) -> Any | None:
    if kind not in _BY_KIND:
        found = site_of_reference(kind, bindparam("key"))
        _BY_KIND[kind] = None if found is None else select(found)
    return _BY_KIND[kind]


def audit_site(connection: Connection, subject: str | None, actor: str | None,
               event: str | None) -> int | None:
    """The site an audit entry belongs to: its subject's, else its event's, else its actor's.

    The subject comes first: an advocate's view of a referral belongs to the referral's site,
    and a failed log-in by address to the account's site. None when nothing in the entry names
    a site (a server-wide entry).
    """
    for kind, key in _references(subject, actor, event):
        statement = _statement(kind)
        if statement is None:
            continue
        site = connection.execute(statement, {"key": int(key) if kind in _INT_KINDS
                                              else key}).scalar()
        if site is not None:
            return int(site)
    return None


@event.listens_for(AuditLog, "before_insert")
def _fill_audit_site(_mapper: Any, connection: Any, target: AuditLog) -> None:
    # Every writer of the audit log gets its site for free, so no caller can forget it: one
    # or two prepared one-row selects on the flush's own connection.
    if target.site_id is None:
        detail = target.detail if isinstance(target.detail, dict) else {}
        event_id = detail.get("event")
        target.site_id = audit_site(connection, target.subject, target.actor,
                                    event_id if isinstance(event_id, str) else None)
