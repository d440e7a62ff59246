"""Events service: create and edit, slot generation, capacity, cancellation, waitlist, exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from onsite_server.models import Booking, Event, Member, OutboxMessage, Site, Slot
from onsite_server.services import bookings
from onsite_server.services import events as svc
from onsite_server.services.errors import ServiceError
from onsite_server.services.tickets import revoked_ticket_ids, ticket_id

from ..helpers import gen_member, gen_site

ZONE = ZoneInfo("America/New_York")
# A fixed "now": Monday 2026-11-30 08:00 in New York (EST, UTC-5).
NOW = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
TOMORROW = date(2026, 12, 1)
ACTOR = "user:1"


@pytest.fixture
def site(session: Session) -> Site:
    """A New York site."""
    made = gen_site(session, "ev-site", timezone="America/New_York")
    session.commit()
    return made


def _told(session: Session, kind: str) -> list[str]:
    """The booking ids whose member has a message of this kind queued for central."""
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "message")).all()
    return sorted(r.payload["booking"] for r in rows if r.payload["kind"] == kind)


def _event(session: Session, site: Site, **kw: Any) -> Event:
    data = svc.EventInput(title=kw.pop("title", "Flu shot clinic"),
                          kind=kw.pop("kind", "flu_shot"), **kw)
    return svc.create_event(session, site, data, ACTOR)


def _slots(session: Session, event: Event, start: time = time(9), end: time = time(12),
           every: int = 15, capacity: int = 2) -> list[Slot]:
    plan = svc.SlotPlan(day=TOMORROW, start=start, end=end, every=every, capacity=capacity)
    return svc.generate_slots(session, event, plan, ZONE, ACTOR, now=NOW)


def _book(session: Session, site: Site, slot: Slot, n: int = 1) -> list[Booking]:
    out = []
    for _ in range(n):
        member = gen_member(session, site)
        view = bookings.book(session, member=member, slot=slot, actor="kiosk:test", now=NOW)
        out.append(bookings.find_booking(session, site.id, view.booking_id))
    session.commit()
    return out


@pytest.mark.sqlite_only
def test_event_fields_are_checked_and_named(session: Session, site: Site) -> None:
    with pytest.raises(ServiceError) as caught:
        _event(session, site, title="   ", kind="juggling")
    assert {e["field"] for e in caught.value.errors} == {"title", "kind"}
    event = _event(session, site, title=" Biometrics ", title_es="Biométricos",
                   location="Room 2A")
    assert (event.title, event.title_es, event.location) == ("Biometrics", "Biométricos",
                                                             "Room 2A")
    svc.update_event(session, event, svc.EventInput(title="Biometrics day", kind="coaching"),
                     ACTOR)
    session.commit()
    again = svc.find_event(session, site.id, event.public_id)
    assert (again.title, again.kind, again.location) == ("Biometrics day", "coaching", None)


def test_an_event_of_another_site_is_not_found(session: Session, site: Site) -> None:
    other = gen_site(session, "elsewhere")
    event = _event(session, other)
    with pytest.raises(ServiceError) as caught:
        svc.find_event(session, site.id, event.public_id)
    assert caught.value.kind == "not_found" and caught.value.errors[0]["field"] == "event_id"


def test_nine_to_twelve_every_fifteen_minutes_with_two_seats(session: Session,
                                                             site: Site) -> None:
    event = _event(session, site)
    slots = _slots(session, event)
    session.commit()
    local = [(s.start_at.astimezone(ZONE).time(), s.end_at.astimezone(ZONE).time())
             for s in slots]
    assert len(slots) == 12
    assert local[0] == (time(9), time(9, 15)) and local[-1] == (time(11, 45), time(12))
    assert all(s.capacity == 2 for s in slots)
    # Stored in UTC: 09:00 EST is 14:00 UTC.
    assert slots[0].start_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(("start", "end", "every", "capacity", "field"), [
    (time(12), time(9), 15, 2, "end"),
    (time(9), time(9, 10), 15, 2, "end"),
    (time(9), time(12), 2, 2, "every"),
    (time(9), time(12), 15, 0, "capacity"),
    (time(0), time(23, 59), 5, 1, "end"),  # 287 slots: more than one run may make
])
@pytest.mark.sqlite_only
def test_a_bad_slot_plan_names_its_field(session: Session, site: Site, start: time, end: time,
                                         every: int, capacity: int, field: str) -> None:
    event = _event(session, site)
    with pytest.raises(ServiceError) as caught:
        _slots(session, event, start, end, every, capacity)
    assert caught.value.errors[0]["field"] == field
    assert session.scalars(select(Slot)).all() == []


def test_slots_in_the_past_or_overlapping_are_refused(session: Session, site: Site) -> None:
    event = _event(session, site)
    past = svc.SlotPlan(day=NOW.date() - timedelta(days=1), start=time(9), end=time(10))
    with pytest.raises(ServiceError) as caught:
        svc.generate_slots(session, event, past, ZONE, ACTOR, now=NOW)
    assert caught.value.errors[0] == {"field": "start", "message": "is in the past"}
    _slots(session, event, time(9), time(10))
    with pytest.raises(ServiceError) as caught:
        _slots(session, event, time(9, 45), time(11))
    assert caught.value.kind == "conflict" and "overlaps the slot at 2026-12-01 09:45" in \
        caught.value.errors[0]["message"]
    # Back to back is not an overlap.
    assert len(_slots(session, event, time(10), time(11))) == 4


def test_a_start_skipped_by_spring_forward_is_refused(session: Session, site: Site) -> None:
    event = _event(session, site)
    plan = svc.SlotPlan(day=date(2027, 3, 14), start=time(2, 30), end=time(4))
    with pytest.raises(ServiceError) as caught:
        svc.generate_slots(session, event, plan, ZONE, ACTOR, now=NOW)
    assert caught.value.errors[0]["field"] == "start"


def test_capacity_never_goes_below_seats_taken(session: Session, site: Site) -> None:
    event = _event(session, site)
    slot = _slots(session, event, time(9), time(9, 15), capacity=3)[0]
    _book(session, site, slot, 2)
    with pytest.raises(ServiceError) as caught:
        svc.set_capacity(session, slot, 1, ACTOR, now=NOW)
    assert caught.value.errors[0]["field"] == "capacity"
    assert "2 seats are taken" in caught.value.errors[0]["message"]
    svc.set_capacity(session, slot, 2, ACTOR, now=NOW)
    session.commit()
    assert (slot.capacity, slot.seats_left) == (2, 0)


def test_more_seats_go_to_the_waitlist_in_order_and_they_are_told(
        session: Session, site: Site) -> None:
    event = _event(session, site)
    slot = _slots(session, event, time(9), time(9, 15), capacity=1)[0]
    _book(session, site, slot, 1)
    waiting = _book(session, site, slot, 3)
    assert [b.status for b in waiting] == ["waitlisted"] * 3
    promoted = svc.set_capacity(session, slot, 3, ACTOR, now=NOW)
    session.commit()
    assert [b.public_id for b in promoted] == [b.public_id for b in waiting[:2]]
    assert _told(session, "waitlist_promotion") == sorted(b.public_id for b in waiting[:2])
    session.refresh(waiting[2])
    assert waiting[2].status == "waitlisted"


def test_promote_first_in_line_or_the_one_named(session: Session, site: Site) -> None:
    event = _event(session, site)
    slot = _slots(session, event, time(9), time(9, 15), capacity=1)[0]
    (seated,) = _book(session, site, slot, 1)
    first, second, third = _book(session, site, slot, 3)
    with pytest.raises(ServiceError) as caught:
        svc.promote(session, slot, ACTOR, now=NOW)
    assert caught.value.kind == "conflict"  # no free seat
    session.rollback()
    # Capacity to 2 moves `first` up; then a seat freed by a cancellation without promotion
    # (the capacity goes back) lets the coordinator choose.
    assert [b.public_id for b in svc.set_capacity(session, slot, 2, ACTOR, now=NOW)] == [
        first.public_id]
    session.commit()
    with pytest.raises(ServiceError) as caught:
        svc.promote(session, slot, ACTOR, booking_public_id=third.public_id, now=NOW)
    assert caught.value.errors[0]["field"] == "slot_id"  # still no free seat
    session.rollback()
    session.execute(update(Slot).where(Slot.id == slot.id).values(capacity=3))
    session.commit()
    chosen = svc.promote(session, slot, ACTOR, booking_public_id=third.public_id, now=NOW)
    session.commit()
    session.refresh(second)
    assert (chosen.public_id, chosen.status, second.status) == (third.public_id, "booked",
                                                                "waitlisted")
    assert _told(session, "waitlist_promotion") == sorted([first.public_id, third.public_id])
    # A booking of another slot, or once the slot has started, is refused.
    with pytest.raises(ServiceError):
        svc.promote(session, slot, ACTOR, booking_public_id=seated.public_id, now=NOW)
    session.rollback()
    with pytest.raises(ServiceError):
        svc.promote(session, slot, ACTOR, now=slot.start_at)


def test_cancelling_a_slot_lists_and_tells_the_members_and_revokes_tickets(
        session: Session, site: Site) -> None:
    event = _event(session, site)
    slot, other = _slots(session, event, time(9), time(9, 30), capacity=2)
    seated = _book(session, site, slot, 2)
    waiting = _book(session, site, slot, 1)
    elsewhere = _book(session, site, other, 1)
    preview = svc.affected_by(session, [slot], now=NOW)
    affected = svc.cancel_slot(session, slot, ACTOR, now=NOW)
    session.commit()
    everyone = [*seated, *waiting]
    assert {a.booking_id for a in affected} == {b.public_id for b in everyone}
    assert {(a.booking_id, a.status) for a in preview} == {(a.booking_id, a.status)
                                                          for a in affected}
    assert {a.status for a in affected} == {"booked", "waitlisted"}
    assert _told(session, "cancellation") == sorted(b.public_id for b in everyone)
    session.refresh(slot)
    assert slot.cancelled and slot.booked_count == 0
    assert all(session.get(Booking, b.id).status == "cancelled" for b in everyone)  # type: ignore[union-attr]
    revoked = revoked_ticket_ids(session, timedelta(days=1), NOW)
    assert {ticket_id(b.public_id) for b in everyone} <= revoked
    assert ticket_id(elsewhere[0].public_id) not in revoked
    # Once cancelled, nobody books it, and cancelling again reaches nobody.
    with pytest.raises(bookings.BookingError):
        bookings.book(session, member=gen_member(session, site), slot=slot, actor="k", now=NOW)
    session.rollback()
    assert svc.cancel_slot(session, slot, ACTOR, now=NOW) == []


def test_cancelling_a_running_slot_keeps_those_who_came(session: Session, site: Site) -> None:
    event = _event(session, site)
    (slot,) = _slots(session, event, time(9), time(9, 15), capacity=2)
    came, absent = _book(session, site, slot, 2)
    bookings.check_in(session, came, "user:1", now=slot.start_at)
    affected = svc.cancel_slot(session, slot, ACTOR, now=slot.start_at + timedelta(minutes=2))
    session.commit()
    assert [a.booking_id for a in affected] == [absent.public_id]
    session.refresh(came)
    assert came.status == "checked_in"
    with pytest.raises(ServiceError) as caught:
        svc.cancel_slot(session, slot, ACTOR, now=slot.end_at)
    assert caught.value.errors[0]["field"] == "slot_id"


def test_cancelling_an_event_cancels_its_open_slots(session: Session, site: Site) -> None:
    event = _event(session, site)
    slots = _slots(session, event, time(9), time(10), capacity=1)
    booked = [_book(session, site, s, 1)[0] for s in slots[:3]]
    affected = svc.cancel_event(session, event, ACTOR, now=NOW)
    session.commit()
    assert sorted(a.booking_id for a in affected) == sorted(b.public_id for b in booked)
    assert _told(session, "cancellation") == sorted(b.public_id for b in booked)
    assert all(s.cancelled for s in slots) and event.cancelled
    with pytest.raises(ServiceError):
        _slots(session, event, time(13), time(14))
    with pytest.raises(ServiceError):
        svc.update_event(session, event, svc.EventInput(title="x"), ACTOR)


def test_waitlist_view_lists_each_slot_in_order(session: Session, site: Site) -> None:
    event = _event(session, site)
    full, empty = _slots(session, event, time(9), time(9, 30), capacity=1)
    _book(session, site, full, 1)
    waiting = _book(session, site, full, 2)
    view = svc.waitlist(session, event, now=NOW)
    assert [w.slot.public_id for w in view] == [full.public_id]
    assert [(r.booking_id, r.waitlist_position) for r in view[0].waiting] == [
        (waiting[0].public_id, 1), (waiting[1].public_id, 2)]
    assert view[0].free == 0


def test_roster_csv_has_names_and_times_only(session: Session, site: Site) -> None:
    event = _event(session, site)
    first, second = _slots(session, event, time(9), time(9, 30), capacity=1)
    member = gen_member(session, site, first_name="=HYPERLINK(\"x\")")
    bookings.book(session, member=member, slot=second, actor="k", now=NOW)
    (gone,) = _book(session, site, first, 1)
    (kept,) = _book(session, site, first, 1)  # waitlisted
    bookings.cancel_booking(session, gone, "k", now=NOW)  # kept is promoted
    session.commit()
    rows = list(csv.reader(io.StringIO(svc.roster_csv(session, event, ZONE))))
    assert rows[0] == list(svc.ROSTER_COLUMNS)
    assert rows[1:] == [
        ["2026-12-01", "09:00", "09:15", "Tester", kept.member.first_name, "booked"],
        ["2026-12-01", "09:15", "09:30", "Tester", "'=HYPERLINK(\"x\")", "booked"],
    ]
    text = svc.roster_csv(session, event, ZONE)
    assert "1980" not in text and member.employee_id not in text  # no birth dates, no ids


def _unfold(ics: str) -> list[str]:
    assert ics.endswith("\r\n") and "\n" not in ics.replace("\r\n", "")
    physical = ics.split("\r\n")[:-1]
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    logical: list[str] = []
    for line in physical:
        if line.startswith(" "):
            logical[-1] += line[1:]
        else:
            logical.append(line)
    return logical


def test_calendar_is_rfc5545(session: Session, site: Site) -> None:
    title = "Evaluación biométrica, con café; " + "muy larga " * 8 + "fin"
    event = _event(session, site, title="Biometric screening", title_es=title,
                   location="Room 2A, east wing")
    slots = _slots(session, event, time(9), time(9, 45))
    svc.cancel_slot(session, slots[1], ACTOR, now=NOW)
    session.commit()
    lines = _unfold(svc.calendar_ics(event, lang="es", now=NOW))
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines and lines.count("BEGIN:VEVENT") == 3
    summary = "SUMMARY:" + title.replace(",", "\\,").replace(";", "\\;")
    assert lines.count(summary) == 3
    assert "LOCATION:Room 2A\\, east wing" in lines
    assert "DTSTART:20261201T140000Z" in lines and "DTEND:20261201T144500Z" in lines
    assert [ln for ln in lines if ln.startswith("STATUS:")] == [
        "STATUS:CONFIRMED", "STATUS:CANCELLED", "STATUS:CONFIRMED"]
    uids = [ln for ln in lines if ln.startswith("UID:")]
    assert len(set(uids)) == 3 and uids[0] == f"UID:{slots[0].public_id}@onsite-wellness"
    assert "DTSTAMP:20261130T130000Z" in lines


def test_event_list_hides_past_events_and_counts_seats(session: Session, site: Site) -> None:
    event = _event(session, site)
    slots = _slots(session, event, time(9), time(9, 30), capacity=2)
    _book(session, site, slots[0], 1)
    old = Event(site_id=site.id, title="Last year", kind="other")
    session.add(old)
    session.flush()
    start = NOW - timedelta(days=300)
    session.add(Slot(event_id=old.id, start_at=start, end_at=start + timedelta(minutes=15),
                     capacity=1))
    session.commit()
    listed = svc.list_events(session, site, now=NOW)
    assert [(e.event.title, e.slot_count, e.capacity, e.taken) for e in listed] == [
        ("Flu shot clinic", 2, 4, 1)]
    assert len(svc.list_events(session, site, include_past=True, now=NOW)) == 2


def test_members_are_untouched_by_event_actions(session: Session, site: Site) -> None:
    # Event actions change bookings only: a cancellation does not remove anyone from the roster.
    event = _event(session, site)
    (slot,) = _slots(session, event, time(9), time(9, 15))
    _book(session, site, slot, 2)
    svc.cancel_event(session, event, ACTOR, now=NOW)
    session.commit()
    assert len(session.scalars(select(Member)).all()) == 2
