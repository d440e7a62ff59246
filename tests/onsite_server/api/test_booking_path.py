"""The booking request's short path (issue 20, P2): what it no longer does, and what still holds.

Reads before the write (a replay answered without the write lock), a full slot recognised
from its locked row without the seat UPDATE, and the seat decision never taken from a slot
the caller read earlier.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine.default import NO_CACHE_KEY

from onsite_server.db import get_db
from onsite_server.models import Booking, Kiosk, Member, OutboxMessage, Slot
from onsite_server.services import bookings as svc
from onsite_server.services.members import resolve_member_ref
from onsite_server.services.messages import APPOINTMENT_PRIORITY, MESSAGE_PRIORITY

from ..helpers import new_key, sql_run
from .test_bookings import World


@pytest.fixture
def world(app: Any, client: Any, kiosk: dict[str, Any]) -> World:
    """A paired kiosk and factories for its site."""
    return World(app, client, kiosk)


def _writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.startswith(("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE"))]


def test_a_replay_is_answered_before_any_write(world: World) -> None:
    # On SQLite every write request queues for the one write lock; a kiosk retrying after a
    # lost answer must not queue behind a rush of bookings for an answer that is stored.
    [slot] = world.event(capacity=1)
    ref, key = world.member_ref(), new_key()
    first = world.book(ref, slot, key)
    with sql_run(world.app, upper=True) as seen:
        again = world.book(ref, slot, key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert _writes(seen) == [], _writes(seen)


def test_a_replay_with_another_body_is_refused_before_any_write(world: World) -> None:
    first, second = world.event(slots=2, capacity=1)
    ref, key = world.member_ref(), new_key()
    assert world.book(ref, first, key).status_code == 201
    with sql_run(world.app, upper=True) as seen:
        resp = world.book(ref, second, key)
    assert resp.status_code == 409
    assert resp.get_json()["errors"][0]["field"] == "idempotency_key"
    assert _writes(seen) == [], _writes(seen)


def test_a_full_slot_waitlists_without_the_seat_update(world: World) -> None:
    [slot] = world.event(capacity=1)
    assert world.book(world.member_ref(), slot).get_json()["status"] == "booked"
    ref = world.member_ref()
    with sql_run(world.app, upper=True) as seen:
        answer = world.book(ref, slot).get_json()
    assert answer["status"] == "waitlisted" and answer["waitlist_position"] == 1
    assert not [s for s in seen if s.startswith("UPDATE SLOT")], seen
    assert world.booked_count(slot) == 1


def test_a_seat_freed_after_the_caller_read_the_slot_is_taken(world: World) -> None:
    # The caller's slot object said "full"; a cancellation freed the seat before book() ran.
    # The decision comes from the row read under the lock, so the member gets the seat
    # (a waitlisted booking next to a free seat would wait for a promotion that never comes).
    [slot_id] = world.event(capacity=1)
    holder = world.book(world.member_ref(), slot_id).get_json()
    ref = world.member_ref()
    db = get_db(world.app)
    with db.transaction(write=False) as session:
        stale = svc.find_slot(session, world.site_id, slot_id)
        assert stale.booked_count == stale.capacity == 1
    assert world.cancel(holder["booking_id"]).status_code == 200
    assert world.booked_count(slot_id) == 0
    with db.transaction() as session:
        kiosk = session.get(Kiosk, world.kiosk_pk)
        assert kiosk is not None
        member = resolve_member_ref(session, world.app.config["SECRET_KEY"], ref, kiosk, 3600)
        answer = svc.book(session, member=member, slot=stale, actor="test", kiosk=kiosk)
    assert answer.status == "booked"
    assert world.booked_count(slot_id) == 1
    assert world.status_counts(slot_id) == {"booked": 1, "cancelled": 1}


def test_a_slot_cancelled_after_the_caller_read_it_is_refused(world: World) -> None:
    # Likewise the cancelled check: it reads the locked row, not the caller's object.
    [slot_id] = world.event(capacity=5)
    ref = world.member_ref()
    db = get_db(world.app)
    with db.transaction(write=False) as session:
        stale = svc.find_slot(session, world.site_id, slot_id)
    with db.transaction() as session:
        row = session.scalars(select(Slot).where(Slot.public_id == slot_id)).one()
        row.cancelled = True
    resp = world.book(ref, slot_id)
    assert resp.status_code == 409
    with db.transaction() as session:
        kiosk = session.get(Kiosk, world.kiosk_pk)
        member = session.scalars(select(Member).order_by(Member.id.desc())).first()
        assert kiosk is not None and member is not None
        with pytest.raises(svc.BookingError):
            svc.book(session, member=member, slot=stale, actor="test", kiosk=kiosk)
    with db.transaction(write=False) as session:
        assert session.scalars(select(Booking)).first() is None


@pytest.mark.parametrize("outcome", ["booked", "waitlisted"])
def test_a_booking_compiles_none_of_its_statements_anew(world: World, outcome: str) -> None:
    """Every statement of a booking comes from SQLAlchemy's statement cache, and no SAVEPOINT
    surrounds the booking's row (issue 20 P2, session 10). The idempotency claim, the booking
    row and the two outbox rows were ``on_conflict_do_nothing()`` statements, which carry no
    cache key: each booking compiled all four anew, under the write lock."""
    [slot] = world.event(capacity=1 if outcome == "waitlisted" else 10)
    assert world.book(world.member_ref(), slot).status_code == 201  # the cache is warm now
    engine = get_db(world.app).engine
    uncached: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, _params: Any, context: Any,
             _many: bool) -> None:
        if context.compiled is not None and context.cache_hit is NO_CACHE_KEY:
            uncached.append(" ".join(sql.split())[:80])

    event.listen(engine, "after_cursor_execute", note)
    try:
        with sql_run(world.app, upper=True) as seen:
            answer = world.book(world.member_ref(), slot).get_json()
    finally:
        event.remove(engine, "after_cursor_execute", note)
    assert answer["status"] == outcome
    assert uncached == []
    assert not [s for s in seen if s.startswith(("SAVEPOINT", "RELEASE"))], seen
    # Its Appointment row and its message to the member go in one INSERT.
    assert len([s for s in seen if s.startswith('INSERT INTO "OUTBOX_MESSAGE"')]) == 1, seen
    with get_db(world.app).transaction(write=False) as session:
        booking = session.scalars(select(Booking).where(
            Booking.public_id == answer["booking_id"])).one()
        rows = session.scalars(select(OutboxMessage).where(
            OutboxMessage.booking_id == booking.id).order_by(OutboxMessage.id)).all()
        assert [(r.kind, r.status, r.priority) for r in rows] == [
            ("booking", "pending", APPOINTMENT_PRIORITY), ("message", "pending",
                                                            MESSAGE_PRIORITY)]
        assert rows[1].key == f"message:{booking.public_id}:" + (
            "confirmation" if outcome == "booked" else "waitlisted")
        assert rows[1].payload["booking"] == booking.public_id and rows[1].payload["text"]


@pytest.mark.parametrize("outcome", ["booked", "waitlisted"])
def test_a_bookings_writes_and_replay_check_are_handed_to_the_driver(
        world: World, outcome: str) -> None:
    """The key's claim, the seat, the booking's row, its audit row, its two outbox rows, the
    waitlist position, the stored answer and the replay check before them are SQL compiled
    once per database and run by the driver (``services.statements.Prepared``): none of them
    is looked up in SQLAlchemy's statement cache or compiled per booking (issue 20 P2,
    session 12). The rows they store are checked by the booking tests as before."""
    [slot] = world.event(capacity=1 if outcome == "waitlisted" else 10)
    assert world.book(world.member_ref(), slot).status_code == 201
    engine = get_db(world.app).engine
    ran: list[tuple[str, bool]] = []

    def note(_conn: Any, _cursor: Any, sql: str, _params: Any, context: Any,
             _many: bool) -> None:
        words = sql.replace('"', "").replace("(", " ").upper().split()
        verb = words[0]
        if verb in ("INSERT", "UPDATE", "SELECT"):
            table = words[2] if verb == "INSERT" else words[1] if verb == "UPDATE" else \
                words[words.index("FROM") + 1]
            if verb != "SELECT" or table in ("IDEMPOTENT_REQUEST", "BOOKING"):
                ran.append((f"{verb} {table}", context.compiled is None))

    ref = world.member_ref()
    event.listen(engine, "after_cursor_execute", note)
    try:
        answer = world.book(ref, slot).get_json()
    finally:
        event.remove(engine, "after_cursor_execute", note)
    assert answer["status"] == outcome
    assert [name for name, _ in ran] == [
        "SELECT IDEMPOTENT_REQUEST", "INSERT IDEMPOTENT_REQUEST",
        *(["UPDATE SLOT"] if outcome == "booked" else []),
        "INSERT BOOKING", "INSERT AUDIT_LOG", "INSERT OUTBOX_MESSAGE",
        *(["SELECT BOOKING"] if outcome == "waitlisted" else []),
        "UPDATE IDEMPOTENT_REQUEST"], ran
    assert all(by_driver for _, by_driver in ran), ran


def test_a_booking_row_refused_by_a_unique_index_keeps_no_seat(world: World) -> None:
    """The booking's row is inserted without a SAVEPOINT (session 10): when a unique index
    refuses it (here the idempotency key of another booking), the seat taken for it is given
    back, the refusal names the field, and the transaction carries on unharmed."""
    [slot_id] = world.event(capacity=5)
    key = new_key()
    assert world.book(world.member_ref(), slot_id, key).status_code == 201
    ref = world.member_ref()
    with get_db(world.app).transaction() as session:
        kiosk = session.get(Kiosk, world.kiosk_pk)
        assert kiosk is not None
        member = resolve_member_ref(session, world.app.config["SECRET_KEY"], ref, kiosk, 3600)
        slot = svc.find_slot(session, world.site_id, slot_id)
        with pytest.raises(svc.BookingError) as caught:
            svc.book(session, member=member, slot=slot, actor="test", kiosk=kiosk,
                     idempotency_key=key)
        assert caught.value.field == "idempotency_key"
        # The same transaction goes on (a dashboard re-renders after a refusal) and books.
        again = svc.book(session, member=member, slot=slot, actor="test", kiosk=kiosk)
        assert again.status == "booked"
    assert world.booked_count(slot_id) == 2
    assert world.status_counts(slot_id) == {"booked": 2}


def test_a_second_booking_of_the_event_is_refused_by_its_row_and_keeps_no_seat(
        world: World) -> None:
    """One active booking per member and event: the booking's own row decides (its unique
    index), with no SELECT for another booking under the slot's lock first (session 10). The
    seat taken for the refused row is given back."""
    first, second = world.event(slots=2, capacity=3)
    ref = world.member_ref()
    assert world.book(ref, first).get_json()["status"] == "booked"
    with sql_run(world.app, upper=True) as seen:
        resp = world.book(ref, second)
    assert resp.status_code == 409
    assert resp.get_json()["errors"][0]["field"] == "slot_id"
    assert "already has a booking for this event" in resp.get_json()["errors"][0]["message"]
    assert (world.booked_count(first), world.booked_count(second)) == (1, 0)
    assert not [s for s in seen if s.startswith("SELECT BOOKING.ID FROM BOOKING WHERE "
                                                 "BOOKING.MEMBER_ID")], seen


def test_the_kiosks_slot_is_read_once_under_its_lock_and_another_sites_is_not_found(
        world: World) -> None:
    """The slot a kiosk names is found by the statement that reads it under its lock
    (session 11), not by a SELECT of its own before the write; a slot of another site is
    still a 404 naming slot_id, and the refused request keeps nothing, its key included."""
    from onsite_server.models import AuditLog, IdempotentRequest

    from ..helpers import gen_site

    [slot] = world.event(capacity=5)
    with sql_run(world.app, upper=True) as seen:
        assert world.book(world.member_ref(), slot).status_code == 201
    reads_of_slot = [s for s in seen if s.startswith("SELECT") and "FROM SLOT" in s]
    assert len(reads_of_slot) == 1, reads_of_slot
    with get_db(world.app).transaction() as session:
        other_site_id = gen_site(session).id
    [theirs] = world.event(site_id=other_site_id)
    keys, audits = world.count(IdempotentRequest), world.count(AuditLog)
    ref, key = world.member_ref(), new_key()
    for named in (theirs, "0f0e0d0c-0b0a-4909-8807-060504030201"):
        resp = world.book(ref, named, key)
        assert resp.status_code == 404, resp.get_json()
        assert resp.get_json()["errors"][0]["field"] == "slot_id"
    assert (world.count(IdempotentRequest), world.count(AuditLog)) == (keys, audits)
    assert world.booked_count(theirs) == 0
    assert world.book(ref, slot, key).get_json()["status"] == "booked"  # the key is free


def test_a_booking_is_committed_before_its_answer_is_built(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The booking's work is stored (and on SQLite its group commit turn ended) before its
    answer is serialised: the other bookings of the process no longer wait for that, and the
    answer still leaves only after the COMMIT (session 13)."""
    from onsite_server.api import decorator

    engine = get_db(world.app).engine
    assert engine is not None
    order: list[str] = []
    serialise = decorator.to_response

    def to_response(result: Any) -> Any:
        order.append("answer")
        return serialise(result)

    def committed(_conn: Any) -> None:
        order.append("commit")

    monkeypatch.setattr(decorator, "to_response", to_response)
    [slot] = world.event(capacity=1)
    event.listen(engine, "commit", committed)
    try:
        booked = world.book(world.member_ref(), slot)
        waitlisted = world.book(world.member_ref(), slot)
    finally:
        event.remove(engine, "commit", committed)
    assert [booked.status_code, waitlisted.status_code] == [201, 201]
    assert waitlisted.get_json()["status"] == "waitlisted"
    # Each request: its read phase's end (SQLite only), its COMMIT, then its answer; nothing
    # is committed after an answer was built (before, the COMMIT came after it).
    per_request = " ".join(order).split("answer")
    assert per_request[-1] == "" and len(per_request) == 3, order
    assert all(part.split()[-1] == "commit" for part in per_request[:-1]), order


def test_a_booking_whose_commit_fails_keeps_nothing_and_books_on_a_resend(
        world: World) -> None:
    """A COMMIT that fails is a 503 with nothing kept: no booking, no seat, no stored answer;
    the kiosk's resend with the same key books."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from onsite_server.models import AuditLog, IdempotentRequest

    engine = get_db(world.app).engine
    assert engine is not None
    [slot] = world.event(capacity=1)
    ref, key = world.member_ref(), new_key()
    before = (world.count(Booking), world.count(IdempotentRequest), world.count(AuditLog))
    failed: list[bool] = []

    def fail_once(_conn: Any) -> None:
        if not failed:
            failed.append(True)
            raise OperationalError("COMMIT", None, sqlite3.OperationalError("disk I/O error"))

    event.listen(engine, "commit", fail_once)
    try:
        resp = world.book(ref, slot, key)
    finally:
        event.remove(engine, "commit", fail_once)
    assert failed and resp.status_code == 503, resp.get_json()
    assert (world.count(Booking), world.count(IdempotentRequest),
            world.count(AuditLog)) == before
    assert world.booked_count(slot) == 0
    again = world.book(ref, slot, key)
    assert again.status_code == 201 and again.get_json()["status"] == "booked"


def test_a_booking_reads_its_member_as_three_values(world: World) -> None:
    """The member reference resolves to the member's id, public id and language (one
    prepared SELECT), not a mapped Member loaded through the session (session 13)."""
    loaded: list[Any] = []

    def note(target: Any, _context: Any) -> None:
        loaded.append(target)

    [slot] = world.event(capacity=1)
    ref = world.member_ref()
    event.listen(Member, "load", note)
    try:
        with sql_run(world.app, upper=True) as seen:
            answer = world.book(ref, slot).get_json()
    finally:
        event.remove(Member, "load", note)
    assert answer["status"] == "booked"
    assert loaded == []
    # (On PostgreSQL book() also locks the member's row: SELECT member.id ... FOR UPDATE.)
    reads = [s for s in seen if s.startswith("SELECT") and " FROM MEMBER " in f"{s} "
             and not s.endswith("FOR UPDATE")]
    assert len(reads) == 1 and reads[0].startswith(
        "SELECT MEMBER.ID, MEMBER.PUBLIC_ID, MEMBER.LANGUAGE FROM MEMBER"), reads
