"""Admin pages: site settings, users (invite, disable, reset), roster upload, the audit log."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import SelectChoice

from ..app_settings import current as current_settings
from ..db import get_db, get_session, release_request_session
from ..models import Advocate, Site, User
from ..services import audit
from ..services import events as events_service
from ..services import sites as sites_service
from ..services import users as users_service
from ..services.errors import ServiceError
from ..services.roster import RosterImportError, import_roster
from ..services.roster_file import COLUMNS, RosterFileError, decode_roster
from . import bp
from .auth import current_user, role_required
from .forms import ActionForm, InviteForm, RosterForm, SettingsForm
from .i18n import attach_errors
from .lookup import current_site, get_user, site_scope
from .nav import add_nav

add_nav("dashboard.settings", _l("Site settings"), ("admin",), order=60)
add_nav("dashboard.users", _l("Users"), ("admin",), order=61)
add_nav("dashboard.roster", _l("Roster"), ("admin",), order=62)
add_nav("dashboard.audit_log", _l("Audit log"), ("admin", "operator"), order=63)

INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=24)
# Enough for a 60,000-row roster with every optional column filled (~250 bytes a row).
ROSTER_MAX_BYTES = 32 * 1024 * 1024
ROSTER_ERRORS_SHOWN = 1000
AUDIT_PAGE = 50


def _actor() -> str:
    user = current_user()
    assert user is not None  # role_required ran
    return user.actor


# --- site settings ------------------------------------------------------------------------

@bp.route("/admin/settings", methods=["GET", "POST"])
@role_required("admin")
def settings() -> Any:
    """Site settings, each shown with the server default it overrides."""
    site = current_site()
    view = sites_service.settings_view(site, current_settings())
    form = SettingsForm()
    form.enabled_instruments.choices = [SelectChoice(i, i)
                                        for i in sites_service.known_instruments()]
    if request.method == "GET":
        form.enabled_instruments.data = view["enabled_instruments"].effective
        form.branding_name.data = view["branding_name"].own or ""
        form.branding_color.data = view["branding_color"].own or ""
        form.timezone.data = site.timezone
        for key in sites_service.TIMEOUTS:
            getattr(form, key).data = view[key].own
        form.min_cell.data = "" if view["min_cell"].own is None else str(view["min_cell"].own)
        form.local_crisis_resources.data = "\n".join(
            " | ".join(p for p in (r["label"], r.get("phone") or "", r.get("url") or "") if p)
            for r in view["local_crisis_resources"].own or [])
    elif form.validate_on_submit():
        changes: dict[str, Any] = {
            "enabled_instruments": form.enabled_instruments.data or [],
            "branding_name": form.branding_name.data,
            "branding_color": form.branding_color.data,
            "local_crisis_resources": form.resources(),
            "min_cell": form.min_cell.data,
            **{key: getattr(form, key).data for key in sites_service.TIMEOUTS},
        }
        if sorted(changes["enabled_instruments"]) == sorted(view["enabled_instruments"].default):
            changes["enabled_instruments"] = None  # the same as the server: keep following it
        zone_before = site.timezone
        try:
            sites_service.update_settings(get_session(), site, changes, actor=_actor(),
                                          timezone=(form.timezone.data or "").strip())
        except ServiceError as exc:
            attach_errors(form, exc, name_other_fields=True)
        else:
            flash(_("Settings saved. Kiosks pick them up at their next catalog check."),
                  "success")
            _zone_changed(site, zone_before)
            return redirect(url_for("dashboard.settings"))
    return render_template("admin/settings.html", form=form, view=view, site=site,
                           server_timezone="UTC")


def _zone_changed(site: Site, zone_before: str) -> None:
    """Say what a new time zone does to the slots already made: same moment, other clock."""
    if site.timezone == zone_before:
        return
    count, first = events_service.first_upcoming_slot(get_session(), site)
    if first is None:
        return
    old_clock = first.astimezone(ZoneInfo(zone_before)).strftime("%Y-%m-%d %H:%M")
    new_clock = first.astimezone(ZoneInfo(site.timezone)).strftime("%Y-%m-%d %H:%M")
    flash(_("The time zone changed from %(before)s to %(after)s. The %(n)d upcoming slots keep "
            "their moment in time, so their clock times change: the first, %(old)s before, "
            "is now %(new)s. Check them on the Events page, and cancel and make again any "
            "that were entered for the wrong zone.", before=zone_before, after=site.timezone,
            n=count, old=old_clock, new=new_clock), "warning")


# --- users --------------------------------------------------------------------------------

def _advocate_choices() -> list[SelectChoice]:
    advocates = get_session().scalars(select(Advocate).where(Advocate.active.is_(True))
                                      .order_by(Advocate.name))
    return [SelectChoice("", _("(not an advocate)"))] + [
        SelectChoice(a.public_id, f"{a.name} ({a.public_id})") for a in advocates]


def _link(token: str) -> str:
    return url_for("auth.account_link", token=token, _external=True)


@bp.route("/admin/users", methods=["GET", "POST"])
@role_required("admin")
def users() -> Any:
    """The site's staff accounts; invite a new one (a one-time link is shown once)."""
    site = current_site()
    form = InviteForm()
    form.advocate.choices = _advocate_choices()
    shown_link: str | None = None
    if form.validate_on_submit():
        db = get_session()
        try:
            user = users_service.create_user(
                db, email=form.email.data or "", name=form.name.data or "",
                role=form.role.data, site_id=site.id,
                advocate_public_id=(form.advocate.data or None)
                if form.role.data == "advocate" else None)
            token = users_service.issue_link(db, user, "invite", actor=_actor(),
                                             ttl=INVITE_TTL)
        except ServiceError as exc:
            attach_errors(form, exc, name_other_fields=True)
        else:
            audit.record(db, _actor(), "user.invited", f"user:{user.id}",
                         detail={"role": user.role})
            shown_link = _link(token)
            flash(_("Invitation made for %(email)s. Give them the link below; it works once, "
                    "for 7 days.", email=user.email), "success")
            form = InviteForm(formdata=None)
            form.advocate.choices = _advocate_choices()
    rows = get_session().scalars(select(User).where(User.site_id == site.id)
                                 .order_by(User.role, User.email))
    return render_template("admin/users.html", form=form, action_form=ActionForm(),
                           users=[users_service.describe(u) for u in rows],
                           shown_link=shown_link, link_purpose="invite")


@bp.post("/admin/users/<int:user_id>/<any('disable', 'enable', 'reset-password', "
         "'reset-second-factor'):action>")
@role_required("admin")
def user_action(user_id: int, action: str) -> Any:
    """Disable, enable, reset the password (a one-time link) or the second factor."""
    user = get_user(user_id)
    form = ActionForm()
    if not form.validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("dashboard.users"))
    me = current_user()
    assert me is not None
    if user.id == me.id and action in ("disable", "reset-second-factor"):
        flash(_("You cannot do that to your own account; ask another admin."), "error")
        return redirect(url_for("dashboard.users"))
    db = get_session()
    shown_link = None
    if action in ("disable", "enable"):
        users_service.set_active(user, action == "enable")
        flash(_("%(email)s is now %(state)s.", email=user.email,
                state=_("active") if user.active else _("disabled")), "success")
    elif action == "reset-password":
        token = users_service.issue_link(db, user, "reset", actor=me.actor, ttl=RESET_TTL)
        shown_link = _link(token)
        flash(_("The old password of %(email)s no longer works. Give them the link below; "
                "it works once, for 24 hours.", email=user.email), "success")
    else:
        users_service.reset_second_factor(user)
        flash(_("%(email)s sets up two-step log-in again at their next log-in.",
                email=user.email), "success")
    audit.record(db, me.actor, f"user.{action}", f"user:{user.id}")
    if shown_link is None:
        return redirect(url_for("dashboard.users"))
    site = current_site()
    form_new = InviteForm(formdata=None)
    form_new.advocate.choices = _advocate_choices()
    rows = db.scalars(select(User).where(User.site_id == site.id).order_by(User.role, User.email))
    return render_template("admin/users.html", form=form_new, action_form=ActionForm(),
                           users=[users_service.describe(u) for u in rows],
                           shown_link=shown_link, link_purpose="reset")


# --- roster -------------------------------------------------------------------------------

@bp.route("/admin/roster", methods=["GET", "POST"])
@role_required("admin")
def roster() -> Any:
    """Upload the member roster (CSV) with a progress bar and a per-row error report."""
    site = current_site()
    employer_id, employer_name = site.employer_id, site.employer.name
    form = RosterForm()
    report = None
    if form.validate_on_submit():
        actor = _actor()
        try:
            text = decode_roster(form.file.data.read())
            # The import writes in chunks through separate sessions (db.release_request_session).
            release_request_session()
            report = import_roster(get_db(), employer_id, io.StringIO(text, newline=""),
                                   partial=form.partial.data, dry_run=form.dry_run.data,
                                   actor=actor, max_rows=current_settings().roster_max_rows)
        except (RosterFileError, RosterImportError) as exc:
            attach_errors(form, exc)  # on the file field
    return render_template("admin/roster.html", form=form, report=report,
                           employer_name=employer_name, columns=COLUMNS,
                           max_mb=ROSTER_MAX_BYTES // (1024 * 1024),
                           max_rows=current_settings().roster_max_rows,
                           errors_shown=ROSTER_ERRORS_SHOWN), 422 if form.errors else 200


# --- audit log ----------------------------------------------------------------------------

@bp.get("/admin/audit")
@role_required("admin", "operator")
def audit_log() -> Any:
    """Who viewed or changed what at the admin's site (operators: everywhere), newest first."""
    actor = (request.args.get("actor") or "").strip() or None
    action = (request.args.get("action") or "").strip() or None
    scope = site_scope()
    found = audit.page(get_session(), scope, before=_cursor("before"), after=_cursor("after"),
                       oldest=request.args.get("oldest") == "1", limit=AUDIT_PAGE,
                       actor=actor, action=action)
    # An operator reads every site's entries: each row then says whose it is.
    site_names = {s.id: s.name for s in get_session().scalars(select(Site))} \
        if scope.server_wide else None
    return render_template("admin/audit.html", found=found, rows=found.rows,
                           cap=audit.COUNT_CAP, actor=actor or "",
                           action=action or "", site_names=site_names)


def _cursor(name: str) -> int | None:
    """An entry id from the query string (a page's edge), or None when absent or not a number."""
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None
