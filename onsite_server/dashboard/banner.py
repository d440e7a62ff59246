"""The crisis banner shown on every dashboard page until staff acknowledge it with a note.

Anonymous crisis alerts (kiosk, place and time, no identity) show to all staff of the site.
A crisis referral names a member, so it shows only to the member's own advocate and to
admins; coordinators never see individual health data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from ..db import get_read_session
from ..models import Alert, CrisisAlert, Kiosk, Member, Referral, Site
from ..services import fleet, scope
from .auth import Principal

# The staff who answer a site's crises (the crisis pages' own roles).
CRISIS_ROLES = frozenset({"admin", "coordinator", "advocate"})


@dataclass(frozen=True)
class Banner:
    """One unacknowledged crisis: what the banner says and where to acknowledge it."""

    kind: str  # "alert" (anonymous) | "referral"
    ident: str  # alert id or referral public id
    trigger: str
    place: str | None
    at: datetime


def _site_id(user: Principal) -> int | None:
    if user.site_id is not None:
        return user.site_id
    db = get_read_session()
    slug = str(current_app.config.get("SITE_SLUG") or "")
    site = db.scalars(select(Site).where(Site.slug == slug)).first() or \
        db.scalars(select(Site).order_by(Site.id)).first()
    return site.id if site else None


def crisis_banners(user: Principal) -> list[Banner]:
    """Return the unacknowledged crises this user should see, newest first."""
    if user.role not in CRISIS_ROLES:
        return []  # employers and operators neither see nor answer a site's crises
    site_id = _site_id(user)
    if site_id is None:
        return []
    db = get_read_session()
    out: list[Banner] = []
    alerts = db.execute(
        select(CrisisAlert, Kiosk.place, Kiosk.label).join(Kiosk, Kiosk.id == CrisisAlert.kiosk_id)
        .where(Kiosk.site_id == site_id, CrisisAlert.acknowledged_at.is_(None))
        .order_by(CrisisAlert.received_at.desc()).limit(20)).all()
    for alert, place, label in alerts:
        out.append(Banner("alert", str(alert.id), alert.trigger, place or label,
                          alert.received_at))
    if user.role in ("admin", "advocate"):
        site = db.get(Site, site_id)
        if site is None:
            return out
        query = (select(Referral).join(Member, Member.id == Referral.member_id)
                 .where(Referral.priority == "crisis", Referral.crisis_acknowledged_at.is_(None),
                        Referral.status != "closed", Member.employer_id == site.employer_id)
                 .order_by(Referral.updated_at.desc()).limit(20))
        if user.role == "advocate":
            query = query.where(Member.advocate_id == user.advocate_id)
        for referral in db.scalars(query):
            triggers = [str(c.get("trigger")) for c in (referral.proposal or {}).get("crisis", [])]
            out.append(Banner("referral", referral.public_id, ", ".join(triggers) or "crisis",
                              None, referral.updated_at))
    out.sort(key=lambda b: b.at, reverse=True)
    return out


def operational_alerts(user: Principal) -> list[Alert]:
    """Open operational alerts (a stuck outbox, a dead letter) of the admin's site (operators:
    every site's and the server's), newest first."""
    if user.role not in (scope.ADMIN, scope.OPERATOR):
        return []
    site_id = _site_id(user)
    sites = () if site_id is None else (site_id,)
    return fleet.open_alerts(get_read_session(), scope.admin_scope(user.role, sites))
