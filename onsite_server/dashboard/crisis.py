"""Acknowledging a crisis with a note: what takes its banner off every page."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..db import get_session
from ..services import casework
from ..services import crisis as crisis_service
from . import bp
from .auth import current_user, passive, role_required, safe_next
from .forms import NoteForm
from .lookup import get_crisis_alert, get_member, get_referral


@bp.get("/crisis/banner")
# Every page refreshes its banner region: an employer's stays empty (banner.py), an
# operator's holds the server's operational alerts.
@role_required("admin", "coordinator", "advocate", "employer", "operator")
@passive
def crisis_banner() -> str:
    """The banner alone (HTML fragment), for pages to refresh it without reloading."""
    return render_template("_crisis_banner.html")


@bp.route("/crisis/alert/<int:alert_id>", methods=["GET", "POST"])
@role_required("admin", "coordinator", "advocate")
def crisis_alert(alert_id: int) -> Any:
    """An anonymous crisis alert: where and when, and a note that staff went to help."""
    alert = get_crisis_alert(alert_id)
    form = NoteForm()
    user = current_user()
    assert user is not None
    if form.validate_on_submit():
        crisis_service.acknowledge_alert(get_session(), alert, actor=user.actor,
                                         note=form.note.data or "")
        flash(_("Crisis alert acknowledged."), "success")
        return redirect(safe_next(None) or url_for("root"))
    names = crisis_service.actor_names(get_session(), [alert.acknowledged_by])
    return render_template("dashboard/crisis_alert.html", alert=alert, kiosk=alert.kiosk,
                           form=form, acknowledged_by=names.get(alert.acknowledged_by or "", ""))


@bp.route("/crisis/referral/<public_id>", methods=["GET", "POST"])
@role_required("admin", "advocate")
def crisis_referral(public_id: str) -> Any:
    """A member's crisis referral: who, how to reach them, and the acknowledging note."""
    referral = get_referral(public_id)
    if referral.priority != "crisis":
        abort(404)
    member = get_member(referral.member.public_id)
    user = current_user()
    assert user is not None
    form = NoteForm()
    if form.validate_on_submit():
        casework.acknowledge_referral(get_session(), referral, actor=user.actor,
                                            note=form.note.data or "")
        flash(_("Crisis referral acknowledged."), "success")
        return redirect(url_for("root"))
    db = get_session()
    crisis_service.audit_view(db, referral, actor=user.actor)
    raised = crisis_service.raised_times(db, [referral])[referral.id]
    names = crisis_service.actor_names(db, [referral.crisis_acknowledged_by])
    return render_template("dashboard/crisis_referral.html", referral=referral, member=member,
                           form=form, raised=raised,
                           acknowledged_by=names.get(referral.crisis_acknowledged_by or "", ""))
