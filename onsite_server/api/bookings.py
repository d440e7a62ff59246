"""Bookings from a kiosk: book, cancel, reschedule, and a member's bookings.

Every write is keyed: a replay of an idempotency key answers with the first answer's status
and body (201 for a booking, 200 for cancel and reschedule) and changes nothing; the same key
with a different body is a 409. A refused request (4xx) stores nothing, so replaying it is
decided afresh.

The member lookup is a POST with the member reference in the body: gunicorn's access log
records URLs, and a reference in a query string would sit in that log for its whole lifetime.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import current_app

from shared.schemas.bookings import (
    BookingOut,
    BookingRequest,
    CancelRequest,
    MemberBookingsOut,
    MemberBookingsRequest,
    RescheduleOut,
    RescheduleRequest,
)
from shared.schemas.common import Problem
from shared.tokens import Purpose

from ..app_settings import current as current_settings
from ..db import commit_request, get_db, get_read_session, get_session
from ..errors import field_problem
from ..models import Booking, Kiosk
from ..services import bookings as svc
from ..services.central_keys import ensure_published
from ..services.errors import N_
from ..services.idempotency import run_once, stored_answer
from ..services.pairing import kiosk_actor
from ..services.signing import KeyStore
from ..services.tickets import TicketIssuer
from . import (
    authenticated_kiosk,
    current_kiosk,
    member_for_ref,
    member_keys_for_ref,
    operation,
)

_NOT_FOUND = ("No such slot or booking at this kiosk's site; the field is named", Problem)
_CONFLICT = ("Refused: one booking per event, slot cancelled or started, booking no longer "
             "active or its slot already ended (booking_id), or the idempotency key was used "
             "with another body", Problem)


def _booking_public_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise field_problem("booking_id", "is not a valid UUID") from exc


def _members_booking(kiosk: Kiosk, public_id: str, member_ref: str) -> Booking:
    """Return the member's booking at this site; someone else's answers like a missing one."""
    booking = svc.find_booking(get_session(), kiosk.site_id, public_id)
    member = member_for_ref(get_session(), kiosk, member_ref)
    if booking.member_id != member.id:
        # The same answer as a missing booking, so a kiosk cannot probe other members' ids.
        raise svc.BookingError(404, "booking_id", N_("no such booking at this site"),
                               title="Not found")
    return booking


def _ticket_key_at_central() -> None:
    """Make sure central holds the ticket key before a ticket is shown (docs/tokens.md).

    Called first thing in a view, before its transaction writes: it may wait on central.
    """
    ensure_published(current_settings(), get_db(current_app).transaction, Purpose.TICKET)


def _issuer() -> TicketIssuer:
    settings = current_settings()
    return TicketIssuer(keys=KeyStore(Path(settings.signing_key_dir)),
                        web_url=settings.central_web_url,
                        grace=timedelta(days=settings.ticket_grace_days))


def _out(view: svc.BookingView, model: type[BookingOut] = BookingOut, **extra: Any) -> Any:
    """Describe a booking for the kiosk, with its ticket when it holds a seat."""
    ticket, url = _issuer().ticket(view.booking_id, view.slot_id, view.status, view.end_at)
    return model(**{**view.as_dict(), "ticket": ticket, "ticket_url": url, **extra})


def _keyed(key: str, operation_name: str, payload: dict[str, Any],
           work: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
    kiosk = current_kiosk()
    # A refusal (svc.BookingError, a ServiceError) is answered by errors.py.
    return run_once(get_session(), key=key.lower(), operation=operation_name,
                    payload={**payload, "kiosk": kiosk.public_id}, kiosk_id=kiosk.id,
                    work=work)


@operation(
    "/bookings", "POST", summary="Book a slot, or join its waitlist when it is full",
    tag="bookings", request_model=BookingRequest,
    responses={201: ("Booked or waitlisted (a replay of the key returns this same answer)",
                     BookingOut),
               404: _NOT_FOUND, 409: _CONFLICT},
)
def create_booking(body: BookingRequest) -> tuple[BookingOut, int]:
    """Book a seat for the identified member; a full slot waitlists them."""
    _ticket_key_at_central()
    kiosk = authenticated_kiosk()
    key = body.idempotency_key.lower()
    payload = {"member_ref": body.member_ref, "slot_id": str(body.slot_id),
               "kiosk": kiosk.public_id}
    # The reads come first (on SQLite, before the write lock every booking of the site queues
    # for): a replay is answered here, and the reference is resolved. The slot is found by
    # the statement that reads it under its lock in book() (a 404 there rolls back the
    # claim, as any refusal does), and run_once still claims the key.
    read = get_read_session()
    replay = stored_answer(read, key=key, operation="booking.create", payload=payload,
                           kiosk_id=kiosk.id)
    if replay is None:
        member = member_keys_for_ref(read, kiosk, body.member_ref)
        slot = svc.SlotAt(kiosk.site_id, str(body.slot_id))
        session = get_session()

        def work() -> tuple[int, Any]:
            result = svc.book(session, member=member, slot=slot, actor=kiosk_actor(kiosk),
                              kiosk=kiosk, idempotency_key=key)
            return 201, _out(result).model_dump(mode="json")

        replay = run_once(session, key=key, operation="booking.create", payload=payload,
                          kiosk_id=kiosk.id, work=work)
    # The answer is decided (it is stored for the key): commit, and end the turn every other
    # booking of this process queues for, before the answer is built and sent.
    commit_request()
    status, answer = replay
    return BookingOut.model_validate(answer), status


@operation(
    "/bookings/<booking_id>/cancel", "POST", summary="Cancel a booking or leave a waitlist",
    tag="bookings", request_model=CancelRequest,
    responses={200: ("Cancelled; a seat freed before the slot starts goes to the first "
                     "waitlisted member (once it has started, to nobody)", BookingOut),
               404: _NOT_FOUND, 409: _CONFLICT},
)
def cancel_booking(booking_id: str, body: CancelRequest) -> tuple[BookingOut, int]:
    """Cancel a booking; a seat freed before the slot starts goes to its first waitlisted member."""
    kiosk = current_kiosk()
    session = get_session()
    public_id = _booking_public_id(booking_id)

    def work() -> tuple[int, Any]:
        booking = _members_booking(kiosk, public_id, body.member_ref)
        result = svc.cancel_booking(session, booking, kiosk_actor(kiosk))
        return 200, _out(result.booking).model_dump(mode="json")

    status, answer = _keyed(body.idempotency_key, "booking.cancel", {"booking_id": public_id},
                            work)
    return BookingOut.model_validate(answer), status


@operation(
    "/bookings/<booking_id>/reschedule", "POST",
    summary="Move a booking to another slot (all or nothing)", tag="bookings",
    request_model=RescheduleRequest,
    responses={200: ("Moved: the new booking, and the id of the cancelled one", RescheduleOut),
               404: _NOT_FOUND,
               409: ("Refused and nothing changed: the new slot is full, cancelled or started, "
                     "the member has another booking for its event, or the old slot has "
                     "already ended (booking_id)", Problem)},
)
def reschedule_booking(booking_id: str, body: RescheduleRequest) -> tuple[RescheduleOut, int]:
    """Cancel the old booking and book the new slot in one transaction."""
    _ticket_key_at_central()
    kiosk = current_kiosk()
    session = get_session()
    public_id = _booking_public_id(booking_id)
    key = body.idempotency_key.lower()

    def work() -> tuple[int, Any]:
        booking = _members_booking(kiosk, public_id, body.member_ref)
        slot = svc.find_slot(session, kiosk.site_id, str(body.slot_id))
        result = svc.reschedule(session, booking, slot, kiosk_actor(kiosk), kiosk=kiosk,
                                idempotency_key=key)
        out = _out(result.booking, RescheduleOut,
                   replaced_booking_id=result.replaced.booking_id)
        return 200, out.model_dump(mode="json")

    status, answer = _keyed(key, "booking.reschedule",
                            {"booking_id": public_id, "slot_id": str(body.slot_id)}, work)
    return RescheduleOut.model_validate(answer), status


@operation(
    "/members/bookings/lookup", "POST",
    summary="A member's active bookings at this site (the reference stays out of URLs)",
    tag="bookings", request_model=MemberBookingsRequest,
    responses={200: ("Active bookings whose slot has not ended, soonest first",
                     MemberBookingsOut)},
)
def member_bookings(body: MemberBookingsRequest) -> MemberBookingsOut:
    """List the identified member's active bookings at this kiosk's site."""
    # Only reads: it must not queue for SQLite's write lock behind bookings and submissions.
    _ticket_key_at_central()
    kiosk = authenticated_kiosk()
    session = get_read_session()
    member = member_for_ref(session, kiosk, body.member_ref)
    views = svc.member_bookings(session, member, kiosk.site_id)
    return MemberBookingsOut(bookings=[_out(v) for v in views])
