"""Journeys through the real kiosk window, one per process (Kivy's App and Window are singletons).

    python -m tests.kiosk.ui.journeys NAME ARTIFACT_DIR [SERVER_URL PAIRING_CODE]

Each journey taps real widgets through the window, checks what a member would see, and exits
0; a failed check prints its traceback to the real stderr (Kivy captures sys.stderr) and exits
1. ``test_journeys.py`` runs each in its own subprocess.
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.ui.driver import configure_window, headless_environment

WIDTH, HEIGHT = 540, 960


class FakeClock:
    """The visit's clock, moved by the test (Kivy's own frames still run in real time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _start(backend: Any, *, clock: Callable[[], float] | None = None, pin: str | None = "2468",
           require_setup: bool = True) -> Any:
    from kiosk.admin import AdminLock
    from kiosk.ui.app import KioskApp
    from kiosk.ui.driver import Driver

    admin = AdminLock(Path(tempfile.mkdtemp(prefix="kiosk-admin-")))
    if pin:
        admin.set_pin(pin)
    app = KioskApp(backend=backend, admin=admin, clock=clock, require_setup=require_setup)
    return Driver.start(app)


def _to_menu(d: Any, *, anonymous: bool = True) -> None:
    d.tap_id("start")
    d.tap_id("accept")
    assert d.screen().name == "identify"
    if anonymous:
        d.tap_id("anonymous")
    assert d.screen().name == "menu", d.screen().name


def _check_answer_buttons(d: Any) -> None:
    """Answers are big enough for a finger, far enough apart, in the lower two-thirds."""
    from kivy.core.window import Window

    buttons = d.screen().answer_buttons
    assert buttons, "no answer buttons"
    tops = []
    for b in buttons:
        x, y = b.to_window(b.x, b.y)
        assert b.height >= 60, f"answer button {b.text!r} is {b.height}px high"
        assert b.texture_size[0] <= b.width and b.texture_size[1] <= b.height, "clipped label"
        assert y + b.height <= Window.height * 2 / 3 + 1, f"{b.text!r} sits in the top third"
        tops.append((y, y + b.height))
    tops.sort()
    for (_, top_below), (bottom_above, _) in zip(tops, tops[1:], strict=False):
        assert bottom_above - top_below >= 16, "answer buttons too close together"


def anonymous(out: Path) -> None:
    """Anonymous: a screener, its results in words, no booking or advocate; then wiped."""
    from kivy.core.window import Window

    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    d = _start(fake)
    assert d.screen().name == "attract"
    d.tap_at(5, Window.height / 2)  # a tap on nothing changes nothing
    assert d.screen().name == "attract"
    _to_menu(d)
    menu = d.screen()
    assert menu.ids.booking.disabled and menu.ids.advocate.disabled
    d.tap_id("single")
    d.tap_text("Generalized Anxiety Disorder scale", within=menu.ids.screeners)
    assert d.screen().name == "question"
    _check_answer_buttons(d)
    d.screenshot(out / "anonymous-question-en.png")
    # The language switches mid-question: the question and its answers follow.
    d.tap(d.screen().ids.footer.ids.language)
    assert d.screen().ids.question.text.startswith("Sentirse nervioso"), \
        d.screen().ids.question.text
    assert d.screen().ids.skip.text == "Prefiero no responder"
    d.screenshot(out / "anonymous-question-es.png")
    d.tap(d.screen().ids.footer.ids.language)
    assert d.screen().ids.skip.text == "Prefer not to answer"
    d.tap_text("Not at all")
    assert d.screen().ids.progress_label.text.endswith("Question 2 of 7")
    while d.screen().name == "question":
        d.tap_text("Not at all")
    assert d.screen().name == "results"
    rows = d.screen().ids.rows.children
    texts = [r.text for r in rows]
    assert any("In the healthy range" in t for t in texts), texts  # words, not colour alone
    assert "not a diagnosis" in d.screen().ids.not_diagnosis.text
    assert fake.submitted and fake.submitted[0]["member"] is None
    d.tap_id("next")
    assert d.screen().name == "menu"
    d.tap_id("finish")
    assert d.screen().name == "done"
    d.tap_id("end")
    assert d.screen().name == "attract"
    assert not d.app.visit.holds_member_data()


def accessibility(out: Path) -> None:
    """Large text makes text larger; high contrast turns the screen dark with light text."""
    from PIL import Image

    from tests.kiosk.ui.fakes import FakeBackend

    d = _start(FakeBackend())
    start = d.screen().ids.start
    before = start.font_size
    d.tap_id("text_size")
    assert start.font_size > before
    d.tap_id("contrast")
    shot = d.screenshot(out / "attract-large-high-contrast.png")
    corner = Image.open(shot).convert("RGB").getpixel((WIDTH // 2, 5))
    assert max(corner) < 40, corner  # black background
    d.tap_id("start")
    d.tap_id("end")  # the next member starts with the usual look
    assert d.app.text_scale == 1.0 and not d.app.high_contrast


def crisis(out: Path) -> None:
    """PHQ-9 item 9: the crisis screen at once, through idle and End, closed in two steps."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    clock = FakeClock()
    d = _start(fake, clock=clock)
    _to_menu(d)
    d.tap_id("single")
    d.tap_text("Patient Health Questionnaire (PHQ-9)", within=d.screen().ids.screeners)
    while d.app.visit.journey.question != "9":
        d.tap_text("Not at all")
    d.tap_text("Several days")
    d.tap_text("Not difficult at all")
    assert d.screen().name == "crisis"
    assert fake.submitted[-1]["instrument_id"] == "phq9" and fake.submitted[-1]["crisis"]
    labels = " ".join(w.text for w in d.screen().ids.guidance.children)
    assert "988" in labels and "911" in labels
    d.screenshot(out / "crisis-en.png")
    clock.now += 200  # past the idle timeout and its countdown, within the crisis screen's own
    d.wait_for(lambda: d.app.visit.tick() is None, frames=5)
    d.pump(3)
    assert d.screen().name == "crisis" and d.app.countdown is None
    d.tap_id("close")
    assert d.screen().name == "crisis" and d.screen().armed
    d.tap_id("close")
    assert d.screen().name == "results"


def idle(out: Path) -> None:
    """Idle: a countdown shows; a tap cancels it; left alone, the visit is wiped."""
    from kivy.core.window import Window

    from tests.kiosk.ui.fakes import FakeBackend

    clock = FakeClock()
    d = _start(FakeBackend(), clock=clock)
    _to_menu(d)
    d.tap_id("single")
    d.tap_text("Generalized Anxiety Disorder scale", within=d.screen().ids.screeners)
    d.tap_text("Several days")
    assert d.app.visit.holds_member_data()
    clock.now += 95  # idle 90 s: the 20 s countdown starts
    d.wait_for(lambda: d.app.countdown is not None)
    assert d.app.countdown.seconds == 15
    assert "15" in d.app.countdown.text
    d.screenshot(out / "idle-countdown-en.png")
    d.tap_at(Window.width / 2, Window.height / 2)  # a tap anywhere keeps going
    assert d.app.countdown is None and d.screen().name == "question"
    assert d.app.visit.journey.question == "2"  # the tap only cancelled the countdown
    clock.now += 111
    d.wait_for(lambda: d.screen().name == "attract")
    assert not d.app.visit.holds_member_data()
    assert d.app.countdown is None


def admin_lockout(out: Path) -> None:
    """First start unpaired: the pairing screen; then the hidden gesture, PIN, lock-out."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend(paired=False)
    d = _start(fake, pin=None)
    assert d.screen().name == "setup", d.screen().name
    d.screenshot(out / "setup-en.png")
    screen = d.screen()
    screen.ids.url.text = "https://127.0.0.1:8700"
    screen.ids.code.text = "WRONG"
    screen.ids.pin.text = "2468"
    d.tap_id("pair")
    assert d.screen().name == "setup" and "refused" in screen.message
    screen.ids.code.text = "GOOD-CODE"
    d.tap_id("pair")
    assert d.screen().name == "attract"
    for _ in range(5):
        d.tap_id("corner")
    assert d.screen().name == "admin_pin"
    pad = d.screen().ids.pad
    for _attempt in range(5):
        for ch in "1111":
            d.tap_text(ch, within=pad)
        d.tap_id("ok")
        assert d.screen().name == "admin_pin"
    assert "Too many" in d.screen().message, d.screen().message
    for ch in "2468":  # the right PIN is refused while locked out
        d.tap_text(ch, within=pad)
    d.tap_id("ok")
    assert d.screen().name == "admin_pin" and "Too many" in d.screen().message
    d.screenshot(out / "admin-locked-en.png")
    d.tap_id("cancel")
    assert d.screen().name == "attract"


def admin_open(out: Path) -> None:
    """The right PIN opens the admin screen: depth, the drain's progress, sync now, exit."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend(online=False)
    fake.depth = 40
    d = _start(fake)
    for _ in range(5):
        d.tap_id("corner")
    for ch in "2468":
        d.tap_text(ch, within=d.screen().ids.pad)
    d.tap_id("ok")
    assert d.screen().name == "admin"
    screen = d.screen()
    assert screen.depth == 40 and screen.draining and screen.ids.drain.value == 50
    assert "connection refused" in screen.errors
    d.tap_id("sync_now")
    assert ("sync_now", None) in fake.calls
    d.tap_id("home_language")
    assert d.app.visit.language == "es"
    d.screenshot(out / "admin-es.png")
    d.tap_id("back_to_kiosk")
    assert d.screen().name == "attract" and d.screen().ids.start.text == "Comenzar"


def tour(out: Path, online: str = "online") -> None:
    """The tour with a fake backend: every screen in EN and ES, named as pinned."""
    from kiosk.app import _walk
    from kiosk.settings import KioskSettings
    from tests.kiosk.ui.fakes import FakeBackend

    settings = KioskSettings(width=WIDTH, height=HEIGHT,
                             data_dir=Path(tempfile.mkdtemp(prefix="kiosk-tour-")))
    fake = FakeBackend(online=online == "online")
    assert _walk(out, settings, fake, online=fake.online) == 0
    assert not any(s["crisis"] for s in fake.submitted), "the tour sent a crisis"


JOURNEYS: dict[str, Callable[..., None]] = {
    f.__name__: f for f in (anonymous, accessibility, crisis, idle, admin_lockout, admin_open,
                            tour)}


def main(argv: list[str]) -> int:
    """Run one journey by name."""
    name, out, *rest = argv
    kivy_home = tempfile.mkdtemp(prefix="kivy-home-")
    headless_environment(kivy_home)
    configure_window(WIDTH, HEIGHT, synthetic_input_only=True)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        JOURNEYS[name](out_dir, *rest)
    except Exception:  # noqa: BLE001 - report any failure of the journey and exit 1
        traceback.print_exc(file=sys.__stderr__)
        return 1
    print(f"{name}: ok in {time.monotonic() - started:.1f} s", file=sys.__stdout__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
