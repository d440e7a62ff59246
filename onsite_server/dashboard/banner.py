"""The crisis banner shown on every dashboard page until staff acknowledge it with a note.

Anonymous crisis alerts (kiosk, place and time, no identity) show to all staff of the site.
A crisis referral names a member, so it shows only to the member's own advocate and to
admins; coordinators never see individual health data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from ..app_settings import current as current_settings
from ..db import get_read_session
from ..models import Alert, CrisisAlert, Kiosk, Member, Referral, Site, utcnow
from ..services import fleet, scope
from ..services.crisis import raised_times
from .auth import Principal

# The staff who answer a site's crises (the crisis pages' own roles).
CRISIS_ROLES = frozenset({"admin", "coordinator", "advocate"})


@dataclass(frozen=True)
class Banner:
    """One unacknowledged crisis: what it was, when it was raised, where to acknowledge it."""

    kind: str  # "alert" (anonymous) | "referral"
    ident: str  # alert id or referral public id
    trigger: str
    place: str | None
    taken_at: datetime | None  # the answer's time, on the kiosk's clock (as sent)
    received_at: datetime  # the server's receive time: what the waiting time counts from
    clock_suspect: bool = False

    @property
    def at(self) -> datetime:
        """When the server received it (kept for callers that sort by it)."""
        return self.received_at


def _site_id(user: Principal) -> int | None:
    if user.site_id is not None:
        return user.site_id
    db = get_read_session()
    slug = current_settings().site_slug
    site = db.scalars(select(Site).where(Site.slug == slug)).first() or \
        db.scalars(select(Site).order_by(Site.id)).first()
    return site.id if site else None


def crisis_banners(user: Principal) -> list[Banner]:
    """Return the unacknowledged crises this user should see, longest waiting first."""
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
        .order_by(CrisisAlert.received_at).limit(20)).all()
    for alert, place, label in alerts:
        out.append(Banner("alert", str(alert.id), alert.trigger, place or label,
                          alert.raised_at, alert.received_at, alert.clock_suspect))
    if user.role in ("admin", "advocate"):
        site = db.get(Site, site_id)
        if site is None:
            return out
        query = (select(Referral).join(Member, Member.id == Referral.member_id)
                 .where(Referral.priority == "crisis", Referral.crisis_acknowledged_at.is_(None),
                        Referral.status != "closed", Member.employer_id == site.employer_id)
                 .order_by(Referral.created_at).limit(20))
        if user.role == "advocate":
            query = query.where(Member.advocate_id == user.advocate_id)
        referrals = list(db.scalars(query))
        raised = raised_times(db, referrals)
        for referral in referrals:
            triggers = [str(c.get("trigger")) for c in (referral.proposal or {}).get("crisis", [])]
            when = raised[referral.id]
            out.append(Banner("referral", referral.public_id, ", ".join(triggers) or "crisis",
                              None, when.taken_at, when.received_at))
    # Longest waiting first: the one line names the oldest.
    out.sort(key=lambda b: b.received_at)
    return out


def operational_alerts(user: Principal) -> list[Alert]:
    """Open operational alerts (a stuck outbox, a dead letter) of the admin's site (operators:
    every site's and the server's), newest first."""
    if user.role not in (scope.ADMIN, scope.OPERATOR):
        return []
    site_id = _site_id(user)
    sites = () if site_id is None else (site_id,)
    return fleet.open_alerts(get_read_session(), scope.admin_scope(user.role, sites))


def waited(since: datetime, now: datetime | None = None) -> str:
    """How long a crisis has waited since the server received it, in words (a Jinja filter)."""
    minutes = max(0, int(((now or utcnow()) - since).total_seconds() // 60))
    if minutes < 1:
        return str(_("under a minute"))
    if minutes < 60:
        return str(_("%(num)d min", num=minutes))
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return str(_("%(hours)d h %(minutes)02d min", hours=hours, minutes=rest))
    return str(_("%(num)d days", num=hours // 24))  # two or more: no singular needed
