"""kiosk.visit as a package: a thin Visit holding one model per area (issue 17 §4).

The screens and kv files may bind an area's typed method directly; the one-class names stay
as the same methods, so ``app.act("confirm")`` and ``visit.booking.confirm`` do one thing.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from kiosk.flow import MENU, QR
from kiosk.visit import Booking, QrCodes, Questions, Referral, Results, SignIn, Visit
from kiosk.visit.compat import AREAS, FlatNames, _Via
from tests.kiosk.test_visit import _signed_in

AREA_TYPES = {"signin": SignIn, "questions": Questions, "results": Results,
              "referral": Referral, "booking": Booking, "qr": QrCodes}


def test_each_area_is_a_typed_model_on_the_visit() -> None:
    visit, _ = _signed_in()
    assert set(AREAS) == set(AREA_TYPES)
    for name, kind in AREA_TYPES.items():
        assert isinstance(getattr(visit, name), kind)


@pytest.mark.parametrize("name", sorted(
    name for name, value in vars(FlatNames).items() if isinstance(value, _Via)))
def test_every_flat_name_is_its_areas_own_method(name: str) -> None:
    visit, _ = _signed_in()
    via = vars(FlatNames)[name]
    flat = getattr(visit, name)
    owned = getattr(getattr(visit, via.area), via.method.__name__)
    assert flat == owned and flat.__func__ is via.method
    assert flat.__self__ is getattr(visit, via.area)
    assert inspect.signature(flat) == inspect.signature(owned)


def test_a_booking_through_the_area_model() -> None:
    visit, fake = _signed_in()
    visit.fire("booking")
    event = visit.booking.events()[0]
    visit.booking.choose_event(event.id)
    slot = visit.booking.slots()[0]
    visit.booking.choose_slot(slot.id)
    assert visit.booking.pending_slot() == slot and visit.pending == ("book", slot.id)
    assert visit.booking.confirm() == QR
    assert visit.booked is visit.booking.booked is not None
    assert [code.kind for code in visit.qr.qr_codes()][0] == "ticket"


def test_ending_the_visit_builds_every_area_afresh() -> None:
    visit, _ = _signed_in()
    visit.questions.single("phq9")
    visit.booking.load_bookings()
    before = {name: getattr(visit, name) for name in AREAS}
    assert visit.holds_member_data()
    visit.end()
    assert not visit.holds_member_data()
    assert all(getattr(visit, name) is not before[name] for name in AREAS)
    assert visit.signin.identity is None and visit.screen != MENU


def test_the_package_keeps_every_module_short() -> None:
    folder = Path(inspect.getfile(Visit)).parent
    lengths = {p.name: len(p.read_text(encoding="utf-8").splitlines())
               for p in folder.glob("*.py")}
    assert max(lengths.values()) <= 500, lengths
