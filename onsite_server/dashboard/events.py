"""Events pages: list, create and edit, slot runs, capacity, cancel, waitlist, roster and calendar.

Each view parses its form, calls ``services.events`` and renders or redirects. Rows are
loaded through the site-scoped finders, so another site's event or slot answers 404.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from ..db import get_session
from ..models import Event, Slot, utcnow
from ..services import checkin as checkin_svc
from ..services import events as svc
from ..services.errors import ServiceError
from ..services.spreadsheet import for_excel
from . import bp, site_zone
from .auth import current_user, role_required
from .forms import (
    KIND_LABELS,
    CapacityForm,
    ConfirmForm,
    EventForm,
    PromoteForm,
    SlotActionForm,
    SlotsForm,
    UndoCheckInForm,
)
from .i18n import attach_errors, refusal
from .lookup import current_site
from .nav import add_nav

STAFF = ("admin", "coordinator")
STATUS_LABELS = {"booked": _l("Booked"), "waitlisted": _l("Waitlisted"),
                 "checked_in": _l("Checked in"), "no_show": _l("No-show"),
                 "cancelled": _l("Cancelled"), "late": _l("Checked in, arrived late")}

add_nav("dashboard.events", _l("Events"), STAFF, order=10)


@bp.app_template_global()
def event_title(event: Event) -> str:
    """The event's title in the page's language (English when there is no Spanish one)."""
    from flask_babel import get_locale

    if str(get_locale() or "en") == "es" and event.title_es:
        return event.title_es
    return event.title


@bp.app_template_global()
def kind_label(kind: str) -> str:
    """The translated name of an event's service."""
    return str(KIND_LABELS.get(kind, kind))


@bp.app_template_global()
def status_label(status: str) -> str:
    """The translated name of a booking status."""
    return str(STATUS_LABELS.get(status, status))


def _actor() -> str:
    user = current_user()
    assert user is not None  # role_required let us in
    return user.actor


def _event(event_id: str) -> Event:
    try:
        return svc.find_event(get_session(), current_site().id, event_id)
    except ServiceError:
        abort(404)


def _slot(event: Event, slot_id: str) -> Slot:
    try:
        slot = svc.find_slot(get_session(), current_site().id, slot_id)
    except ServiceError:
        abort(404)
    if slot.event_id != event.id:
        abort(404)
    return slot


@bp.get("/events")
@role_required(*STAFF)
def events() -> str:
    """The site's upcoming events (and past ones on request)."""
    include_past = request.args.get("past") == "1"
    rows = svc.list_events(get_session(), current_site(), include_past=include_past)
    return render_template("events/list.html", rows=rows, include_past=include_past)


@bp.route("/events/new", methods=["GET", "POST"])
@role_required(*STAFF)
def event_new() -> Any:
    """Create an event."""
    form = EventForm()
    if form.validate_on_submit():
        try:
            event = svc.create_event(get_session(), current_site(), form.data_input(), _actor())
        except ServiceError as exc:
            attach_errors(form, exc)
        else:
            flash(_("Event created. Now add its slots."), "success")
            return redirect(url_for("dashboard.event_detail", event_id=event.public_id))
    return render_template("events/form.html", form=form, event=None), 422 if form.errors else 200


@bp.route("/events/<event_id>/edit", methods=["GET", "POST"])
@role_required(*STAFF)
def event_edit(event_id: str) -> Any:
    """Edit an event's title, service, place and description."""
    event = _event(event_id)
    form = EventForm(obj=event)
    if form.validate_on_submit():
        try:
            svc.update_event(get_session(), event, form.data_input(), _actor())
        except ServiceError as exc:
            attach_errors(form, exc)
        else:
            flash(_("Event saved."), "success")
            return redirect(url_for("dashboard.event_detail", event_id=event.public_id))
    return render_template("events/form.html", form=form, event=event), \
        422 if form.errors else 200


def _detail(event: Event, slots_form: SlotsForm | None = None, status: int = 200) -> Any:
    zone = site_zone()
    if slots_form is None:
        slots_form = SlotsForm(formdata=None, day=utcnow().astimezone(zone).date())
    return render_template(
        "events/detail.html", event=event, slots_form=slots_form,
        waiting=svc.waiting_counts(get_session(), event), now=utcnow(),
        capacity_form=CapacityForm(formdata=None), zone=zone), status


@bp.get("/events/<event_id>")
@role_required(*STAFF)
def event_detail(event_id: str) -> Any:
    """An event with its slots, seat counts and the forms that change them."""
    return _detail(_event(event_id))


@bp.post("/events/<event_id>/slots")
@role_required(*STAFF)
def slots_add(event_id: str) -> Any:
    """Generate a run of slots."""
    event = _event(event_id)
    form = SlotsForm()
    if form.validate_on_submit():
        plan = svc.SlotPlan(day=form.day.data, start=form.start.data, end=form.end.data,
                            every=form.every.data or 0, capacity=form.capacity.data or 0)
        try:
            made = svc.generate_slots(get_session(), event, plan, site_zone(), _actor())
        except ServiceError as exc:
            attach_errors(form, exc)
        else:
            flash(_("%(n)d slots added.", n=len(made)), "success")
            return redirect(url_for("dashboard.event_detail", event_id=event.public_id))
    return _detail(event, form, 422)


@bp.post("/events/<event_id>/slots/<slot_id>/capacity")
@role_required(*STAFF)
def slot_capacity(event_id: str, slot_id: str) -> BaseResponse:
    """Change a slot's seats; seats added go to the waitlist in order."""
    event = _event(event_id)
    slot = _slot(event, slot_id)
    form = CapacityForm()
    if not form.validate_on_submit() or form.capacity.data is None:
        flash(_("Seats must be a whole number from 0 to %(n)d.", n=svc.MAX_CAPACITY), "error")
    else:
        try:
            promoted = svc.set_capacity(get_session(), slot, form.capacity.data, _actor())
        except ServiceError as exc:
            flash(refusal(exc.errors[0]["message"]), "error")
        else:
            flash(_("Seats changed to %(n)d.", n=form.capacity.data) + (
                " " + _("%(n)d moved up from the waitlist and will be told.", n=len(promoted))
                if promoted else ""), "success")
    return redirect(url_for("dashboard.event_detail", event_id=event.public_id))


@bp.route("/events/<event_id>/slots/<slot_id>/cancel", methods=["GET", "POST"])
@role_required(*STAFF)
def slot_cancel(event_id: str, slot_id: str) -> Any:
    """Show who a slot's cancellation reaches; on yes, cancel it and notify them."""
    event = _event(event_id)
    slot = _slot(event, slot_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            affected = svc.cancel_slot(get_session(), slot, _actor())
        except ServiceError as exc:
            flash(refusal(exc.errors[0]["message"]), "error")
        else:
            flash(_("Slot cancelled. %(n)d members will be told through their advocate "
                    "system.", n=len(affected)), "success")
        return redirect(url_for("dashboard.event_detail", event_id=event.public_id))
    affected = svc.affected_by(get_session(), [slot])
    return render_template("events/cancel.html", event=event, slot=slot, affected=affected,
                           form=form)


@bp.route("/events/<event_id>/cancel", methods=["GET", "POST"])
@role_required(*STAFF)
def event_cancel(event_id: str) -> Any:
    """Show who an event's cancellation reaches; on yes, cancel it and notify them."""
    event = _event(event_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        affected = svc.cancel_event(get_session(), event, _actor())
        flash(_("Event cancelled. %(n)d members will be told through their advocate system.",
                n=len(affected)), "success")
        return redirect(url_for("dashboard.event_detail", event_id=event.public_id))
    affected = svc.affected_by(get_session(), event.slots)
    return render_template("events/cancel.html", event=event, slot=None, affected=affected,
                           form=form)


@bp.get("/events/<event_id>/waitlist")
@role_required(*STAFF)
def event_waitlist(event_id: str) -> str:
    """Each slot's waitlist in order, with promotion where a seat is free."""
    event = _event(event_id)
    return render_template("events/waitlist.html", event=event,
                           slots=svc.waitlist(get_session(), event), form=PromoteForm())


@bp.post("/events/<event_id>/slots/<slot_id>/promote")
@role_required(*STAFF)
def slot_promote(event_id: str, slot_id: str) -> BaseResponse:
    """Promote the first in line (or the booking named) into a free seat."""
    event = _event(event_id)
    slot = _slot(event, slot_id)
    form = PromoteForm()
    if form.validate_on_submit():
        try:
            booking = svc.promote(get_session(), slot, _actor(), form.booking_id.data or None)
        except ServiceError as exc:
            flash(refusal(exc.errors[0]["message"]), "error")
        else:
            flash(_("%(name)s moved up from the waitlist and will be told.",
                    name=" ".join((booking.member.first_name, booking.member.last_name))),
                  "success")
    if request.form.get("back") == "checkin":
        return redirect(url_for("dashboard.checkin"))
    return redirect(url_for("dashboard.event_waitlist", event_id=event.public_id))


@bp.get("/events/<event_id>/people")
@role_required(*STAFF)
def event_people(event_id: str) -> str:
    """Who is coming: each slot's people with their state, and the door lists to print.

    ``?layout=slots`` prints each slot's door list on a page of its own; the default prints
    the whole event on as few pages as it fits (one, for a usual clinic).
    """
    event = _event(event_id)
    layout = "slots" if request.args.get("layout") == "slots" else "event"
    return render_template("events/people.html", event=event, layout=layout, now=utcnow(),
                           slots=checkin_svc.who_is_coming(get_session(), event),
                           action=SlotActionForm(), undo=UndoCheckInForm(formdata=None))


@bp.get("/events/<event_id>/roster.csv")
@role_required(*STAFF)
def event_roster(event_id: str) -> Response:
    """The roster as CSV: names, times and booking status, never health data."""
    event = _event(event_id)
    body = svc.roster_csv(get_session(), event, site_zone(), actor=_actor())
    return Response(for_excel(body), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="roster-{event.public_id[:8]}.csv"',
        "Cache-Control": "no-store"})


@bp.get("/events/<event_id>/calendar.ics")
@role_required(*STAFF)
def event_calendar(event_id: str) -> Response:
    """The event's slots as an iCalendar file."""
    event = _event(event_id)
    lang = "es" if request.args.get("lang") == "es" else "en"
    body = svc.calendar_ics(event, lang=lang)
    return Response(body, content_type="text/calendar; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="event-{event.public_id[:8]}.ics"'})
