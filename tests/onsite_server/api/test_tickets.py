"""Booking tickets: signed with the ticket key, on booked seats only, revoked on cancel."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

import PIL.Image
import pytest
import zxingcpp

from shared.qr import qr_png
from shared.tokens import KeyRing, Purpose, TokenError, verify

from ..helpers import new_key
from .test_bookings import World, world  # noqa: F401 - the fixture is used by name


def _ring(w: World) -> KeyRing:
    ring = KeyRing()
    for key in w.client.get("/.well-known/jwks.json").get_json()["keys"]:
        ring.add_jwk(key)
    ring.revoke(w.client.get("/.well-known/revoked-tokens.json").get_json()["revoked"])
    return ring


def _token(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def test_a_booked_seat_has_a_ticket_that_verifies_offline(world: World) -> None:  # noqa: F811
    (slot,) = world.event()
    resp = world.book(world.member_ref(), slot)
    body = resp.get_json()
    assert resp.status_code == 201 and body["status"] == "booked"
    assert body["ticket_url"] == f"{world.app.config['CENTRAL_WEB_URL']}/ticket/{body['ticket']}"
    got = verify(body["ticket"], _ring(world), purpose=Purpose.TICKET)
    assert got.fields == {"subject": body["booking_id"], "slot": slot}
    decoded = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(qr_png(body["ticket_url"]))),
                                     formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in decoded] == [body["ticket_url"]]
    with pytest.raises(TokenError) as caught:
        verify(body["ticket"], _ring(world), purpose=Purpose.ADVOCATE_LINK)
    assert caught.value.reason == "wrong_purpose"


def test_the_same_ticket_every_time(world: World) -> None:  # noqa: F811
    (slot,) = world.event()
    ref = world.member_ref()
    key = new_key()
    first = world.book(ref, slot, key=key).get_json()
    replay = world.book(ref, slot, key=key).get_json()
    (listed,) = world.lookup(ref)
    assert first["ticket"] == replay["ticket"] == listed["ticket"]


def test_waitlisted_has_no_ticket_until_promoted(world: World) -> None:  # noqa: F811
    (slot,) = world.event(capacity=1)
    first = world.book(world.member_ref(), slot).get_json()
    waiting_ref = world.member_ref()
    waiting = world.book(waiting_ref, slot).get_json()
    assert waiting["status"] == "waitlisted"
    assert waiting["ticket"] is None and waiting["ticket_url"] is None
    assert world.cancel(first["booking_id"]).status_code == 200
    (promoted,) = world.lookup(waiting_ref)
    assert promoted["status"] == "booked" and promoted["ticket"]
    verify(promoted["ticket"], _ring(world), purpose=Purpose.TICKET)


def test_a_cancelled_bookings_ticket_is_revoked(world: World) -> None:  # noqa: F811
    (slot,) = world.event()
    body = world.book(world.member_ref(), slot).get_json()
    verify(body["ticket"], _ring(world), purpose=Purpose.TICKET)
    cancelled = world.cancel(body["booking_id"]).get_json()
    assert cancelled["status"] == "cancelled" and cancelled["ticket"] is None
    with pytest.raises(TokenError) as caught:
        verify(body["ticket"], _ring(world), purpose=Purpose.TICKET)
    assert caught.value.reason == "revoked"


def test_reschedule_issues_a_ticket_for_the_new_slot(world: World) -> None:  # noqa: F811
    first_slot, second_slot = world.event(slots=2)
    body = world.book(world.member_ref(), first_slot).get_json()
    moved = world.reschedule(body["booking_id"], second_slot).get_json()
    got = verify(moved["ticket"], _ring(world), purpose=Purpose.TICKET)
    assert got.fields["slot"] == second_slot
    with pytest.raises(TokenError):
        verify(body["ticket"], _ring(world), purpose=Purpose.TICKET)


def test_ticket_is_not_readable_data(world: World) -> None:  # noqa: F811
    (slot,) = world.event()
    body: dict[str, Any] = world.book(world.member_ref(), slot).get_json()
    assert "Tester" not in body["ticket"] and len(body["ticket"]) < 250
