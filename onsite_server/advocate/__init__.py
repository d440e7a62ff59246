"""The onsite advocates' view (HTML): their own members' referrals only.

Every page that shows a member's results is written to the audit log; other advocates'
members answer 404 (``dashboard.lookup``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..dashboard.auth import current_user, role_required
from ..dashboard.forms import StatusForm
from ..dashboard.i18n import attach_errors
from ..dashboard.lookup import current_site, get_referral
from ..dashboard.nav import add_nav
from ..db import get_session
from ..services import casework, crisis
from ..services.errors import ServiceError

bp = Blueprint("advocate", __name__, url_prefix="/advocate")

add_nav("advocate.index", _l("My referrals"), ("advocate",), order=5)


@bp.get("/")
@role_required("advocate")
def index() -> str:
    """The referrals of the logged-in advocate's members at this site, crisis first."""
    user = current_user()
    assert user is not None  # role_required ran
    site = current_site()
    # An advocate account not tied to an advocate record (made by hand) sees nobody's data.
    rows = [] if user.advocate_id is None else casework.referrals_for_advocate(
        get_session(), user.advocate_id, site.employer_id)
    for row in rows:
        casework.record_view(get_session(), row.referral, actor=user.actor)
    # A crisis shows when it was received, not when its referral was last edited.
    raised = crisis.raised_times(get_session(), [row.referral for row in rows
                                                 if row.referral.priority == "crisis"])
    return render_template("advocate/index.html", rows=rows, raised=raised)


@bp.route("/referrals/<public_id>", methods=["GET", "POST"])
@role_required("advocate")
def referral(public_id: str) -> Any:
    """One referral: reasons and results, contact details, history; move its status on."""
    user = current_user()
    assert user is not None
    found = get_referral(public_id)
    db = get_session()
    form = StatusForm()
    if form.validate_on_submit():
        try:
            casework.set_status(db, found, form.status.data, actor=user.actor,
                                note=form.note.data or "")
        except ServiceError as exc:
            attach_errors(form, exc, default="note")
        else:
            flash(_("Saved. The status goes to the central advocate system with the next "
                    "sync."), "success")
            return redirect(url_for("advocate.referral", public_id=public_id))
    casework.record_view(db, found, actor=user.actor)
    who = crisis.actor_names(db, [found.crisis_acknowledged_by])
    return render_template("advocate/referral.html", referral=found, member=found.member,
                           history=casework.member_history(db, found.member),
                           notes=casework.notes(db, found), form=form,
                           crisis_acknowledged_by=who.get(found.crisis_acknowledged_by or "", ""))
