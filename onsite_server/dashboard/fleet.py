"""The kiosk fleet: pair a new kiosk (code and QR), the fleet list, revoke; sync health."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from shared.qr import qr_svg
from shared.schemas.pairing import PairingQr

from ..app_settings import current as current_settings
from ..db import get_session
from ..services import central_keys
from ..services import fleet as fleet_service
from ..services.errors import ServiceError
from ..services.pairing import issue_pairing_code, revoke_kiosk
from ..services.signing import KeyStore
from . import bp
from .auth import current_user, role_required, safe_next
from .forms import ActionForm, PairForm, RevokeForm
from .lookup import current_site, get_kiosk, site_scope
from .nav import add_nav

add_nav("dashboard.fleet", _l("Kiosks"), ("admin", "coordinator"), order=40)
add_nav("dashboard.sync_health", _l("Sync health"), ("admin", "operator"), order=41)


def _actor() -> str:
    user = current_user()
    assert user is not None  # role_required ran
    return user.actor


def pairing_qr_text(server_url: str, code: str) -> str:
    """What the pairing QR holds: this server's address and the one-time code (JSON)."""
    return PairingQr(server_url=server_url, pairing_code=code).text()


@bp.get("/fleet")
@role_required("admin", "coordinator")
def fleet() -> Any:
    """Every paired kiosk: last heartbeat (stale ones highlighted), version, outbox, disk."""
    site = current_site()
    return render_template("fleet/list.html", rows=fleet_service.fleet(get_session(), site.id),
                           pair_form=PairForm(), action_form=ActionForm(), site=site,
                           stale_minutes=int(fleet_service.STALE_AFTER.total_seconds() // 60))


@bp.post("/fleet/pair")
@role_required("admin", "coordinator")
def pair() -> Any:
    """Issue a one-time pairing code and show it with its QR code."""
    form = PairForm()
    if not form.validate_on_submit():
        site = current_site()
        return render_template("fleet/list.html",
                               rows=fleet_service.fleet(get_session(), site.id),
                               pair_form=form, action_form=ActionForm(), site=site,
                               stale_minutes=int(fleet_service.STALE_AFTER.total_seconds()
                                                 // 60)), 422
    ttl = current_settings().pairing_code_ttl_seconds
    code = issue_pairing_code(get_session(), current_site(), label=form.label.data or "kiosk",
                              place=form.place.data or None, ttl_seconds=ttl, actor=_actor())
    server_url = request.host_url
    return render_template("fleet/pair.html", code=code, label=form.label.data,
                           place=form.place.data, server_url=server_url.rstrip("/"),
                           qr=qr_svg(pairing_qr_text(server_url, code)),
                           minutes=ttl // 60)


@bp.route("/fleet/<public_id>/revoke", methods=["GET", "POST"])
@role_required("admin", "coordinator")
def revoke(public_id: str) -> Any:
    """Ask first, naming what revoking does; on yes, its next call to the server is refused."""
    kiosk = get_kiosk(public_id)
    form = RevokeForm()
    if kiosk.revoked_at is not None:
        return redirect(url_for("dashboard.fleet"))
    if request.method == "POST":
        if form.validate_on_submit():
            revoke_kiosk(get_session(), kiosk, actor=_actor())
            flash(_("Kiosk %(label)s is revoked. Pair it again to use it.", label=kiosk.label),
                  "success")
        return redirect(url_for("dashboard.fleet"))
    return render_template("fleet/revoke.html", kiosk=kiosk, form=form)


@bp.get("/sync")
@role_required("admin", "operator")
def sync_health() -> Any:
    """The site's outbox to central (operators: the server's): counts, dead letters, retry;
    and the QR signing keys, with whether central holds each."""
    keys = KeyStore(Path(current_settings().signing_key_dir))
    return render_template("fleet/sync.html",
                           health=fleet_service.sync_health(get_session(), site_scope()),
                           keys=central_keys.overview(keys), action_form=ActionForm())


@bp.post("/sync/<int:message_id>/retry")
@role_required("admin", "operator")
def retry(message_id: int) -> Any:
    """Queue a dead letter of the site again, due now."""
    if ActionForm().validate_on_submit():
        try:
            row = fleet_service.retry_dead(get_session(), site_scope(), message_id,
                                           actor=_actor())
        except ServiceError:
            flash(_("That message is no longer in the dead-letter list."), "error")
        else:
            flash(_("Queued again: %(key)s", key=row.key), "success")
    return redirect(url_for("dashboard.sync_health"))


@bp.post("/alerts/<int:alert_id>/clear")
@role_required("admin", "operator")
def clear_alert(alert_id: int) -> Any:
    """Dismiss an operational alert once its cause is dealt with (it is raised again if not)."""
    if ActionForm().validate_on_submit():
        try:
            fleet_service.clear_alert(get_session(), site_scope(), alert_id, actor=_actor())
        except ServiceError:
            flash(_("That alert is already cleared."), "info")
    return redirect(safe_next(request.form.get("next")) or url_for("dashboard.sync_health"))
