"""Which sites' operational data a user may see: one guard per role, and the site of a row.

An admin administers one site; what the server holds about another site (its audit entries,
its outbox rows and dead letters, its alerts) is not theirs to read or change. Server-wide
operations belong to the ``operator`` role, which only the command line grants. Services take
a ``Scope`` as a required argument and filter by it, so a view cannot forget the site: a row
outside the scope is "not found", never "forbidden", so ids cannot be probed.

The site of a row is worked out in SQL (``audit_site``, ``outbox_site``, defined with the models
in ``models/site_of.py`` and read here), the same way when an audit entry is written and when a
page is filtered:

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

from sqlalchemy import select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..models import Site

# The site of a row is a rule over the models, so it lives with them (models/site_of.py, which
# also fills in every audit entry's site); the services and the migration read it here.
from ..models.site_of import audit_site as audit_site
from ..models.site_of import booking_site as booking_site
from ..models.site_of import outbox_site as outbox_site
from ..models.site_of import referral_site as referral_site
from ..models.site_of import site_of_reference as site_of_reference
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
