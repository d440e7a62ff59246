"""Which sites' operational data a user may see: one guard per role, and the site of a row.

An admin administers one site; what the server holds about another site (its audit entries,
its outbox rows and dead letters, its alerts) is not theirs to read or change. Server-wide
operations belong to the ``operator`` role, which only the command line grants. Services take
a ``Scope`` as a required argument and filter by it, so a view cannot forget the site: a row
outside the scope is "not found", never "forbidden", so ids cannot be probed.

The site of a row is worked out in SQL (``audit_site``, ``outbox_site``), the same way when
an audit entry is written and when a page is filtered:

- a booking, slot, event, kiosk, crisis alert or alert has its site;
- a referral belongs to the site where the member's latest answers were taken (the kiosk of
  its newest submission);
- a user belongs to their site; a site-less user or actor (the CLI, the sync worker, an
  address) makes a server-wide entry, which only operators see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, bindparam, cast, func, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from ..models import (
    Alert,
    Booking,
    CrisisAlert,
    Event,
    Kiosk,
    OutboxMessage,
    Referral,
    Site,
    Slot,
    Submission,
    User,
)
from .errors import N_, ServiceError

# Roles that administer sites' operational data, and the one that sees the whole server.
ADMIN = "admin"
OPERATOR = "operator"


@dataclass(frozen=True)
class Scope:
    """The sites whose operational data a user may see, or the whole server (operators)."""

    site_ids: frozenset[int]
    server_wide: bool = False

    def covers(self, site_id: int | None) -> bool:
        """Tell whether a row of this site (None: a server-wide row) is in the scope."""
        return self.server_wide or (site_id is not None and site_id in self.site_ids)

    def where(self, site: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose site expression is in the scope."""
        if self.server_wide:
            return true()
        clause: ColumnElement[bool] = site.in_(sorted(self.site_ids))
        return clause


SERVER_WIDE = Scope(frozenset(), server_wide=True)


def forbidden(role: str) -> ServiceError:
    """The refusal of a role that may not see operational data at all (as "not found")."""
    return ServiceError("not_found", "Not Found",
                        [{"field": "role", "message": N_("%(role)s may not see this",
                                                         role=role)}])


def admin_scope(role: str, site_ids: Iterable[int]) -> Scope:
    """The one guard for operational data: operators see everything, admins their sites."""
    if role == OPERATOR:
        return SERVER_WIDE
    if role == ADMIN:
        return Scope(frozenset(site_ids))
    raise forbidden(role)


def not_found(field: str, message: str) -> ServiceError:
    """What a row outside the scope (or missing) answers."""
    return ServiceError("not_found", "Not Found", [{"field": field, "message": message}])


# --- the site of a row, in SQL ------------------------------------------------------------

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


# --- reports ------------------------------------------------------------------------------

# Who reads the employer reports: a site's staff for their site, an employer for its sites.
REPORT_ROLES = frozenset({"admin", "coordinator", "employer"})
EMPLOYER = "employer"


def report_sites(session: Session, role: str, site_id: int) -> list[Site]:
    """The sites whose reports the user may read: an employer's every site, staff their own."""
    if role not in REPORT_ROLES:
        raise forbidden(role)
    site = session.get(Site, site_id)
    if site is None:
        raise not_found("site", N_("no such site"))
    if role != EMPLOYER:
        return [site]
    return list(session.scalars(select(Site).where(Site.employer_id == site.employer_id)
                                .order_by(Site.name, Site.id)))


def report_site(session: Session, role: str, site_id: int, slug: str | None) -> Site:
    """The site a report is asked for (default: the user's own), if the user may read it."""
    sites = report_sites(session, role, site_id)
    if not slug:
        return next((s for s in sites if s.id == site_id), sites[0])
    for site in sites:
        if site.slug == slug:
            return site
    raise not_found("site", N_("no such site"))
