"""The check-in desk: scan a ticket (USB scanner, typed code or camera), search, walk-ins,
no-shows, and a live view of the day that refreshes itself without reloading the page.

Tickets are verified with the site's own keys, so the desk keeps working when the server has
lost its connection to central. The live view's refresh is ``passive``: it never counts as
activity, so an unattended page still times out (after the two-minute warning).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse
from wtforms.fields.choices import SelectChoice

from ..app_settings import current as current_settings
from ..db import get_read_session, get_session
from ..errors import wants_json
from ..models import utcnow
from ..services import checkin as svc
from ..services.errors import ServiceError
from ..services.events import find_slot
from ..services.signing import KeyStore
from . import bp, localtime
from .auth import current_user, passive, role_required, safe_next
from .events import status_label
from .forms import (
    TICKET_MAX_LENGTH,
    ConfirmNoShowsForm,
    ScanForm,
    SlotActionForm,
    UndoCheckInForm,
    WalkInForm,
)
from .i18n import attach_errors, refusal
from .lookup import current_site
from .nav import add_nav

STAFF = ("admin", "coordinator")

add_nav("dashboard.checkin", _l("Check-in"), STAFF, order=11)

# What the desk reads for each refusal (services.checkin.REASONS).
REASON_TEXT = {
    "malformed": _l("This is not a ticket code. Scan the QR code again, or search by name."),
    "forged": _l("This ticket's signature does not match: it is forged or altered. "
                 "Search by name instead."),
    "wrong_purpose": _l("This QR code is not an appointment ticket (it may be an advocate "
                        "link)."),
    "expired": _l("This ticket has expired."),
    "not_yet_valid": _l("This ticket is not valid yet: check this computer's clock."),
    "revoked": _l("This ticket was cancelled: its booking was cancelled or moved."),
    "unknown_booking": _l("This ticket names no booking at this site."),
    "other_day": _l("This ticket is for another day."),
    "cancelled": _l("This booking was cancelled."),
    "waitlisted": _l("This member is on the waitlist, not in a seat. Promote them first if "
                     "a seat is free."),
    "no_show": _l("The slot has ended and this booking was marked a no-show. If they are "
                  "here, check them in as arrived late."),
}


def _actor() -> str:
    user = current_user()
    assert user is not None  # role_required let us in
    return user.actor


def _site_id() -> int:
    """The id of current_site(), without reading the site when the user has one."""
    user = current_user()
    assert user is not None  # role_required let us in
    return user.site_id if user.site_id is not None else current_site().id


def _ring() -> Any:
    # No revoked list: check_in_ticket asks the scanned ticket's booking instead (``grace``).
    return KeyStore(Path(current_settings().signing_key_dir)).ring()


def _slot_choices(day: dict[str, Any]) -> tuple[list[SelectChoice], str | None]:
    """The slots a walk-in can still go to (in time order), and the one to offer first.

    The first offered is the next slot with a free seat: the first slot of the list is often
    running and full, and a walk-in cannot wait for a slot that has started, so choosing it
    would be refused. With no free seat anywhere, the first slot not yet started (its
    waitlist is still open).
    """
    lang = _lang()
    rows = []
    for event in day["events"]:
        title = (event["title_es"] or event["title"]) if lang == "es" else event["title"]
        for slot in event["slots"]:
            if slot["cancelled"] or slot["state"] == "ended":
                continue
            if slot["free"]:
                label = _("%(time)s · %(free)d free · %(title)s", time=slot["start_local"],
                          title=title, free=slot["free"])
            elif slot["state"] == "upcoming":
                label = _("%(time)s · full, waitlist · %(title)s", time=slot["start_local"],
                          title=title)
            else:
                label = _("%(time)s · full, started · %(title)s", time=slot["start_local"],
                          title=title)
            rows.append((slot["start_at"], slot, SelectChoice(slot["slot_id"], label)))
    rows.sort(key=lambda row: row[0])  # the day view groups slots by event, not by time
    default = next((s["slot_id"] for _at, s, _c in rows if s["free"]), None) or next(
        (s["slot_id"] for _at, s, _c in rows if s["state"] == "upcoming"), None)
    return [choice for _at, _s, choice in rows], default


def _lang() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "en")


def describe(result: svc.CheckedIn, zone: ZoneInfo | None = None) -> str:
    """One sentence for the desk about a check-in, walk-in or waitlisting.

    Times are in ``zone`` when the caller knows the site's, else in the user's site's.
    """
    def hour(value: datetime | None) -> str:
        if zone is None or value is None:
            return localtime(value, "%H:%M")
        return value.astimezone(zone).strftime("%H:%M")

    name = f"{result.first_name} {result.last_name}"
    title = (result.event_title_es or result.event_title) if _lang() == "es" \
        else result.event_title
    if result.status == "waitlisted":
        return str(_("%(name)s is on the waitlist for %(title)s at %(time)s (number %(n)d).",
                 name=name, title=title, time=hour(result.start_at),
                 n=result.waitlist_position or 0))
    if result.already:
        return str(_("%(name)s was already checked in at %(at)s.", name=name,
                     at=hour(result.checked_in_at)))
    if result.late:
        return str(_("Checked in as arrived late: %(name)s, %(title)s at %(time)s.",
                     name=name, title=title, time=hour(result.start_at)))
    return str(_("Checked in: %(name)s, %(title)s at %(time)s.", name=name, title=title,
                 time=hour(result.start_at)))


def refusal_text(exc: svc.CheckInRefused) -> str:
    """The desk's sentence for a refused check-in."""
    text = str(REASON_TEXT.get(exc.reason, _l("Check-in refused.")))
    if exc.at is not None:
        text += " " + _("Its time: %(when)s.", when=localtime(exc.at, "%a %Y-%m-%d %H:%M"))
    return text


@bp.get("/checkin")
@role_required(*STAFF)
def checkin() -> str:
    """The check-in desk."""
    site = current_site()
    query = request.args.get("q", "").strip()
    matches: list[svc.MemberMatch] = []
    search_error = None
    if query:
        try:
            matches = svc.search(get_session(), site, query)
        except ServiceError as exc:
            search_error = _("Type at least %(n)d characters.", n=svc.SEARCH_MIN_CHARS) \
                if exc.errors[0]["field"] == "q" else refusal(exc.errors[0]["message"])
    day = svc.day_view(get_session(), site)
    walkin = WalkInForm(formdata=None)
    walkin.slot_id.choices, walkin.slot_id.data = _slot_choices(day)
    walkin_member = None
    if request.args.get("walkin"):
        walkin_member = svc.find_member(get_session(), site, request.args["walkin"])
        walkin.member_id.data = walkin_member.public_id
    return render_template("checkin/index.html", scan_form=ScanForm(formdata=None), q=query,
                           matches=matches, search_error=search_error, day=day,
                           walkin=walkin, walkin_member=walkin_member, action=SlotActionForm())


def _answer(ok: bool, message: str, result: svc.CheckedIn | None = None,
            reason: str | None = None, status: int = 200,
            late_url: str | None = None) -> BaseResponse:
    """JSON for the page's script (no reload), else a flash and back where the form was."""
    if wants_json():
        body: dict[str, Any] = {"ok": ok, "message": message}
        if result is not None:
            body["result"] = result.as_dict()
        if reason is not None:
            body["reason"] = reason
        if late_url is not None:
            # A no-show at the desk: the page offers "check in as arrived late" in one tap.
            body["late_url"] = late_url
            body["late_label"] = _("Check in as arrived late")
        response = jsonify(body)
        response.status_code = status
        return response
    kind = "success" if ok and not (result and result.already) else ("warning" if ok
                                                                      else "error")
    flash(message, kind)
    return redirect(safe_next(request.form.get("next")) or url_for("dashboard.checkin"))


def _refused(exc: svc.CheckInRefused) -> BaseResponse:
    late_url = url_for("dashboard.checkin_late", booking_id=exc.booking_id) \
        if exc.reason == "no_show" and exc.booking_id else None
    return _answer(False, refusal_text(exc), reason=exc.reason, status=409, late_url=late_url)


@bp.post("/checkin/scan")
@role_required(*STAFF)
def checkin_scan() -> BaseResponse:
    """Verify a scanned ticket with the site's keys and check its booking in."""
    # Its one field read directly: building a WTForms form for it cost about a tenth of the
    # scan's CPU, and its CSRF token was checked before the view, as for every dashboard
    # POST (CSRFProtect; the form would have skipped its own check for that reason).
    ticket = request.form.get("ticket", "")
    if len(ticket) > TICKET_MAX_LENGTH:
        return _answer(False, _("The scan could not be read; try again."), reason="malformed",
                       status=422)
    now = utcnow()
    try:
        # Verified and read first, before SQLite's write lock (a refusal never takes it);
        # then the check-in's three statements under the lock.
        found = svc.read_ticket(get_read_session(), _site_id(), ticket,
                                _ring(), now,
                                grace=timedelta(days=current_settings().ticket_grace_days))
        result = svc.check_in_found(get_session(), found, _actor(), now)
    except svc.CheckInRefused as exc:
        return _refused(exc)
    # The booking's site is the desk's (read_ticket checked it): its zone, not looked up.
    return _answer(True, describe(result, ZoneInfo(found.timezone)), result)


@bp.post("/checkin/bookings/<booking_id>")
@role_required(*STAFF)
def checkin_booking(booking_id: str) -> BaseResponse:
    """Check in a booking found by search (no ticket at hand)."""
    if not SlotActionForm().validate_on_submit():
        return _answer(False, _("The form expired; try again."), status=400)
    try:
        result = svc.check_in_booking(get_session(), current_site(), booking_id, _actor())
    except svc.CheckInRefused as exc:
        return _refused(exc)
    return _answer(True, describe(result), result)


@bp.post("/checkin/bookings/<booking_id>/late")
@role_required(*STAFF)
def checkin_late(booking_id: str) -> BaseResponse:
    """Check in a no-show who came after all, as arrived late (audited as such)."""
    if not SlotActionForm().validate_on_submit():
        return _answer(False, _("The form expired; try again."), status=400)
    try:
        result = svc.check_in_booking(get_session(), current_site(), booking_id, _actor(),
                                      late=True)
    except svc.CheckInRefused as exc:
        return _answer(False, refusal_text(exc), reason=exc.reason, status=409)
    return _answer(True, describe(result), result)


@bp.post("/checkin/bookings/<booking_id>/undo")
@role_required(*STAFF)
def checkin_undo(booking_id: str) -> BaseResponse:
    """Take back a check-in made by mistake; the reason is required and audited."""
    form = UndoCheckInForm()
    back = safe_next(form.next.data) or url_for("dashboard.checkin")
    if not form.validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(back)
    try:
        result = svc.undo_check_in(get_session(), current_site(), booking_id,
                                   form.reason.data or "", _actor())
    except ServiceError as exc:
        err = exc.errors[0]
        label = _("Reason for undoing the check-in") if err["field"] == "reason" else ""
        flash(f"{label}: {refusal(err['message'])}" if label else refusal(err["message"]),
              "error")
        return redirect(back)
    flash(_("Check-in undone: %(name)s is %(status)s again.",
            name=f"{result.first_name} {result.last_name}",
            status=status_label(result.status).lower()), "success")
    return redirect(back)


@bp.post("/checkin/walk-in")
@role_required(*STAFF)
def checkin_walk_in() -> Any:
    """Seat a walk-in in a free seat (checked in at once) or put them on the waitlist."""
    site = current_site()
    day = svc.day_view(get_session(), site)
    form = WalkInForm()
    form.slot_id.choices, _default = _slot_choices(day)
    if form.validate_on_submit():
        try:
            db = get_session()
            if form.member_id.data:
                member = svc.find_member(db, site, form.member_id.data)
            else:
                member = svc.find_or_add_member(db, site, svc.NewMember(
                    employee_id=form.employee_id.data or "", first_name=form.first_name.data
                    or "", last_name=form.last_name.data or "",
                    birth_date=form.birth_date.data), _actor())
            slot = find_slot(db, site.id, form.slot_id.data or "")
            result = svc.walk_in(db, site, member, slot, _actor())
        except ServiceError as exc:
            attach_errors(form, exc)
        else:
            return _answer(True, describe(result), result)
    walkin_member = None
    if form.member_id.data:
        try:
            walkin_member = svc.find_member(get_session(), site, form.member_id.data)
        except ServiceError:
            form.member_id.data = ""
    # The refusal is shown beside the form and focused there (not flashed at the top, out
    # of view), so the scan field must not take the focus this time.
    scan_form = ScanForm(formdata=None)
    scan_form.ticket.render_kw = {k: v for k, v in (scan_form.ticket.render_kw or {}).items()
                                  if k != "autofocus"}
    return render_template("checkin/index.html", scan_form=scan_form, q="",
                           matches=[], search_error=None, day=day, walkin=form,
                           walkin_member=walkin_member, walkin_refused=True,
                           action=SlotActionForm()), 422


@bp.route("/checkin/no-shows", methods=["GET", "POST"])
@role_required(*STAFF)
def checkin_no_shows() -> Any:
    """Ask first, naming who will be marked; on yes, mark the unclaimed seats as no-shows."""
    site = current_site()
    db = get_session()
    slot_id = request.values.get("slot_id") or ""
    try:
        slot = find_slot(db, site.id, slot_id) if slot_id else None
    except ServiceError:
        abort(404)
    form = ConfirmNoShowsForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _answer(False, _("The form expired; try again."), status=400)
        try:
            count = svc.mark_no_shows(db, site, slot, _actor())
        except ServiceError as exc:
            return _answer(False, refusal(exc.errors[0]["message"]), status=409)
        return _answer(True, _("%(n)d no-shows marked.", n=count))
    return render_template("checkin/no_shows.html", form=form, slot=slot,
                           due=svc.due_no_shows(db, site, slot))


@bp.get("/checkin/live.json")
@role_required(*STAFF)
@passive
def checkin_live() -> BaseResponse:
    """The day's seats, arrivals and waitlists; a background refresh, not activity."""
    return jsonify(svc.day_view(get_session(), current_site()))
