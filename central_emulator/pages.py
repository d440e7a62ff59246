"""Pages for people: the advocate-link page, the ticket page, and an advocate's referrals."""

from __future__ import annotations

import base64
from datetime import datetime

from flask import Blueprint, Response, current_app, jsonify, render_template, url_for

from shared.qr import qr_svg
from shared.tokens import Purpose, Token, TokenError, verify

from . import get_site_keys, get_store
from .services import (
    AdvocateCard,
    appointment_for,
    calls_for,
    find_advocate,
    ics,
    referrals_for,
    request_call,
)

bp = Blueprint("pages", __name__)

# Plain words for each refusal; the status says whether trying again later could help.
_REFUSALS: dict[str, tuple[int, str]] = {
    "expired": (410, "This link has expired. Ask at the kiosk for a new one."),
    "revoked": (410, "This link has been withdrawn, for example because you have a new "
                     "advocate. Ask at the kiosk for a new one."),
    "not_yet_valid": (403, "This link is not valid yet. Check the date on your phone."),
    "wrong_purpose": (403, "This code is not meant for this page."),
    "unknown_key": (403, "This link was not issued by a workplace we know."),
    "retired_key": (410, "This link was withdrawn by the workplace that issued it. Ask at the "
                         "kiosk for a new one."),
    "bad_signature": (403, "This link is not valid: it was changed or not issued by us. "
                           "Scan the code again or ask at the kiosk."),
    "malformed": (400, "This is not a valid link. Scan the code again."),
    "non_canonical": (400, "This is not a valid link. Scan the code again."),
}


@bp.after_request
def _private(response: Response) -> Response:
    """Keep token pages out of caches, search engines and other sites' referrer logs."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Robots-Tag", "noindex")
    return response


class Refused(Exception):
    """A page that cannot be shown: a title, a plain reason, a stable code and a status."""

    def __init__(self, title: str, reason: str, code: str, status: int) -> None:
        super().__init__(reason)
        self.title, self.reason, self.code, self.status = title, reason, code, status


@bp.app_errorhandler(Refused)
def _refused_page(error: Refused) -> tuple[str, int]:
    return render_template("refused.html", title=error.title, reason=error.reason,
                           code=error.code), error.status


def _check(token: str, purpose: Purpose, title: str) -> Token:
    """Verify a token with every key received from onsite servers, or refuse the page.

    A key id never received sends central to the sites' published key sets first (where
    registered), and the token is checked once more.
    """
    store = get_store(current_app)
    try:
        try:
            return verify(token, store.verify_ring(), purpose=purpose)
        except TokenError as exc:
            if exc.reason != "unknown_key" or not get_site_keys(current_app).refresh(store):
                raise
        return verify(token, store.verify_ring(), purpose=purpose)
    except TokenError as exc:
        status, text = _REFUSALS.get(exc.reason, (403, "This link is not valid."))
        raise Refused(title, text, exc.reason, status) from exc


def _advocate_for(token: str) -> tuple[Token, AdvocateCard]:
    checked = _check(token, Purpose.ADVOCATE_LINK, "Link not valid")
    advocate = find_advocate(get_store(current_app), checked.fields.get("advocate", ""))
    if advocate is None:
        raise Refused("Advocate not found", "We could not find the advocate this link names. "
                      "Ask at the kiosk.", "unknown_advocate", 404)
    return checked, advocate


@bp.get("/connect/<token>")
def connect(token: str) -> str:
    """The page a member's advocate-link QR opens: who their advocate is, and how to reach them."""
    _, advocate = _advocate_for(token)
    return render_template("connect.html", advocate=advocate, token=token)


@bp.post("/connect/<token>/call")
def call(token: str) -> str:
    """Record the member's request for a call, once per link, and thank them."""
    checked, advocate = _advocate_for(token)
    first = request_call(get_store(current_app), checked, advocate)
    return render_template("called.html", advocate=advocate, first=first)


def _ticket_url(token: str) -> str:
    return url_for("pages.ticket", token=token, _external=True)


@bp.get("/ticket/<token>")
def ticket(token: str) -> str:
    """The ticket page: the appointment (when synced), its QR code and a calendar file."""
    checked = _check(token, Purpose.TICKET, "Ticket not valid")
    appointment = appointment_for(get_store(current_app), checked.subject)
    svg = qr_svg(_ticket_url(token))
    qr = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return render_template("ticket.html", appointment=appointment, qr=qr,
                           booking=checked.subject, token=token)


def _when(start: datetime, end: datetime) -> str:
    """Say when in the appointment's own offset: the time on the site's clocks."""
    offset = start.strftime("%z")
    zone = "UTC" if offset in ("", "+0000") else f"UTC{offset[:3]}:{offset[3:]}"
    return f"{start:%A %-d %B %Y}, {start:%H:%M}–{end:%H:%M} ({zone})"


bp.add_app_template_filter(lambda a: _when(a.start, a.end), "when")


@bp.get("/ticket/<token>.ics")
def ticket_ics(token: str) -> Response:
    """The appointment as an iCalendar file (404 until the Appointment has been synced)."""
    checked = _check(token, Purpose.TICKET, "Ticket not valid")
    appointment = appointment_for(get_store(current_app), checked.subject)
    if appointment is None:
        raise Refused("No details yet", "Your booking is confirmed; its details are not here "
                      "yet. Try again later.", "unknown_appointment", 404)
    return Response(ics(appointment, _ticket_url(token)), content_type="text/calendar; "
                    "charset=utf-8", headers={"Content-Disposition":
                                              'attachment; filename="appointment.ics"'})


@bp.get("/advocates/<advocate_id>/referrals")
def referrals_page(advocate_id: str) -> str:
    """The referrals an advocate would see, crisis first, as a page."""
    store = get_store(current_app)
    advocate = find_advocate(store, advocate_id)
    if advocate is None:
        raise Refused("Advocate not found", "No advocate has this identifier.",
                      "unknown_advocate", 404)
    return render_template("referrals.html", advocate=advocate,
                           referrals=referrals_for(store, advocate),
                           calls=calls_for(store, advocate))


@bp.get("/api/advocates/<advocate_id>/referrals")
def referrals_json(advocate_id: str) -> tuple[Response, int]:
    """The referrals an advocate would see, crisis first, as JSON."""
    store = get_store(current_app)
    advocate = find_advocate(store, advocate_id)
    if advocate is None:
        return jsonify({"error": "unknown advocate", "advocate": advocate_id}), 404
    return jsonify({"advocate": {"id": advocate.identifier, "name": advocate.name},
                    "referrals": referrals_for(store, advocate),
                    "calls": calls_for(store, advocate)}), 200
