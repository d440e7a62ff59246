"""Double taps as people make them: OS-level clicks into the real kiosk window (issue 15).

The kiosk runs as ``onsite-kiosk`` in an X window (SDL's x11 driver on Xvfb), paired with a
live onsite server. ``xdotool`` moves the pointer and clicks twice, 80 ms apart, on Start, an
answer, a time slot and the crisis screen's close, exactly where a finger would land. Where to
tap comes from the kiosk's debug probe (``ONSITE_KIOSK_LAYOUT_FILE``, kiosk/ui/probe.py),
which also says which screen and question show; what was stored is read from the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from kiosk.admin import AdminLock
from onsite_server.demo import DEMO_SITE
from onsite_server.models import Booking, Kiosk, Member, Submission
from tests.kiosk.backend.helpers import TlsServer
from tests.kiosk.ui.conftest import running_demo_server

pytestmark = [pytest.mark.ui, pytest.mark.slow,
              pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                 reason="needs Xvfb and xdotool (scripts/bootstrap.sh test)")]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / "kiosk"
WIDTH, HEIGHT = 1080, 1920
PIN = "2468"
SEATS = ("seats left", "Quedan")
YES = ("Yes, book it", "Sí, reservarla")  # a bookable event or slot says how many seats are left


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private Xvfb screen; Xvfb picks a free display number itself (-displayfd)."""
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0",
                             f"{WIDTH}x{HEIGHT}x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number.isdigit(), "Xvfb did not start"
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """One live onsite server with the demo data for this module's kiosks."""
    with running_demo_server(tmp_path_factory.mktemp("taps-server")) as (running, _code):
        yield running


class Person:
    """Looks at the kiosk (its probe file) and taps it with the OS's pointer."""

    def __init__(self, display: str, layout: Path, proc: subprocess.Popen[bytes]) -> None:
        self.display = display
        self.layout = layout
        self.proc = proc

    def look(self) -> dict[str, Any]:
        """What the glass shows now."""
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, "the kiosk exited"
            try:
                return dict(json.loads(self.layout.read_text("utf-8")))
            except (FileNotFoundError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def wait(self, what: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        """Wait until the glass shows ``what``, and taps act again, then read it a moment."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.look()
            if what(seen) and not seen["input_held"]:
                time.sleep(0.3)  # a person reads before the next tap
                return self.look()
            assert time.monotonic() < deadline, f"never happened; the glass shows {seen}"
            time.sleep(0.05)

    def settle(self, seconds: float = 1.5) -> dict[str, Any]:
        """Let whatever a tap set off finish, then look."""
        time.sleep(seconds)
        return self.wait(lambda _s: True)

    def box(self, *, id: str = "", text: str = "", within: str = "",
            answer: object = None) -> tuple[int, int, int, int]:
        """A visible button's box on the X screen: left, top, right, bottom."""
        seen = self.look()
        for b in seen["buttons"]:
            if (id and b["id"] != id) or (text and text not in b["text"]) or \
                    (within and b["within"] != within) or \
                    (answer is not None and b["answer"] != answer):
                continue
            left, top = seen["window"][:2]
            x, y, w, h = b["box"]
            return (left + x, top + y, left + x + w, top + y + h)
        raise AssertionError(f"no button {id or text or answer!r} on {seen['screen']}: "
                             f"{[(b['id'], b['text'][:30]) for b in seen['buttons']]}")

    def button(self, **which: Any) -> tuple[int, int]:
        """The screen position of the centre of a visible button."""
        left, top, right, bottom = self.box(**which)
        return (left + right) // 2, (top + bottom) // 2

    def tap(self, **which: Any) -> None:
        """One tap, on the button's centre."""
        self.tap_at(*self.button(**which))

    def tap_at(self, x: int, y: int) -> None:
        """One tap at a point of the screen."""
        self.xdotool("mousemove", str(x), str(y), "click", "1")

    def double_tap(self, **which: Any) -> None:
        """Two taps 80 ms apart on the button's centre, as a hurried finger makes them."""
        self.double_tap_at(*self.button(**which))

    def double_tap_at(self, x: int, y: int) -> None:
        """Two taps 80 ms apart at a point of the screen."""
        self.xdotool("mousemove", str(x), str(y), "click", "--repeat", "2", "--delay", "80",
                     "1")

    def xdotool(self, *args: str) -> None:
        """Run xdotool on this display."""
        subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": self.display},
                       check=True, timeout=20)

    def screenshot(self, path: Path) -> None:
        """The whole X screen, as a person would see it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if shutil.which("import"):
            subprocess.run(["import", "-display", self.display, "-window", "root", str(path)],
                           check=False, timeout=30)


@pytest.fixture
def person(display: str, server: TlsServer, tmp_path: Path) -> Iterator[Person]:
    """A fresh ``onsite-kiosk`` paired with the live server, in the X window, PIN set."""
    data = tmp_path / "kiosk-data"
    AdminLock(data).set_pin(PIN)  # set-up was done: the kiosk opens on its attract screen
    layout = tmp_path / "layout.json"
    env = {**os.environ, "DISPLAY": display, "SDL_VIDEODRIVER": "x11", "HOME": str(tmp_path),
           "KIVY_HOME": str(tmp_path / "kivy"), "ONSITE_KIOSK_DATA_DIR": str(data),
           "ONSITE_KIOSK_WIDTH": str(WIDTH), "ONSITE_KIOSK_HEIGHT": str(HEIGHT),
           "ONSITE_KIOSK_LAYOUT_FILE": str(layout)}
    exe = Path(sys.executable).with_name("onsite-kiosk")
    with kiosk_in_window([str(exe), "--server", server.url, "--pairing-code",
                          server.pairing_code(DEMO_SITE)], env, tmp_path / "kiosk.log",
                         lambda proc: Person(display, layout, proc)) as person:
        yield person


P = TypeVar("P", bound=Person)


@contextlib.contextmanager
def kiosk_in_window(command: list[str], env: dict[str, str], log_path: Path,
                    make: Callable[[subprocess.Popen[bytes]], P],
                    cwd: Path | None = None) -> Iterator[P]:
    """Start the kiosk in the X window and give its person once the attract screen is up.

    The kiosk is stopped (terminated, killed if it lingers) when the block ends.
    """
    log = log_path.open("wb")
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        person = make(proc)
        person.wait(lambda s: s["screen"] == "attract", timeout=90)
        # The pointer enters the window first (on nothing), so SDL knows where it is before
        # the first click, as a finger is over the glass before it touches.
        person.xdotool("mousemove", str(WIDTH - 5), str(HEIGHT // 3))
        time.sleep(0.5)
        yield person
    finally:
        stop_kiosk(proc)
        log.close()


def stop_kiosk(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a kiosk process, killing it if it has not ended within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _member_rows(server: TlsServer) -> tuple[list[Submission], list[Booking]]:
    engine = create_engine(server.database_url)
    with Session(engine) as session:
        member = session.scalars(select(Member).where(Member.employee_id == "E1001")).one()
        # This kiosk's only: the demo data files check-ups of its own.
        ours = session.scalars(select(Kiosk.id).where(Kiosk.label != "demo data")).all()
        subs = list(session.scalars(select(Submission).where(
            Submission.member_id == member.id, Submission.instrument_id == "phq9",
            Submission.kiosk_id.in_(ours))))
        books = list(session.scalars(select(Booking).where(Booking.member_id == member.id)))
        session.expunge_all()
    engine.dispose()
    return subs, books


def _sign_in(p: Person) -> None:
    """Type the demo member's id and birth date on the keypad, as a person does."""
    p.tap(text="ABC", within="keypad")
    p.wait(lambda s: any(b["text"] == "E" for b in s["buttons"]))
    p.tap(text="E", within="keypad")
    p.settle(0.2)
    p.tap(text="123", within="keypad")
    p.wait(lambda s: any(b["text"] == "1" for b in s["buttons"]))
    for key in "1001":
        p.tap(text=key, within="keypad")
        time.sleep(0.25)
    p.tap(id="dob_field")
    time.sleep(0.25)
    for key in "03141985":
        p.tap(text=key, within="keypad")
        time.sleep(0.25)
    p.tap(id="submit")
    p.wait(lambda s: s["screen"] == "menu")


def _to_identify(p: Person) -> None:
    p.tap(id="start")
    p.wait(lambda s: s["screen"] == "privacy")
    p.tap(id="accept")
    p.wait(lambda s: s["screen"] == "identify")


def _phq9(p: Person) -> None:
    """From the menu, the PHQ-9 on its own."""
    p.tap(id="single")
    p.wait(lambda s: any("PHQ-9" in b["text"] for b in s["buttons"]))
    p.tap(text="PHQ-9")
    p.wait(lambda s: s["screen"] == "question" and s["question"] == "1")


def _answer(p: Person, value: int) -> None:
    """One deliberate tap on an answer; wait for what comes next."""
    asked = p.look()["question"]
    p.tap(answer=value)
    p.wait(lambda s: s["question"] != asked)


def _nearest(box: tuple[int, int, int, int], to: tuple[int, int, int, int]) -> tuple[int, int]:
    """The point of ``box`` (a few pixels inside it) nearest the centre of ``to``: where a
    finger on the first control is also on the second one, when the two overlap."""
    cx, cy = (to[0] + to[2]) // 2, (to[1] + to[3]) // 2
    return (min(max(cx, box[0] + 8), box[2] - 8), min(max(cy, box[1] + 8), box[3] - 8))


def test_a_double_tap_on_start_shows_the_privacy_notice(person: Person) -> None:
    p = person
    start = p.box(id="start")
    p.tap(id="start")
    p.wait(lambda s: s["screen"] == "privacy")
    at = _nearest(start, p.box(id="accept"))  # on Start, and over where "accept" will show
    p.tap(id="back")
    p.wait(lambda s: s["screen"] == "attract")
    seen = []
    for _try in range(3):
        p.double_tap_at(*at)
        seen.append(p.settle()["screen"])
        p.tap(id="back" if seen[-1] == "privacy" else "end")  # End: skipped past it
        p.wait(lambda s: s["screen"] == "attract")
    assert seen == ["privacy"] * 3, seen


def test_a_double_tap_on_a_time_slot_asks_before_booking(person: Person,
                                                          server: TlsServer) -> None:
    p = person
    _to_identify(p)
    _sign_in(p)
    p.tap(id="booking")
    seen = p.wait(lambda s: s["screen"] == "booking" and
                  any(b["within"] == "entries" for b in s["buttons"]))
    event = next(b for b in seen["buttons"] if b["within"] == "entries" and
                 any(w in b["text"] for w in SEATS))
    p.tap(text=event["text"], within="entries")
    seen = p.wait(lambda s: all(b["text"] != event["text"] for b in s["buttons"]) and
                  any(b["within"] == "entries" for b in s["buttons"]))  # its times show
    slots = [b["text"] for b in seen["buttons"] if b["within"] == "entries" and
             any(w in b["text"] for w in SEATS)]
    # Where does "Yes, book it" show? Ask once, then choose another time.
    p.tap(text=slots[0], within="entries")
    p.wait(lambda s: any(b["text"] in YES for b in s["buttons"]))
    yes = next(p.box(text=t) for t in YES if any(b["text"] == t for b in p.look()["buttons"]))
    p.tap(id="back")
    p.wait(lambda s: any(b["text"] == slots[0] for b in s["buttons"]))
    # The slot under it (or nearest to it), tapped where it overlaps "Yes, book it".
    boxes = {t: p.box(text=t, within="entries") for t in slots}
    slot = min(slots, key=lambda t: abs((boxes[t][1] + boxes[t][3]) - (yes[1] + yes[3])))
    p.double_tap_at(*_nearest(boxes[slot], yes))
    seen = p.settle()
    _subs, booked = _member_rows(server)
    assert seen["screen"] == "booking", seen["screen"]
    assert any(b["text"] in YES for b in seen["buttons"]), "the confirmation should show"
    assert booked == [], "a double tap on a time booked it unseen"


def test_a_double_tap_on_an_answer_answers_only_the_question_on_show(
        person: Person, server: TlsServer) -> None:
    p = person
    _to_identify(p)
    _sign_in(p)
    _phq9(p)
    p.double_tap(answer=0)
    after_item_1 = p.settle()["question"]
    while p.look()["question"] not in ("8", "9", None):
        _answer(p, 0)
    p.double_tap(answer=0)  # item 8: the next one is the self-harm question
    after_item_8 = p.settle()["question"]
    assert (after_item_1, after_item_8) == ("2", "9"), \
        f"after a double tap on item 1 the kiosk shows {after_item_1}, on item 8 {after_item_8}"
    _answer(p, 1)  # item 9, answered on purpose: "Several days"
    while p.look()["screen"] == "question":  # how difficult: asked when anything was positive
        _answer(p, 0)
    p.wait(lambda s: s["screen"] == "crisis")
    subs: list[Submission] = []
    deadline = time.monotonic() + 60
    while not subs and time.monotonic() < deadline:
        time.sleep(0.5)
        subs, _books = _member_rows(server)
    assert len(subs) == 1, "the PHQ-9 should reach the server once"
    answers = {k: v for k, v in subs[0].answers.items() if k in {str(i) for i in range(1, 10)}}
    assert answers == {**{str(i): 0 for i in range(1, 9)}, "9": 1}, answers
    assert subs[0].crisis is True


def test_a_double_tap_cannot_close_the_crisis_screen(person: Person) -> None:
    p = person
    _to_identify(p)
    p.tap(id="anonymous")
    p.wait(lambda s: s["screen"] == "menu")
    _phq9(p)
    while p.look()["question"] != "9":
        _answer(p, 0)
    _answer(p, 1)
    while p.look()["screen"] == "question":
        _answer(p, 0)
    p.wait(lambda s: s["screen"] == "crisis")
    p.double_tap(id="close")
    seen = p.settle(2.5)  # longer than the second step's own wait
    p.screenshot(ARTIFACTS / "real-taps" / "crisis-after-double-tap.png")
    assert seen["screen"] == "crisis", "a double tap closed the crisis screen"
    # The second step is a deliberate act elsewhere: it closes the screen.
    p.tap(id="confirm")
    p.wait(lambda s: s["screen"] == "results")
