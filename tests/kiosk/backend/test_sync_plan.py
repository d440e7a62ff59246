"""Which rows a request may carry beside another in flight (``kiosk.sync_plan``)."""

from __future__ import annotations

from typing import Any

import pytest

from kiosk.outbox import CRISIS_LANE, NORMAL_LANE, Row
from kiosk.sync_plan import Unit, identified, next_unit, session_of

_seq = iter(range(1, 10_000))


def item(key: str, session: str, *, member: bool = False, crisis: bool = False) -> Row:
    """A submission row of a kiosk session, anonymous unless ``member``."""
    who: dict[str, Any] = ({"offline_identity": {"id": "E1", "birth_date": "1980-01-01"}}
                           if member else {"anonymous": True})
    return Row(next(_seq), key, "submission", CRISIS_LANE if crisis else NORMAL_LANE,
               {"idempotency_key": key, "session_id": session, **who}, "t", 0)


def other(key: str, kind: str = "consent", *, crisis: bool = False) -> Row:
    """A consent or crisis alert row."""
    return Row(next(_seq), key, kind, CRISIS_LANE if crisis else NORMAL_LANE,
               {"idempotency_key": key}, "t", 0)


def keys(unit: Unit | None) -> list[str]:
    """The keys a planned request carries, in order."""
    return [r.key for r in unit.rows] if unit is not None else []


def plan(rows: list[Row], flying: list[Unit], batch_size: int = 3) -> list[str]:
    """The keys of the next request."""
    return keys(next_unit(rows, flying, batch_size=batch_size, batch_bytes=1 << 20))


def test_with_nothing_in_flight_a_request_is_the_leading_run_as_before() -> None:
    rows = [item("a", "s1", member=True), item("b", "s1", member=True), other("c"),
            item("d", "s2")]
    assert plan(rows, []) == ["a", "b"]
    assert plan(rows[2:], []) == ["c"]  # a consent goes alone
    assert plan(rows, [], batch_size=1) == ["a"]
    assert next_unit([], [], batch_size=3, batch_bytes=100) is None


def test_beside_a_request_no_session_of_it_and_none_after_a_waiting_row_of_its_session(
        ) -> None:
    flying = [Unit.of([item("x", "s1")])]
    rows = [item("a", "s1"), item("b", "s2"), item("c", "s1"), item("d", "s3")]
    # s1 is in flight: its later rows wait; other anonymous sessions may go.
    assert plan(rows, flying) == ["b", "d"]
    # A session whose first row waits keeps its later rows waiting too, in any request.
    rows = [item("a", "s4", member=True), item("b", "s4"), item("c", "s5")]
    assert plan(rows, [Unit.of([item("y", "s9", member=True)])]) == ["c"]


def test_only_one_request_in_flight_names_members_and_theirs_go_in_order() -> None:
    named = Unit.of([item("x", "s0", member=True)])
    rows = [item("a", "s1", member=True), item("b", "s2"), item("c", "s3", member=True)]
    assert plan(rows, [named]) == ["b"]
    # Beside anonymous rows a request may name members, from the first one on.
    assert plan(rows, [Unit.of([item("y", "s9")])]) == ["a", "b", "c"]
    # A member's row that waits on its session holds back every later named row.
    waiting = [item("a", "s9", member=True), item("b", "s2"), item("c", "s3", member=True)]
    assert plan(waiting, [Unit.of([item("y", "s9")])]) == ["b"]
    # A consent in flight names a member.
    assert plan(rows, [Unit.of([other("k")])]) == ["b"]


def test_nothing_overtakes_a_crisis_that_cannot_go_yet() -> None:
    named = Unit.of([item("x", "s0", member=True)])
    rows = [item("z", "s1", member=True, crisis=True), item("b", "s2"), item("c", "s3")]
    assert plan(rows, [named]) == []
    # A crisis that can go goes first, with what follows it.
    assert plan(rows, [Unit.of([item("y", "s9")])]) == ["z", "b", "c"]
    # And nothing goes beside it: it is recorded before anything sent after it.
    assert plan(rows[1:], [Unit.of(rows[:1])]) == []
    assert plan(rows[1:], [Unit.of([item("w", "s8", crisis=True)])]) == []
    # A crisis alert goes alone, once nothing is in flight.
    alert = [other("al", "crisis_alert", crisis=True), item("b", "s2")]
    assert plan(alert, [Unit.of([item("y", "s9")])]) == []
    assert plan(alert, []) == ["al"]


def test_beside_a_request_a_consent_stops_the_run() -> None:
    rows = [item("a", "s1"), other("k"), item("b", "s2")]
    assert plan(rows, [Unit.of([item("y", "s9")])]) == ["a"]


def test_a_request_beside_another_keeps_the_byte_budget() -> None:
    rows = [item(f"k{i}", f"s{i}") for i in range(5)]
    size = len('{"idempotency_key":"k0","session_id":"s0","anonymous":true}') + 1
    unit = next_unit(rows, [Unit.of([item("y", "s9")])], batch_size=10,
                     batch_bytes=2 * size)
    assert keys(unit) == ["k0", "k1"]


@pytest.mark.parametrize(("payload", "named"), [
    ({"anonymous": True}, False),
    ({"member_ref": "r"}, True),
    ({"offline_identity": {"id": "E1"}}, True),
    ({}, True),  # nothing says it is anonymous: taken as naming someone
    ({"anonymous": "yes"}, True),
])
def test_a_row_names_a_member_unless_sent_as_anonymous(payload: dict[str, Any],
                                                       named: bool) -> None:
    row = Row(1, "k", "submission", NORMAL_LANE, payload, "t", 0)
    assert identified(row) is named
    assert session_of(row) == "row:k"  # no session: a session of its own
