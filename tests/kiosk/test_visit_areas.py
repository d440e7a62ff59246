"""kiosk.visit as a package: a thin Visit holding one model per area (issue 17 §4).

The screens and kv files bind an area's typed method directly (``app.do(app.visit.booking.
confirm)``, never a method's name in a string); the one-class names stay as the same methods,
so ``visit.confirm`` and ``visit.booking.confirm`` do one thing.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from kiosk.flow import ATTRACT, BOOKING, DONE, IDENTIFY, MENU, PRIVACY, QR, REFERRAL
from kiosk.visit import Booking, QrCodes, Questions, Referral, Results, SignIn, Visit
from kiosk.visit.compat import AREAS, FlatNames, _Via
from kiosk.visit.moves import Moves
from tests.kiosk.test_visit import Clock, _signed_in
from tests.kiosk.ui.fakes import FakeBackend

UI = Path(inspect.getfile(Visit)).parents[1] / "ui"

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


def _button_sources() -> dict[str, str]:
    """The kv files and the screens' Python: everywhere a button is told what to do."""
    return {str(path.relative_to(UI)): path.read_text(encoding="utf-8")
            for path in sorted((*UI.glob("kv/*.kv"), *UI.glob("*.py"),
                                *UI.glob("screens/*.py")))}


def test_every_button_binds_an_area_models_typed_method_never_a_name_in_a_string() -> None:
    visit, _ = _signed_in()
    bound = []
    for where, text in _button_sources().items():
        assert "app.act(" not in text, where
        for path in re.findall(r"app\.do\((?:self|app|d\.app)\.visit\.([\w.]+)", text):
            owner = visit
            for part in path.split(".")[:-1]:
                owner = getattr(owner, part)
            method = getattr(owner, path.split(".")[-1])
            assert inspect.ismethod(method) and method.__self__ is owner, (where, path)
            bound.append(path)
    # The kv files' 15 buttons and the screens' 16 moves, and more as they come.
    assert len(bound) >= 31, bound


def test_the_plain_moves_take_the_member_to_the_next_screen() -> None:
    visit = Visit(FakeBackend(), clock=Clock())
    assert isinstance(visit.go, Moves) and visit.screen == ATTRACT
    assert visit.go.start() == PRIVACY
    assert visit.go.accept_privacy() == IDENTIFY
    assert visit.signin.identify("e1001", "03141985") and visit.screen == MENU
    assert visit.go.to_booking() == BOOKING
    assert visit.referral.ask_follow_up() == REFERRAL  # no way to reach the member chosen yet
    assert visit.go.done() == MENU
    assert visit.go.to_advocate() == QR
    assert visit.go.done() == DONE
    visit, _ = _signed_in()
    assert visit.go.finish() == DONE
