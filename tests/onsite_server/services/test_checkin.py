"""Check-in at the door: tickets verified offline, search, walk-ins, no-shows, the live view."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from onsite_server.db import get_db
from onsite_server.models import AuditLog, Booking, Event, OutboxMessage, Site, Slot
from onsite_server.services import bookings
from onsite_server.services import checkin as svc
from onsite_server.services.errors import ServiceError
from onsite_server.services.signing import KeyStore
from onsite_server.services.tickets import TicketIssuer
from shared.tokens import Purpose, mint

from ..helpers import gen_member, gen_site

GRACE = timedelta(days=1)
# Tuesday 2026-12-01, 09:00 in New York (EST): the event's first slot starts at 09:00.
DAY = date(2026, 12, 1)
OPEN = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
BEFORE = OPEN - timedelta(hours=2)  # 07:00 local, same day: tickets booked before this


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    """The site's signing keys."""
    return KeyStore(tmp_path / "keys")


@pytest.fixture
def site(session: Session) -> Site:
    """A New York site with a roster member or two."""
    made = gen_site(session, "door", timezone="America/New_York")
    session.commit()
    return made


def _slots(session: Session, site: Site, capacity: int = 2, n: int = 2,
           start: datetime = OPEN) -> list[Slot]:
    event = Event(site_id=site.id, title="Flu shot clinic", title_es="Vacuna", kind="flu_shot")
    session.add(event)
    session.flush()
    slots = [Slot(event_id=event.id, start_at=start + timedelta(minutes=15 * i),
                  end_at=start + timedelta(minutes=15 * (i + 1)), capacity=capacity)
             for i in range(n)]
    session.add_all(slots)
    session.commit()
    return slots


def _book(session: Session, site: Site, slot: Slot, **member: str) -> Booking:
    person = gen_member(session, site, **member)  # type: ignore[arg-type]
    view = bookings.book(session, member=person, slot=slot, actor="kiosk:t", now=BEFORE)
    session.commit()
    return bookings.find_booking(session, site.id, view.booking_id)


def _ticket(keys: KeyStore, booking: Booking) -> tuple[str, str]:
    issuer = TicketIssuer(keys=keys, web_url="https://central.example", grace=GRACE)
    token, url = issuer.ticket(booking.public_id, booking.slot.public_id, booking.status,
                               booking.slot.end_at)
    assert token and url
    return token, url


def _scan(session: Session, site: Site, keys: KeyStore, text: str,
          now: datetime = OPEN) -> svc.CheckedIn:
    ring = svc.ticket_ring(session, keys, GRACE, now)
    done = svc.check_in_ticket(session, site, text, ring, "user:7", now)
    session.commit()
    return done


def _refusal(session: Session, site: Site, keys: KeyStore, text: str,
             now: datetime = OPEN) -> svc.CheckInRefused:
    with pytest.raises(svc.CheckInRefused) as caught:
        _scan(session, site, keys, text, now)
    session.rollback()
    return caught.value


@pytest.mark.parametrize("form", ["url", "bare", "padded"])
def test_a_scanned_ticket_checks_in_once(session: Session, site: Site, keys: KeyStore,
                                         form: str) -> None:
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot, first_name="Ana")
    token, url = _ticket(keys, booking)
    scanned = {"url": url, "bare": token, "padded": f"  {url}?utm=x\r\n"}[form]
    done = _scan(session, site, keys, scanned)
    assert (done.booking_id, done.first_name, done.status, done.already) == (
        booking.public_id, "Ana", "checked_in", False)
    session.refresh(booking)
    assert booking.status == "checked_in" and booking.checked_in_at == OPEN
    again = _scan(session, site, keys, token, OPEN + timedelta(minutes=3))
    assert again.already and again.checked_in_at == OPEN


def test_a_forged_or_altered_ticket_is_refused(session: Session, site: Site,
                                               keys: KeyStore, tmp_path: Path) -> None:
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot)
    token, _ = _ticket(keys, booking)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    assert _refusal(session, site, keys, flipped).reason in ("forged", "malformed")
    stranger = KeyStore(tmp_path / "someone-elses-keys")
    forged, _ = _ticket(stranger, booking)
    refusal = _refusal(session, site, keys, forged)
    assert refusal.reason == "forged" and refusal.errors[0]["field"] == "ticket"
    assert _refusal(session, site, keys, "hello world").reason == "malformed"
    assert _refusal(session, site, keys, "https://central.example/ticket/").reason == \
        "malformed"
    session.refresh(booking)
    assert booking.status == "booked"


def test_a_ticket_signed_with_a_retired_key_is_refused_and_a_new_one_works(
        session: Session, site: Site, keys: KeyStore) -> None:
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot)
    old, _ = _ticket(keys, booking)
    keys.retire(keys.current(Purpose.TICKET).key_id)
    # A retired key's signature proves nothing: the door treats the ticket as forged.
    assert _refusal(session, site, keys, old).reason == "forged"
    new, _ = _ticket(keys, booking)  # derived again, signed with the new key
    assert new != old and _scan(session, site, keys, new).status == "checked_in"


def test_an_advocate_link_is_not_a_ticket(session: Session, site: Site, keys: KeyStore) -> None:
    link = mint(keys.current(Purpose.ADVOCATE_LINK), {"subject": "x"},
                lifetime=timedelta(days=1), now=OPEN)
    assert _refusal(session, site, keys, link).reason == "wrong_purpose"


def test_an_expired_ticket_is_refused(session: Session, site: Site, keys: KeyStore) -> None:
    (slot, _) = _slots(session, site)
    token, _ = _ticket(keys, _book(session, site, slot))
    later = slot.end_at + GRACE + timedelta(hours=1)
    assert _refusal(session, site, keys, token, later).reason == "expired"


def test_a_cancelled_bookings_ticket_is_revoked(session: Session, site: Site,
                                                keys: KeyStore) -> None:
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot)
    token, _ = _ticket(keys, booking)
    bookings.cancel_booking(session, booking, "kiosk:t", now=BEFORE)
    session.commit()
    assert _refusal(session, site, keys, token).reason == "revoked"


def test_a_rescheduled_bookings_old_ticket_no_longer_works(session: Session, site: Site,
                                                           keys: KeyStore) -> None:
    first, second = _slots(session, site)
    booking = _book(session, site, first)
    old_token, _ = _ticket(keys, booking)
    moved = bookings.reschedule(session, booking, second, "kiosk:t", now=BEFORE)
    session.commit()
    assert _refusal(session, site, keys, old_token).reason == "revoked"
    new = bookings.find_booking(session, site.id, moved.booking.booking_id)
    assert _scan(session, site, keys, _ticket(keys, new)[0]).booking_id == new.public_id


@pytest.mark.parametrize("revocation", ["list", "own_row"])
def test_revoked_tickets_are_refused_alike_by_the_list_and_by_their_own_row(
        session: Session, site: Site, keys: KeyStore, revocation: str) -> None:
    """The desk asks the scanned ticket's booking whether it is revoked (``grace``; issue 20
    P7) instead of reading every revoked ticket: the answers are the list's, another site's
    cancelled booking included."""
    first, second = _slots(session, site)
    cancelled = _book(session, site, first, first_name="Ana")
    cancelled_token, _ = _ticket(keys, cancelled)
    bookings.cancel_booking(session, cancelled, "kiosk:t", now=BEFORE)
    moved = _book(session, site, first, first_name="Ben")
    moved_token, _ = _ticket(keys, moved)
    bookings.reschedule(session, moved, second, "kiosk:t", now=BEFORE)
    other = gen_site(session, "other-door")
    (there, _) = _slots(session, other)
    elsewhere = _book(session, other, there)
    elsewhere_token, _ = _ticket(keys, elsewhere)
    bookings.cancel_booking(session, elsewhere, "kiosk:t", now=BEFORE)
    live_token, _ = _ticket(keys, _book(session, site, second, first_name="Cy"))
    session.commit()

    def scan(token: str) -> str:
        if revocation == "list":
            ring, grace = svc.ticket_ring(session, keys, GRACE, OPEN), None
        else:
            ring, grace = keys.ring(), GRACE
        try:
            done = svc.check_in_ticket(session, site, token, ring, "user:7", OPEN, grace=grace)
        except svc.CheckInRefused as exc:
            session.rollback()
            return exc.reason
        session.commit()
        return done.status

    assert [scan(t) for t in (cancelled_token, moved_token, elsewhere_token, live_token)] == [
        "revoked", "revoked", "revoked", "checked_in"]


def test_a_booking_checked_in_meanwhile_is_not_checked_in_twice(
        app: Flask, session: Session, site: Site, keys: KeyStore) -> None:
    """Two desks scan one ticket at once: the second read the booking before the first
    checked it in. Its check-in changes nothing and says so; one audit row, one Appointment
    row (the conditional UPDATE of issue 20 P7 finds no booked row, and the locked re-read
    decides)."""
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot)
    token, _ = _ticket(keys, booking)
    session.commit()  # SQLite: one writer at a time, and the other desk writes next
    other = get_db(app).session()
    try:
        stale = bookings.find_booking(other, site.id, booking.public_id)
        other.commit()  # its read ends; the object stays as it was read: booked
        assert stale.status == "booked"
        _scan(session, site, keys, token)  # the first desk
        done = bookings.check_in(other, stale, "user:8", OPEN)
        other.commit()
    finally:
        other.close()
    assert done.status == "checked_in"
    audited = session.scalars(select(AuditLog).where(
        AuditLog.action.in_(("booking.checked_in", "booking.checked_in_late")),
        AuditLog.subject == f"member:{booking.member.public_id}")).all()
    assert [a.actor for a in audited] == ["user:7"]
    pending = session.scalars(select(OutboxMessage).where(
        OutboxMessage.booking_id == booking.id, OutboxMessage.kind == "booking",
        OutboxMessage.status == "pending")).all()
    assert len(pending) == 1


@pytest.mark.parametrize("meanwhile", ["checked_in", "cancelled"])
def test_a_ticket_read_before_its_booking_changed_is_decided_as_it_now_stands(
        app: Flask, session: Session, site: Site, keys: KeyStore, meanwhile: str) -> None:
    """The desk reads the ticket's booking before it takes the write lock (session 10); if
    another desk checks it in, or the member cancels, in between, the check-in writes
    nothing more: it answers "already" (one audit row, the other desk's) or refuses."""
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot)
    token, _ = _ticket(keys, booking)
    found = svc.read_ticket(session, site.id, token, svc.ticket_ring(session, keys, GRACE, OPEN),
                            OPEN)
    session.commit()  # the read ends; another desk or the member writes next
    assert found.status == "booked"
    with get_db(app).transaction() as other:
        if meanwhile == "checked_in":
            svc.check_in_booking(other, site, booking.public_id, "user:8", OPEN)
        else:
            bookings.cancel_booking(other, bookings.find_booking(other, site.id,
                                                                 booking.public_id),
                                    actor="kiosk:t", now=BEFORE)
    if meanwhile == "checked_in":
        done = svc.check_in_found(session, found, "user:7", OPEN + timedelta(minutes=1))
        session.commit()
        assert done.already and done.checked_in_at == OPEN
    else:
        with pytest.raises(svc.CheckInRefused) as caught:
            svc.check_in_found(session, found, "user:7", OPEN)
        session.rollback()
        assert caught.value.reason == "cancelled"
    audited = session.scalars(select(AuditLog.actor).where(
        AuditLog.action.in_(("booking.checked_in", "booking.checked_in_late")),
        AuditLog.subject == f"member:{booking.member.public_id}")).all()
    assert audited == (["user:8"] if meanwhile == "checked_in" else [])
    session.refresh(booking)
    assert booking.status == meanwhile


@pytest.mark.parametrize("late", [False, True])
def test_a_scan_records_what_a_check_in_by_search_records(
        session: Session, site: Site, keys: KeyStore, late: bool) -> None:
    """The scan writes its check-in by statements alone (session 10), the search through
    the booking's object: the same booking row, audit entry and Appointment row either way,
    on time or after the slot's end (``booking.checked_in_late``)."""
    (slot, _) = _slots(session, site, capacity=4)
    scanned = _book(session, site, slot, first_name="Scan")
    searched = _book(session, site, slot, first_name="Search")
    at = slot.end_at + timedelta(minutes=5) if late else OPEN
    # The bookings' Appointments went to central: each check-in queues a new one.
    session.execute(update(OutboxMessage).values(status="sent"))
    session.commit()
    done = _scan(session, site, keys, _ticket(keys, scanned)[0], at)
    other = svc.check_in_booking(session, site, searched.public_id, "user:7", at)
    session.commit()
    assert (done.status, done.late, done.checked_in_at, done.already) == (
        other.status, other.late, other.checked_in_at, other.already) == (
        "checked_in", late, at, False)

    def written(booking: Booking) -> tuple[object, ...]:
        session.refresh(booking)
        (audit,) = session.scalars(select(AuditLog).where(
            AuditLog.subject == f"member:{booking.member.public_id}",
            AuditLog.action.like("booking.checked_in%"))).all()
        (outbox,) = session.scalars(select(OutboxMessage).where(
            OutboxMessage.booking_id == booking.id, OutboxMessage.kind == "booking",
            OutboxMessage.status == "pending")).all()
        detail = {k: v for k, v in audit.detail.items() if k != "booking"}
        return (booking.status, booking.checked_in_at, booking.updated_at, audit.actor,
                audit.action, audit.site_id, detail, audit.detail["booking"] ==
                booking.public_id, outbox.kind, outbox.priority, outbox.payload ==
                {"booking": booking.public_id}, outbox.key.startswith(
                    f"booking:{booking.public_id}:"))

    assert written(scanned) == written(searched)
    assert written(scanned)[4] == ("booking.checked_in_late" if late else "booking.checked_in")
    assert written(scanned)[5] == site.id


def test_a_ticket_for_another_day_or_site_is_refused(session: Session, site: Site,
                                                     keys: KeyStore) -> None:
    (tomorrow, _) = _slots(session, site, start=OPEN + timedelta(days=1))
    token, _ = _ticket(keys, _book(session, site, tomorrow))
    refusal = _refusal(session, site, keys, token)
    assert refusal.reason == "other_day" and "2026-12-02 09:00" in refusal.errors[0]["message"]
    other = gen_site(session, "other-door")
    (there, _) = _slots(session, other)
    foreign, _ = _ticket(keys, _book(session, other, there))
    assert _refusal(session, site, keys, foreign).reason == "unknown_booking"


def test_a_no_show_is_refused_with_its_reason(session: Session, site: Site,
                                              keys: KeyStore) -> None:
    (slot, _) = _slots(session, site)
    token, _ = _ticket(keys, _book(session, site, slot))
    assert svc.mark_no_shows(session, site, slot, "user:7", now=slot.end_at) == 1
    session.commit()
    assert _refusal(session, site, keys, token, slot.end_at).reason == "no_show"


def _audits(session: Session, action: str) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.action == action)
                                .order_by(AuditLog.id)))


@pytest.mark.parametrize("marked_by", ["button", "housekeeping"])
def test_a_no_show_can_be_checked_in_as_arrived_late(session: Session, site: Site,
                                                     keys: KeyStore, marked_by: str) -> None:
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot, first_name="Tardy")
    token, _ = _ticket(keys, booking)
    ended = slot.end_at + timedelta(minutes=10)
    if marked_by == "button":
        assert svc.mark_no_shows(session, site, slot, "user:7", now=slot.end_at) == 1
    else:
        assert bookings.mark_no_shows(session, slot.end_at) == 1
    session.commit()
    # The scan is refused, but names the booking so the desk can offer a late check-in.
    refused = _refusal(session, site, keys, token, ended)
    assert (refused.reason, refused.booking_id) == ("no_show", booking.public_id)
    taken = slot.booked_count
    done = svc.check_in_booking(session, site, booking.public_id, "user:7", ended, late=True)
    session.commit()
    assert (done.status, done.late, done.checked_in_at) == ("checked_in", True, ended)
    session.refresh(slot)
    assert slot.booked_count == taken  # a no-show kept its seat; nothing moves
    (audit,) = _audits(session, "booking.checked_in_late")
    assert (audit.actor, audit.detail["was"], audit.detail["booking"]) == (
        "user:7", "no_show", booking.public_id)
    assert session.scalars(select(OutboxMessage).where(
        OutboxMessage.booking_id == booking.id, OutboxMessage.status == "pending")).first()
    # The door list shows it as such.
    (people, _) = svc.who_is_coming(session, slot.event)
    assert [(p.first_name, p.state) for p in people.seated] == [("Tardy", "late")]
    # Scanning again now is the harmless "already checked in".
    assert _scan(session, site, keys, token, ended).already


def test_a_late_check_in_is_refused_for_a_booking_that_is_not_a_no_show(
        session: Session, site: Site) -> None:
    (slot, _) = _slots(session, site, capacity=1)
    _book(session, site, slot)
    waiting = _book(session, site, slot)
    with pytest.raises(svc.CheckInRefused) as caught:
        svc.check_in_booking(session, site, waiting.public_id, "user:7", OPEN, late=True)
    assert caught.value.reason == "waitlisted"


def test_a_check_in_can_be_undone_with_a_reason(session: Session, site: Site,
                                                keys: KeyStore) -> None:
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot, first_name="Oops")
    _scan(session, site, keys, _ticket(keys, booking)[0])
    for reason, field in [("   ", "reason"), ("x" * 501, "reason")]:
        with pytest.raises(ServiceError) as caught:
            svc.undo_check_in(session, site, booking.public_id, reason, "user:7", OPEN)
        assert (caught.value.kind, caught.value.errors[0]["field"]) == ("invalid", field)
        session.rollback()
    done = svc.undo_check_in(session, site, booking.public_id, " scanned the wrong\nticket ",
                             "user:7", OPEN + timedelta(minutes=1))
    session.commit()
    assert (done.status, done.checked_in_at) == ("booked", None)
    (audit,) = _audits(session, "booking.check_in_undone")
    assert (audit.actor, audit.detail["reason"], audit.detail["status"]) == (
        "user:7", "scanned the wrong ticket", "booked")
    assert audit.detail["checked_in_at"].startswith(OPEN.isoformat()[:16])
    # Undoing what is not a check-in is refused, naming the booking.
    with pytest.raises(ServiceError) as caught:
        svc.undo_check_in(session, site, booking.public_id, "again", "user:7", OPEN)
    assert (caught.value.kind, caught.value.errors[0]["field"]) == ("conflict", "booking_id")
    session.rollback()
    # After the slot has ended an undone check-in is what housekeeping makes of it: a no-show.
    svc.check_in_booking(session, site, booking.public_id, "user:7", OPEN)
    done = svc.undo_check_in(session, site, booking.public_id, "left before being seen",
                             "user:7", slot.end_at)
    session.commit()
    assert done.status == "no_show"


def test_who_is_coming_lists_each_slot_with_states(session: Session, site: Site) -> None:
    first, second = _slots(session, site, capacity=2)
    zed = _book(session, site, first, first_name="Zed")
    amy = _book(session, site, first, first_name="Amy")
    wait1 = _book(session, site, first, first_name="Wendy")
    _book(session, site, first, first_name="Walt")
    gone = _book(session, site, second, first_name="Gone")
    bookings.cancel_booking(session, gone, actor="kiosk:t", now=BEFORE)
    bookings.check_in(session, amy, "user:7", OPEN)
    session.commit()
    del zed, wait1
    (one, two) = svc.who_is_coming(session, first.event)
    assert one.slot.id == first.id and two.seated == two.waiting == []
    # Seated by name (last, then first), the waitlist in its order.
    assert [(p.first_name, p.state) for p in one.seated] == [("Amy", "checked_in"),
                                                            ("Zed", "booked")]
    assert [(p.first_name, p.state, p.waitlist_position) for p in one.waiting] == [
        ("Wendy", "waitlisted", 1), ("Walt", "waitlisted", 2)]


def test_search_by_name_or_employee_id_shows_the_days_bookings(session: Session,
                                                               site: Site) -> None:
    (slot, _) = _slots(session, site)
    booking = _book(session, site, slot, first_name="Chloe", employee_id="E2001")
    gen_member(session, site, first_name="Chlodwig", employee_id="E2002")
    other = gen_site(session, "far-away")
    gen_member(session, other, first_name="Chloe", employee_id="E2003")
    session.commit()
    found = svc.search(session, site, "chlo", DAY)
    # Same last name: by first name, and "Chlodwig" sorts before "Chloe".
    assert [(m.first_name, m.employee_id) for m in found] == [("Chlodwig", "E2002"),
                                                             ("Chloe", "E2001")]
    assert [b.booking_id for b in found[1].bookings] == [booking.public_id]
    assert found[0].bookings == []
    assert [m.employee_id for m in svc.search(session, site, "e2001", DAY)] == ["E2001"]
    assert [m.employee_id for m in svc.search(session, site, "chloe tester", DAY)] == ["E2001"]
    assert svc.search(session, site, "100%", DAY) == []
    assert svc.search(session, site, "chloe", DAY + timedelta(days=1))[0].bookings == []
    with pytest.raises(ServiceError) as caught:
        svc.search(session, site, " c ", DAY)
    assert caught.value.errors[0]["field"] == "q"
    done = svc.check_in_booking(session, site, booking.public_id, "user:7", OPEN)
    assert done.status == "checked_in"


def test_a_walk_in_takes_a_free_seat_in_a_running_slot(session: Session, site: Site) -> None:
    (slot, _) = _slots(session, site, capacity=1)
    running = OPEN + timedelta(minutes=5)
    member = svc.find_or_add_member(session, site, svc.NewMember(
        employee_id="W-1", first_name="Walk", last_name="In", birth_date=date(1990, 1, 1)),
        "user:7")
    done = svc.walk_in(session, site, member, slot, "user:7", running)
    session.commit()
    assert (done.status, done.checked_in_at, done.first_name) == ("checked_in", running, "Walk")
    assert member.member_id == "walk-in:W-1"
    # Now full and running: its waitlist is closed, so the next walk-in is sent elsewhere.
    with pytest.raises(ServiceError) as caught:
        svc.walk_in(session, site, gen_member(session, site), slot, "user:7", running)
    assert caught.value.errors[0]["field"] == "slot_id"
    assert "later slot" in caught.value.errors[0]["message"]
    session.rollback()
    with pytest.raises(ServiceError) as caught:
        svc.walk_in(session, site, gen_member(session, site), slot, "user:7", slot.end_at)
    assert caught.value.errors[0]["field"] == "slot_id"
    session.rollback()


def test_a_walk_in_waits_for_a_full_slot_that_has_not_started(session: Session,
                                                              site: Site) -> None:
    (_, later) = _slots(session, site, capacity=1)
    _book(session, site, later)
    waiting = svc.walk_in(session, site, gen_member(session, site), later, "user:7", OPEN)
    session.commit()
    assert (waiting.status, waiting.waitlist_position, waiting.checked_in_at) == (
        "waitlisted", 1, None)


def test_a_walk_in_already_on_the_roster_is_found_not_duplicated(session: Session,
                                                                 site: Site) -> None:
    known = gen_member(session, site, employee_id="E3001")
    session.commit()
    again = svc.find_or_add_member(session, site, svc.NewMember(
        employee_id="e3001", first_name="X", last_name="Y", birth_date=date(1990, 1, 1)),
        "user:7")
    assert again.id == known.id
    with pytest.raises(ServiceError) as caught:
        svc.find_or_add_member(session, site, svc.NewMember(
            employee_id=" ", first_name="", last_name="Y", birth_date=None), "user:7")
    assert {e["field"] for e in caught.value.errors} == {"employee_id", "first_name",
                                                         "birth_date"}


def test_no_shows_are_marked_only_after_the_slot_and_only_here(session: Session,
                                                               site: Site) -> None:
    (slot, _) = _slots(session, site)
    came = _book(session, site, slot)
    absent = _book(session, site, slot)
    other = gen_site(session, "elsewhere")
    (there, _) = _slots(session, other)
    theirs = _book(session, other, there)
    bookings.check_in(session, came, "user:7", OPEN)
    with pytest.raises(ServiceError):
        svc.mark_no_shows(session, site, slot, "user:7", now=OPEN)
    assert svc.mark_no_shows(session, site, None, "user:7", now=slot.end_at) == 1
    session.commit()
    for b in (came, absent, theirs):
        session.refresh(b)
    assert (came.status, absent.status, theirs.status) == ("checked_in", "no_show", "booked")


def test_the_live_view_counts_seats_arrivals_and_waitlists(session: Session, site: Site,
                                                           keys: KeyStore) -> None:
    first, second = _slots(session, site, capacity=1)
    seated = _book(session, site, first)
    _book(session, site, first)  # waitlisted
    _scan(session, site, keys, _ticket(keys, seated)[0])
    view = svc.day_view(session, site, DAY, now=OPEN + timedelta(minutes=1))
    (event,) = view["events"]
    rows = [(s["start_local"], s["taken"], s["free"], s["checked_in"], s["waitlisted"],
             s["state"]) for s in event["slots"]]
    assert rows == [("09:00", 1, 0, 1, 1, "running"), ("09:15", 0, 1, 0, 0, "upcoming")]
    assert view["totals"] == {"capacity": 2, "taken": 1, "free": 1, "booked": 0,
                              "checked_in": 1, "waitlisted": 1, "no_show": 0}
    assert svc.day_view(session, site, DAY + timedelta(days=1))["events"] == []


def test_a_night_slot_across_midnight_is_checked_in_while_it_runs(session: Session, site: Site,
                                                                  keys: KeyStore) -> None:
    """23:55-00:10 in New York: at 00:05 the desk's day is the next one, the slot still runs."""
    late_night = datetime(2026, 12, 2, 4, 55, tzinfo=UTC)  # 23:55 EST on Dec 1
    after_midnight = late_night + timedelta(minutes=10)  # 00:05 EST on Dec 2
    (slot,) = _slots(session, site, start=late_night, n=1)
    scanned = _book(session, site, slot, first_name="Noor")
    searched = _book(session, site, slot, first_name="Ravi")
    token, _ = _ticket(keys, scanned)
    assert _scan(session, site, keys, token, now=after_midnight).status == "checked_in"
    found = svc.search(session, site, "Ravi", day=DAY + timedelta(days=1))
    assert [b.booking_id for b in found[0].bookings] == [searched.public_id]
    done = svc.check_in_booking(session, site, searched.public_id, "user:7", now=after_midnight)
    assert done.status == "checked_in"
    view = svc.day_view(session, site, DAY + timedelta(days=1), now=after_midnight)
    assert [s["slot_id"] for e in view["events"] for s in e["slots"]] == [slot.public_id]
    assert view["events"][0]["slots"][0]["state"] == "running"
    # The slot is on Dec 1 as well; two days on it is another day still.
    assert svc.day_view(session, site, DAY, now=after_midnight)["totals"]["checked_in"] == 2
    (later, _) = _slots(session, site, start=late_night + timedelta(days=2))
    token, _ = _ticket(keys, _book(session, site, later))
    assert _refusal(session, site, keys, token, now=after_midnight).reason == "other_day"
