"""Unmatched sign-ins: offline sign-ins that matched no member, with how to reach them."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..db import get_session
from ..services import claims as claims_service
from ..services.errors import ServiceError
from . import bp
from .auth import current_user, role_required
from .forms import ActionForm
from .lookup import current_site
from .nav import add_nav

add_nav("dashboard.claims", _l("Unmatched sign-ins"), ("admin", "coordinator"), order=45)


@bp.get("/claims")
@role_required("admin", "coordinator")
def claims() -> Any:
    """The site's open unmatched claims: when, which kiosk, what was typed, the contact."""
    site = current_site()
    return render_template("claims/list.html", site=site, action_form=ActionForm(),
                           rows=claims_service.open_claims(get_session(), site.id))


@bp.post("/claims/<public_id>/resolve")
@role_required("admin", "coordinator")
def claim_resolve(public_id: str) -> Any:
    """Mark a claim as followed up."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    session = get_session()
    try:
        claim = claims_service.find_claim(session, current_site().id, public_id)
    except ServiceError:
        abort(404)
    user = current_user()
    assert user is not None  # role_required ran
    claims_service.resolve_claim(session, claim, actor=user.actor)
    flash(_("Marked as followed up."), "success")
    return redirect(url_for("dashboard.claims"))
