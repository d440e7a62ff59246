"""Bookings: seats, waitlists, cancel with promotion, atomic reschedule, idempotent replays."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from onsite_server.api import hash_token
from onsite_server.db import Database, get_db
from onsite_server.models import (
    AuditLog,
    Booking,
    Event,
    IdempotentRequest,
    Kiosk,
    Site,
    Slot,
)
from onsite_server.services import bookings as svc
from onsite_server.services.members import make_member_ref

from ..helpers import auth, gen_event, gen_member, gen_site, new_key


class World:
    """A paired kiosk's view of its site, with factories for members and events."""

    def __init__(self, app: Any, client: Any, kiosk: dict[str, Any]) -> None:
        self.app = app
        self.client = client
        self.headers = auth(kiosk["token"])
        self.owners: dict[str, str] = {}
        with get_db(app).transaction() as session:
            row = session.scalars(select(Kiosk).where(Kiosk.public_id == kiosk["kiosk_id"])).one()
            self.kiosk_pk = row.id
            self.site_id = row.site_id

    def member_ref(self) -> str:
        """Create a roster member and return a reference minted for this kiosk."""
        with get_db(self.app).transaction() as session:
            site = session.get(Site, self.site_id)
            assert site is not None
            member = gen_member(session, site)
            kiosk = session.get(Kiosk, self.kiosk_pk)
            assert kiosk is not None
            return make_member_ref(self.app.config["SECRET_KEY"], member, kiosk)

    def event(self, *, slots: int = 1, capacity: int = 10, start: datetime | None = None,
              site_id: int | None = None) -> list[str]:
        """Create an event and return its slots' public ids in time order."""
        with get_db(self.app).transaction() as session:
            site = session.get(Site, site_id or self.site_id)
            assert site is not None
            event = gen_event(session, site, slots=slots, capacity=capacity, start=start)
            return [s.public_id for s in sorted(event.slots, key=lambda s: s.start_at)]

    def book(self, ref: str, slot_id: str, key: str | None = None) -> Any:
        """POST /bookings (remembering whose booking it is, for cancel and reschedule)."""
        resp = self.client.post("/api/v1/bookings", headers=self.headers,
                                json={"idempotency_key": key or new_key(), "member_ref": ref,
                                      "slot_id": slot_id})
        if resp.status_code in (200, 201):
            self.owners[resp.get_json()["booking_id"]] = ref
        return resp

    def cancel(self, booking_id: str, key: str | None = None, ref: str | None = None) -> Any:
        """POST /bookings/<id>/cancel as the member who booked (or ref)."""
        return self.client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=self.headers,
                                json={"idempotency_key": key or new_key(),
                                      "member_ref": ref or self.owners.get(booking_id, "x" * 8)})

    def reschedule(self, booking_id: str, slot_id: str, key: str | None = None,
                   ref: str | None = None) -> Any:
        """POST /bookings/<id>/reschedule as the member who booked (or ref)."""
        return self.client.post(f"/api/v1/bookings/{booking_id}/reschedule",
                                headers=self.headers,
                                json={"idempotency_key": key or new_key(), "slot_id": slot_id,
                                      "member_ref": ref or self.owners.get(booking_id, "x" * 8)})

    def lookup(self, ref: str) -> list[dict[str, Any]]:
        """POST /members/bookings/lookup, returning the bookings list."""
        resp = self.client.post("/api/v1/members/bookings/lookup", headers=self.headers,
                                json={"member_ref": ref})
        assert resp.status_code == 200, resp.get_json()
        bookings: list[dict[str, Any]] = resp.get_json()["bookings"]
        return bookings

    def booked_count(self, slot_id: str) -> int:
        """The slot's seat counter, read from the database."""
        with get_db(self.app).transaction(write=False) as session:
            return session.scalars(select(Slot.booked_count)
                                   .where(Slot.public_id == slot_id)).one()

    def status_counts(self, slot_id: str) -> dict[str, int]:
        """How many bookings of the slot are in each status."""
        with get_db(self.app).transaction(write=False) as session:
            rows = session.execute(
                select(Booking.status, func.count()).join(Slot, Booking.slot_id == Slot.id)
                .where(Slot.public_id == slot_id).group_by(Booking.status)
            ).all()
            return {status: n for status, n in rows}

    def count(self, model: Any) -> int:
        """Rows in a table."""
        with get_db(self.app).transaction(write=False) as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def world(app: Any, client: Any, kiosk: dict[str, Any]) -> World:
    """A paired kiosk and factories for its site."""
    return World(app, client, kiosk)


def _field(resp: Any) -> str:
    return str(resp.get_json()["errors"][0]["field"])


# --- booking and waitlist -------------------------------------------------------------------


def test_book_takes_a_seat_and_audits_without_health_data(world: World) -> None:
    [slot] = world.event(capacity=3)
    resp = world.book(world.member_ref(), slot)
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    assert data["status"] == "booked" and data["slot_id"] == slot
    assert data["waitlist_position"] is None
    assert datetime.fromisoformat(data["end_at"]) > datetime.fromisoformat(data["start_at"])
    assert world.booked_count(slot) == 1
    with get_db(world.app).transaction(write=False) as session:
        log = session.scalars(select(AuditLog).where(AuditLog.action == "booking.booked")).one()
        kiosk = session.get(Kiosk, world.kiosk_pk)
        assert kiosk is not None
        assert log.actor == f"kiosk:{kiosk.public_id}"
        assert log.subject is not None and log.subject.startswith("member:")
        assert set(log.detail) == {"booking", "slot", "event", "status"}


def test_full_slot_waitlists_in_creation_order(world: World) -> None:
    [slot] = world.event(capacity=1)
    answers = [world.book(world.member_ref(), slot).get_json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["booked", "waitlisted", "waitlisted"]
    assert [a["waitlist_position"] for a in answers] == [None, 1, 2]
    assert world.booked_count(slot) == 1


def test_one_active_booking_per_event(world: World) -> None:
    first, second = world.event(slots=2)
    ref = world.member_ref()
    assert world.book(ref, first).status_code == 201
    resp = world.book(ref, second)
    assert resp.status_code == 409
    assert _field(resp) == "slot_id"
    assert "already has a booking for this event" in resp.get_json()["detail"]
    assert world.booked_count(second) == 0


def test_a_waitlisted_member_also_counts_as_booked_for_the_event(world: World) -> None:
    first, second = world.event(slots=2, capacity=1)
    world.book(world.member_ref(), first)
    ref = world.member_ref()
    assert world.book(ref, first).get_json()["status"] == "waitlisted"
    assert world.book(ref, second).status_code == 409


def test_unique_index_backstop_becomes_409(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the application check, the partial unique index must still refuse, as a 409.
    monkeypatch.setattr(svc.member, "_refuse_second_booking", lambda *a, **k: None)
    first, second = world.event(slots=2)
    ref = world.member_ref()
    assert world.book(ref, first).status_code == 201
    resp = world.book(ref, second)
    assert resp.status_code == 409 and _field(resp) == "slot_id"
    assert world.booked_count(second) == 0


def test_member_can_book_again_after_cancelling(world: World) -> None:
    first, second = world.event(slots=2)
    ref = world.member_ref()
    booking = world.book(ref, first).get_json()
    assert world.cancel(booking["booking_id"]).status_code == 200
    assert world.book(ref, second).get_json()["status"] == "booked"


@pytest.mark.parametrize("what", ["slot", "event"])
def test_cancelled_slot_or_event_refused(world: World, what: str) -> None:
    [slot] = world.event()
    with get_db(world.app).transaction() as session:
        row = session.scalars(select(Slot).where(Slot.public_id == slot)).one()
        if what == "slot":
            row.cancelled = True
        else:
            session.get_one(Event, row.event_id).cancelled = True
    resp = world.book(world.member_ref(), slot)
    assert resp.status_code == 409 and _field(resp) == "slot_id"
    assert "cancelled" in resp.get_json()["detail"]


def test_started_slot_refused(world: World) -> None:
    [slot] = world.event(start=datetime.now(UTC) - timedelta(minutes=5))
    resp = world.book(world.member_ref(), slot)
    assert resp.status_code == 409 and _field(resp) == "slot_id"
    assert "started" in resp.get_json()["detail"]


def test_refusals_stay_english_for_a_kiosk_that_asks_for_spanish(world: World) -> None:
    # The dashboard translates a service's refusal; the API's problem document never does.
    [slot] = world.event(start=datetime.now(UTC) - timedelta(minutes=5))
    resp = world.client.post("/api/v1/bookings", headers={**world.headers,
                                                          "Accept-Language": "es"},
                             json={"idempotency_key": new_key(),
                                   "member_ref": world.member_ref(), "slot_id": slot})
    body = resp.get_json()
    assert resp.status_code == 409 and resp.mimetype == "application/problem+json"
    assert body["errors"] == [{"field": "slot_id", "message": "this slot has already started"}]
    assert body["detail"] == "slot_id: this slot has already started"


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_promotes_first_waitlisted(world: World) -> None:
    [slot] = world.event(capacity=1)
    refs = [world.member_ref() for _ in range(3)]
    first = world.book(refs[0], slot).get_json()
    world.book(refs[1], slot)
    world.book(refs[2], slot)
    resp = world.cancel(first["booking_id"])
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "cancelled"
    assert [b["status"] for b in world.lookup(refs[1])] == ["booked"]
    assert [(b["status"], b["waitlist_position"]) for b in world.lookup(refs[2])] == \
        [("waitlisted", 1)]
    assert world.lookup(refs[0]) == []
    assert world.booked_count(slot) == 1
    assert world.status_counts(slot) == {"cancelled": 1, "booked": 1, "waitlisted": 1}
    with get_db(world.app).transaction(write=False) as session:
        assert session.scalars(select(AuditLog)
                               .where(AuditLog.action == "booking.promoted")).one()


def test_cancel_without_waitlist_frees_the_seat(world: World) -> None:
    [slot] = world.event(capacity=2)
    booking = world.book(world.member_ref(), slot).get_json()
    world.cancel(booking["booking_id"])
    assert world.booked_count(slot) == 0


def test_only_the_member_who_booked_can_cancel_or_move_it(world: World) -> None:
    [slot, other_slot] = world.event(slots=2, capacity=2)
    booking = world.book(world.member_ref(), slot).get_json()
    stranger = world.member_ref()
    for resp in (world.cancel(booking["booking_id"], ref=stranger),
                 world.reschedule(booking["booking_id"], other_slot, ref=stranger)):
        # The same answer as a booking that does not exist: nothing to probe.
        assert resp.status_code == 404 and _field(resp) == "booking_id"
    assert world.booked_count(slot) == 1


def test_leaving_the_waitlist_promotes_nobody(world: World) -> None:
    [slot] = world.event(capacity=1)
    world.book(world.member_ref(), slot)
    waiting = world.book(world.member_ref(), slot).get_json()
    behind = world.member_ref()
    world.book(behind, slot)
    assert world.cancel(waiting["booking_id"]).status_code == 200
    assert world.booked_count(slot) == 1
    assert [(b["status"], b["waitlist_position"]) for b in world.lookup(behind)] == \
        [("waitlisted", 1)]


def test_cancelling_a_cancelled_booking_is_409(world: World) -> None:
    [slot] = world.event()
    booking = world.book(world.member_ref(), slot).get_json()
    world.cancel(booking["booking_id"])
    resp = world.cancel(booking["booking_id"])
    assert resp.status_code == 409 and _field(resp) == "booking_id"
    assert world.booked_count(slot) == 0


# --- reschedule -----------------------------------------------------------------------------


def test_reschedule_within_the_event(world: World) -> None:
    first, second = world.event(slots=2, capacity=1)
    ref = world.member_ref()
    old = world.book(ref, first).get_json()
    resp = world.reschedule(old["booking_id"], second)
    assert resp.status_code == 200, resp.get_json()
    new = resp.get_json()
    assert new["status"] == "booked" and new["slot_id"] == second
    assert new["replaced_booking_id"] == old["booking_id"]
    assert new["booking_id"] != old["booking_id"]
    assert [b["booking_id"] for b in world.lookup(ref)] == [new["booking_id"]]
    assert (world.booked_count(first), world.booked_count(second)) == (0, 1)


def test_reschedule_to_a_full_slot_keeps_the_old_booking(world: World) -> None:
    first, second = world.event(slots=2, capacity=1)
    world.book(world.member_ref(), second)
    ref = world.member_ref()
    old = world.book(ref, first).get_json()
    resp = world.reschedule(old["booking_id"], second)
    assert resp.status_code == 409 and _field(resp) == "slot_id"
    assert "full" in resp.get_json()["detail"]
    assert [(b["booking_id"], b["status"]) for b in world.lookup(ref)] == \
        [(old["booking_id"], "booked")]
    assert (world.booked_count(first), world.booked_count(second)) == (1, 1)
    assert world.status_counts(first) == {"booked": 1}


def test_reschedule_promotes_the_old_slots_waitlist(world: World) -> None:
    first, second = world.event(slots=2, capacity=1)
    mover = world.book(world.member_ref(), first).get_json()
    waiting = world.member_ref()
    world.book(waiting, first)
    assert world.reschedule(mover["booking_id"], second).status_code == 200
    assert [b["status"] for b in world.lookup(waiting)] == ["booked"]
    assert (world.booked_count(first), world.booked_count(second)) == (1, 1)


def test_reschedule_from_the_waitlist_to_a_free_slot(world: World) -> None:
    first, second = world.event(slots=2, capacity=1)
    world.book(world.member_ref(), first)
    ref = world.member_ref()
    waiting = world.book(ref, first).get_json()
    resp = world.reschedule(waiting["booking_id"], second)
    assert resp.status_code == 200 and resp.get_json()["status"] == "booked"
    assert (world.booked_count(first), world.booked_count(second)) == (1, 1)
    assert [b["slot_id"] for b in world.lookup(ref)] == [second]


def test_reschedule_to_another_sites_slot_refused(world: World) -> None:
    [mine] = world.event()
    with get_db(world.app).transaction() as session:
        other_site_id = gen_site(session).id
    [theirs] = world.event(site_id=other_site_id)
    ref = world.member_ref()
    old = world.book(ref, mine).get_json()
    resp = world.reschedule(old["booking_id"], theirs)
    assert resp.status_code == 404 and _field(resp) == "slot_id"
    assert [b["booking_id"] for b in world.lookup(ref)] == [old["booking_id"]]
    assert world.booked_count(theirs) == 0


def test_reschedule_to_the_same_slot_refused(world: World) -> None:
    [slot] = world.event()
    old = world.book(world.member_ref(), slot).get_json()
    resp = world.reschedule(old["booking_id"], slot)
    assert resp.status_code == 409 and _field(resp) == "slot_id"
    assert world.booked_count(slot) == 1


def test_reschedule_into_an_event_already_booked_refused(world: World) -> None:
    [a] = world.event()
    [b1, b2] = world.event(slots=2)
    ref = world.member_ref()
    in_a = world.book(ref, a).get_json()
    world.book(ref, b1)
    resp = world.reschedule(in_a["booking_id"], b2)
    assert resp.status_code == 409 and _field(resp) == "slot_id"
    assert sorted(b["slot_id"] for b in world.lookup(ref)) == sorted([a, b1])


def test_reschedule_a_cancelled_booking_refused(world: World) -> None:
    first, second = world.event(slots=2)
    old = world.book(world.member_ref(), first).get_json()
    world.cancel(old["booking_id"])
    resp = world.reschedule(old["booking_id"], second)
    assert resp.status_code == 409 and _field(resp) == "booking_id"
    assert world.booked_count(second) == 0


# --- the edges of time: started and ended slots -----------------------------------------


def _move(world: World, slot_id: str, when: str) -> None:
    """Shift a slot so that it has started (and runs 10 more minutes) or has ended."""
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = {"started": (now - timedelta(minutes=5), now + timedelta(minutes=10)),
                  "ended": (now - timedelta(minutes=30), now - timedelta(minutes=15))}[when]
    with get_db(world.app).transaction() as session:
        slot = session.scalars(select(Slot).where(Slot.public_id == slot_id)).one()
        slot.start_at, slot.end_at = start, end


def _promotions(world: World) -> int:
    with get_db(world.app).transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(AuditLog)
                                  .where(AuditLog.action == "booking.promoted")) or 0)


def test_cancel_after_the_start_promotes_nobody(world: World) -> None:
    [slot] = world.event(capacity=1)
    seated = world.book(world.member_ref(), slot).get_json()
    waiting = world.member_ref()
    world.book(waiting, slot)
    _move(world, slot, "started")
    resp = world.cancel(seated["booking_id"])
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    # The seat stays free, the waitlist stays as it was: nobody is sent into a running slot.
    assert [(b["status"], b["waitlist_position"]) for b in world.lookup(waiting)] == \
        [("waitlisted", 1)]
    assert world.booked_count(slot) == 0
    assert world.status_counts(slot) == {"cancelled": 1, "waitlisted": 1}
    assert _promotions(world) == 0


def test_leaving_the_waitlist_after_the_start_is_allowed(world: World) -> None:
    [slot] = world.event(capacity=1)
    world.book(world.member_ref(), slot)
    waiting = world.book(world.member_ref(), slot).get_json()
    _move(world, slot, "started")
    assert world.cancel(waiting["booking_id"]).status_code == 200
    assert world.status_counts(slot) == {"booked": 1, "cancelled": 1}


@pytest.mark.parametrize("status", ["booked", "waitlisted"])
def test_cancel_after_the_end_is_refused(world: World, status: str) -> None:
    [slot] = world.event(capacity=1)
    seated = world.book(world.member_ref(), slot).get_json()
    waiting = world.book(world.member_ref(), slot).get_json()
    _move(world, slot, "ended")
    booking = seated if status == "booked" else waiting
    resp = world.cancel(booking["booking_id"])
    assert resp.status_code == 409 and _field(resp) == "booking_id"
    assert resp.mimetype == "application/problem+json"
    assert "ended" in resp.get_json()["detail"] and "no-show" in resp.get_json()["detail"]
    assert world.status_counts(slot) == {"booked": 1, "waitlisted": 1}
    assert world.booked_count(slot) == 1
    # The unused seat becomes a no-show instead.
    with get_db(world.app).transaction() as session:
        assert svc.mark_no_shows(session) == 1
    assert world.status_counts(slot) == {"no_show": 1, "waitlisted": 1}


def test_reschedule_out_of_a_started_slot_promotes_nobody(world: World) -> None:
    first, second = world.event(slots=2, capacity=1)
    ref = world.member_ref()
    mover = world.book(ref, first).get_json()
    waiting = world.member_ref()
    world.book(waiting, first)
    _move(world, first, "started")
    resp = world.reschedule(mover["booking_id"], second)
    assert resp.status_code == 200, resp.get_json()
    assert [b["slot_id"] for b in world.lookup(ref)] == [second]
    assert [b["status"] for b in world.lookup(waiting)] == ["waitlisted"]
    assert (world.booked_count(first), world.booked_count(second)) == (0, 1)
    assert _promotions(world) == 0


def test_reschedule_out_of_an_ended_slot_is_refused(world: World) -> None:
    first, second = world.event(slots=2, capacity=1)
    ref = world.member_ref()
    old = world.book(ref, first).get_json()
    _move(world, first, "ended")
    resp = world.reschedule(old["booking_id"], second)
    assert resp.status_code == 409 and _field(resp) == "booking_id"
    assert "ended" in resp.get_json()["detail"]
    assert world.status_counts(first) == {"booked": 1}
    assert (world.booked_count(first), world.booked_count(second)) == (1, 0)


@pytest.mark.parametrize("when", ["started", "ended"])
def test_reschedule_into_a_started_or_ended_slot_is_refused(world: World, when: str) -> None:
    first, second = world.event(slots=2, capacity=1)
    old = world.book(world.member_ref(), second).get_json()
    _move(world, first, when)
    resp = world.reschedule(old["booking_id"], first)
    assert resp.status_code == 409 and _field(resp) == "slot_id"
    assert "started" in resp.get_json()["detail"]
    assert (world.booked_count(first), world.booked_count(second)) == (0, 1)


# --- idempotency ----------------------------------------------------------------------------


def test_replayed_booking_returns_first_answer(world: World) -> None:
    [slot] = world.event(capacity=1)
    ref, key = world.member_ref(), new_key()
    first = world.book(ref, slot, key)
    again = world.book(ref, slot, key.upper())
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert world.count(Booking) == 1 and world.booked_count(slot) == 1


def test_replayed_cancel_returns_first_answer_and_promotes_once(world: World) -> None:
    [slot] = world.event(capacity=1)
    booking = world.book(world.member_ref(), slot).get_json()
    world.book(world.member_ref(), slot)
    world.book(world.member_ref(), slot)
    key = new_key()
    first = world.cancel(booking["booking_id"], key)
    again = world.cancel(booking["booking_id"], key)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.get_json() == first.get_json()
    assert world.status_counts(slot) == {"cancelled": 1, "booked": 1, "waitlisted": 1}


def test_replayed_reschedule_returns_first_answer(world: World) -> None:
    first_slot, second_slot = world.event(slots=2)
    old = world.book(world.member_ref(), first_slot).get_json()
    key = new_key()
    first = world.reschedule(old["booking_id"], second_slot, key)
    again = world.reschedule(old["booking_id"], second_slot, key)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.get_json() == first.get_json()
    assert world.count(Booking) == 2
    assert (world.booked_count(first_slot), world.booked_count(second_slot)) == (0, 1)


def test_same_key_different_booking_body_is_409(world: World) -> None:
    first, second = world.event(slots=2)
    [other] = world.event()
    ref, key = world.member_ref(), new_key()
    world.book(ref, first, key)
    resp = world.book(ref, other, key)
    assert resp.status_code == 409 and _field(resp) == "idempotency_key"
    assert world.count(Booking) == 1 and world.booked_count(other) == 0
    assert world.booked_count(second) == 0


def test_same_key_on_another_operation_is_409(world: World) -> None:
    [slot] = world.event()
    key = new_key()
    booking = world.book(world.member_ref(), slot, key).get_json()
    resp = world.cancel(booking["booking_id"], key)
    assert resp.status_code == 409 and _field(resp) == "idempotency_key"
    assert world.booked_count(slot) == 1


def test_same_cancel_key_for_another_booking_is_409(world: World) -> None:
    [slot] = world.event()
    a = world.book(world.member_ref(), slot).get_json()
    b = world.book(world.member_ref(), slot).get_json()
    key = new_key()
    world.cancel(a["booking_id"], key)
    resp = world.cancel(b["booking_id"], key)
    assert resp.status_code == 409 and _field(resp) == "idempotency_key"
    assert world.booked_count(slot) == 1


def test_refused_request_stores_no_answer(world: World) -> None:
    [slot] = world.event()
    key = new_key()
    assert world.book("not-a-ref", slot, key).status_code == 422
    assert world.count(IdempotentRequest) == 0
    assert world.book(world.member_ref(), slot, key).status_code == 201


# --- bad input names its field --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"member_ref": None}, 422, "member_ref"),
        ({"member_ref": "garbage.ref.value"}, 422, "member_ref"),
        ({"member_ref": ""}, 422, "member_ref"),
        ({"slot_id": "not-a-uuid"}, 422, "slot_id"),
        ({"slot_id": None}, 422, "slot_id"),
        ({"slot_id": "00000000-0000-4000-8000-000000000000"}, 404, "slot_id"),
        ({"idempotency_key": "nope"}, 422, "idempotency_key"),
        ({"extra": 1}, 422, "extra"),
    ],
)
def test_bad_booking_input_names_its_field(
    world: World, change: dict[str, Any], status: int, field: str
) -> None:
    [slot] = world.event()
    body: dict[str, Any] = {"idempotency_key": new_key(), "member_ref": world.member_ref(),
                            "slot_id": slot, **change}
    body = {k: v for k, v in body.items() if v is not None}
    resp = world.client.post("/api/v1/bookings", headers=world.headers, json=body)
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert _field(resp) == field
    assert world.count(Booking) == 0


def test_other_sites_slot_is_404(world: World) -> None:
    with get_db(world.app).transaction() as session:
        other_site_id = gen_site(session).id
    [theirs] = world.event(site_id=other_site_id)
    resp = world.book(world.member_ref(), theirs)
    assert resp.status_code == 404 and _field(resp) == "slot_id"
    assert world.booked_count(theirs) == 0


def test_member_ref_of_another_kiosk_refused(world: World, app: Any, client: Any) -> None:
    from ..helpers import pair_kiosk

    with get_db(app).transaction() as session:
        slug = session.get_one(Site, world.site_id).slug
    other = World(app, client, pair_kiosk(app, client, slug))
    [slot] = world.event()
    resp = world.book(other.member_ref(), slot)
    assert resp.status_code == 422 and _field(resp) == "member_ref"


@pytest.mark.parametrize(("booking_id", "status"), [
    ("not-a-uuid", 422), ("00000000-0000-4000-8000-000000000000", 404)])
def test_bad_booking_id_named(world: World, booking_id: str, status: int) -> None:
    [slot] = world.event()
    for resp in (world.cancel(booking_id), world.reschedule(booking_id, slot)):
        assert resp.status_code == status and _field(resp) == "booking_id"


def test_other_sites_booking_is_404(world: World, app: Any, client: Any) -> None:
    from ..helpers import pair_kiosk

    with get_db(app).transaction() as session:
        slug = gen_site(session).slug
    other = World(app, client, pair_kiosk(app, client, slug))
    [theirs] = other.event()
    booking = other.book(other.member_ref(), theirs).get_json()
    resp = world.cancel(booking["booking_id"])
    assert resp.status_code == 404 and _field(resp) == "booking_id"
    assert other.booked_count(theirs) == 1


def test_lookup_lists_only_active_upcoming_bookings_here(world: World) -> None:
    ref = world.member_ref()
    [a] = world.event(start=datetime.now(UTC) + timedelta(days=2))
    [b] = world.event(start=datetime.now(UTC) + timedelta(days=1))
    [c] = world.event()
    world.book(ref, a)
    world.book(ref, b)
    gone = world.book(ref, c).get_json()
    world.cancel(gone["booking_id"])
    assert [x["slot_id"] for x in world.lookup(ref)] == [b, a]
    resp = world.client.post("/api/v1/members/bookings/lookup", headers=world.headers,
                             json={"member_ref": "bad"})
    assert resp.status_code == 422 and _field(resp) == "member_ref"


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/bookings", {}),
    # Fixed ids, not new_key(): pytest-xdist needs every worker to collect the same test ids.
    ("/api/v1/bookings/00000000-0000-4000-8000-000000000001/cancel", {}),
    ("/api/v1/bookings/00000000-0000-4000-8000-000000000002/reschedule", {}),
    ("/api/v1/members/bookings/lookup", {}),
])
def test_every_endpoint_needs_a_device_token(client: Any, path: str, body: dict[str, Any]
                                             ) -> None:
    assert client.post(path, json=body).status_code == 401


# --- services used by the dashboard and housekeeping ----------------------------------------


def test_check_in_list_and_no_shows(world: World) -> None:
    [slot] = world.event(capacity=2)
    a = world.book(world.member_ref(), slot).get_json()
    b = world.book(world.member_ref(), slot).get_json()
    c = world.book(world.member_ref(), slot).get_json()
    with get_db(world.app).transaction() as session:
        def find(x: dict[str, Any]) -> Booking:
            return session.scalars(select(Booking).where(
                Booking.public_id == x["booking_id"])).one()

        assert svc.check_in(session, find(a), "user:1").status == "checked_in"
        assert svc.check_in(session, find(a), "user:1").status == "checked_in"
        with pytest.raises(svc.BookingError) as err:
            svc.check_in(session, find(c), "user:1")
        assert err.value.field == "booking_id"
        slot_row = session.scalars(select(Slot).where(Slot.public_id == slot)).one()
        rows = svc.list_slot_bookings(session, slot_row)
        assert [(r.booking_id, r.status, r.waitlist_position) for r in rows] == [
            (a["booking_id"], "checked_in", None), (b["booking_id"], "booked", None),
            (c["booking_id"], "waitlisted", 1)]
        assert all(r.first_name and r.employee_id for r in rows)
        # Before the slot ends nothing changes; after it, only the still-booked seat is a no-show.
        assert svc.mark_no_shows(session, slot_row.start_at) == 0
        assert svc.mark_no_shows(session, slot_row.end_at + timedelta(seconds=1)) == 1
    assert world.status_counts(slot) == {"checked_in": 1, "no_show": 1, "waitlisted": 1}
    assert world.booked_count(slot) == 2


def test_coordinator_cancel_reports_the_promotion(world: World) -> None:
    [slot] = world.event(capacity=1)
    a = world.book(world.member_ref(), slot).get_json()
    b = world.book(world.member_ref(), slot).get_json()
    with get_db(world.app).transaction() as session:
        booking = session.scalars(select(Booking).where(
            Booking.public_id == a["booking_id"])).one()
        result = svc.cancel_booking(session, booking, "user:7")
        assert result.booking.status == "cancelled"
        assert result.promoted is not None and result.promoted.booking_id == b["booking_id"]
        assert result.promoted.status == "booked"
        actors = set(session.scalars(select(AuditLog.actor)
                                     .where(AuditLog.action.like("booking.%"))))
        assert "user:7" in actors


# --- concurrent replays against a real server -----------------------------------------------


def test_concurrent_replays_of_one_key_make_one_booking(live_server: Any) -> None:
    db = Database()
    db.configure(live_server.env["ONSITE_DATABASE_URL"])
    token = "replay-test-token-" + new_key()
    with db.transaction() as session:
        site = gen_site(session)
        kiosk = Kiosk(site_id=site.id, token_hash=hash_token(token),
                      paired_at=datetime.now(UTC))
        session.add(kiosk)
        member = gen_member(session, site)
        session.flush()
        ref = make_member_ref("live-test-secret", member, kiosk)
        slot_id = gen_event(session, site, capacity=5).slots[0].public_id
    body = {"idempotency_key": new_key(), "member_ref": ref, "slot_id": slot_id}
    barrier = threading.Barrier(20)

    def send(_: int) -> tuple[int, Any]:
        barrier.wait()
        resp = requests.post(f"{live_server.url}/api/v1/bookings", json=body,
                             headers=auth(token), timeout=60)
        return resp.status_code, resp.json()

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    assert {status for status, _ in answers} == {201}
    assert len({a["booking_id"] for _, a in answers}) == 1
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Booking)
                              .where(Booking.member_id == member.id)) == 1
        assert session.scalars(select(Slot.booked_count)
                               .where(Slot.public_id == slot_id)).one() == 1
        assert session.scalar(select(func.count()).select_from(IdempotentRequest)
                              .where(IdempotentRequest.key == body["idempotency_key"])) == 1
    db.dispose()
