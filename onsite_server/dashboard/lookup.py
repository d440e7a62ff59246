"""Row lookups for dashboard views that answer 404 for what the caller may not see.

In the style of the Flask tutorial's ``get_post(id, check_author=True)``: another site's row,
or another advocate's member, is "not found", never "forbidden", so ids cannot be probed.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import abort
from sqlalchemy import select

from ..app_settings import current as current_settings
from ..db import get_session
from ..models import CrisisAlert, Kiosk, Member, Referral, Site, User
from ..services import scope as scope_service
from ..services.errors import ServiceError
from .auth import Principal, current_user

T = TypeVar("T")


def _user() -> Principal:
    user = current_user()
    if user is None:
        abort(404)
    return user


def current_site() -> Site:
    """The site the logged-in user works at (a site-less admin: the server's own site)."""
    user = _user()
    db = get_session()
    site: Site | None = None
    if user.site_id is not None:
        site = db.get(Site, user.site_id)
    else:
        slug = current_settings().site_slug
        site = db.scalars(select(Site).where(Site.slug == slug)).first() or \
            db.scalars(select(Site).order_by(Site.id)).first()
    if site is None:
        abort(404, description="No site is set up on this server yet.")
    return site


def site_scope() -> scope_service.Scope:
    """The sites whose audit log, outbox and alerts the user may see (operators: all).

    The service guard decides; a role it refuses gets the 403 page (role_required already
    keeps such roles out, so this is the second lock).
    """
    user = _user()
    try:
        if user.role == scope_service.OPERATOR:
            return scope_service.admin_scope(user.role, ())
        return scope_service.admin_scope(user.role, (current_site().id,))
    except ServiceError:
        abort(403)


def get_for_site(model: type[T], value: Any, *, column: str = "public_id") -> T:
    """Return the row of model whose column equals value at the user's site, else 404.

    The model must have a ``site_id`` column.
    """
    row = get_session().scalars(
        select(model).where(getattr(model, column) == value)).first()
    if row is None or getattr(row, "site_id", None) != current_site().id:
        abort(404)
    return row


def get_kiosk(public_id: str) -> Kiosk:
    """A kiosk of the user's site."""
    return get_for_site(Kiosk, public_id)


def get_user(user_id: int) -> User:
    """A dashboard user of the user's site (a site-less admin sees site-less users too).

    Never an operator: that role is the command line's to grant and to reset, so no site's
    admin can take an operator's account over with a reset link.
    """
    row = get_session().get(User, user_id)
    if row is None or row.site_id not in (current_site().id, _user().site_id) \
            or row.role == scope_service.OPERATOR:
        abort(404)
    return row


def get_member(public_id: str, check_advocate: bool = True) -> Member:
    """A member of the site's employer; for an advocate, only their own members."""
    row = get_session().scalars(select(Member).where(Member.public_id == public_id)).first()
    if row is None or row.employer_id != current_site().employer_id:
        abort(404)
    if check_advocate and not _may_see_member(row):
        abort(404)
    return row


def get_referral(public_id: str, check_advocate: bool = True) -> Referral:
    """A referral of a member of the site's employer; for an advocate, only their own."""
    row = get_session().scalars(select(Referral).where(Referral.public_id == public_id)).first()
    if row is None:
        abort(404)
    member = get_session().get(Member, row.member_id)
    if member is None or member.employer_id != current_site().employer_id:
        abort(404)
    if check_advocate and not _may_see_member(member):
        abort(404)
    return row


def get_crisis_alert(alert_id: int) -> CrisisAlert:
    """An anonymous crisis alert raised at one of the site's kiosks."""
    row = get_session().get(CrisisAlert, alert_id)
    if row is None:
        abort(404)
    kiosk = get_session().get(Kiosk, row.kiosk_id)
    if kiosk is None or kiosk.site_id != current_site().id:
        abort(404)
    return row


def _may_see_member(member: Member) -> bool:
    user = _user()
    if user.role == "advocate":
        return user.advocate_id is not None and member.advocate_id == user.advocate_id
    # Coordinators never see individual health data; admins may, and their views are audited.
    return user.role == "admin"
