"""Read-aloud in the real kiosk window, one journey per process (as journeys.py does).

    python -m tests.kiosk.ui.read_aloud_journeys NAME ARTIFACT_DIR

The speech is real espeak-ng; its samples go to memory (this machine has no sound card), into
a sink that holds them as a sound card would, so speech goes on until something stops it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kiosk.ui.runner import run

WIDTH, HEIGHT = 1080, 1920  # the kiosk's own screen: touch targets are measured in its pixels
MIN_TARGET = 100


class Sinks:
    """Each utterance's samples, kept in memory, held "playing" until stopped."""

    def __init__(self) -> None:
        from kiosk.speech.output import MemorySink

        self.made: list[MemorySink] = []
        self._kind = MemorySink

    def __call__(self) -> Any:
        self.made.append(self._kind(realtime=True))
        return self.made[-1]


class FakeClock:
    """The visit's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _start(clock: FakeClock | None = None, devices: Any = None) -> tuple[Any, Any]:
    from kiosk.admin import AdminLock
    from kiosk.speech.espeak import Speaker
    from kiosk.speech.reader import ReadAloud, SpeechPrefs
    from kiosk.ui.app import KioskApp
    from kiosk.ui.driver import Driver
    from tests.kiosk.ui.fakes import FakeBackend

    folder = Path(tempfile.mkdtemp(prefix="kiosk-read-aloud-"))
    admin = AdminLock(folder)
    admin.set_pin("2468")
    sinks = Sinks()
    prefs = SpeechPrefs.load(folder)
    reader = ReadAloud(Speaker(sinks, rate=lambda: prefs.rate, volume=lambda: prefs.volume),
                       prefs)
    app = KioskApp(backend=FakeBackend(), admin=admin, read_aloud=reader, clock=clock,
                   devices=devices)
    return Driver.start(app), sinks


def _speaker(d: Any) -> Any:
    return d.find("speaker")


def _heard(d: Any, sinks: Sinks, count: int) -> None:
    """Wait (bounded) until the count-th utterance's first samples arrive."""
    deadline = time.monotonic() + 20
    while (len(sinks.made) < count or not sinks.made[count - 1].samples) and \
            time.monotonic() < deadline:
        d.pump(1)
        time.sleep(0.01)
    assert len(sinks.made) >= count and sinks.made[count - 1].samples, "no speech came"


def _check_target(d: Any, out: Path) -> None:
    button = _speaker(d)
    assert button.width >= MIN_TARGET and button.height >= MIN_TARGET, \
        f"{d.screen().name}: the speaker button is {button.size}"
    x, y = button.to_window(button.x, button.y)
    assert 0 <= x and x + button.width <= WIDTH and 0 <= y and y + button.height <= HEIGHT
    d.screenshot(out / f"read-aloud-{d.screen().name}-{d.app.visit.language}.png")


def taps(out: Path) -> None:
    """The speaker reads; a tap elsewhere stops it; a new screen is read, and the second tap of
    a hurried double tap does not stop it; listening keeps the visit from going idle."""
    from kivy.core.window import Window

    clock = FakeClock()
    d, sinks = _start(clock)
    reader = d.app.read_aloud
    assert d.screen().name == "attract"
    _check_target(d, out)
    d.tap(_speaker(d))
    _heard(d, sinks, 1)
    assert d.app.speaking and d.app.visit.read_aloud
    assert reader.speaker.last.sentences[1] == "Wellness check-up"
    d.screenshot(out / "read-aloud-speaking-en.png")  # the button shows "Stop"
    assert _speaker(d).text == "Stop"
    d.tap_at(Window.width / 2, Window.height * 0.6)  # on nothing: stops the speech
    assert not reader.speaking and not d.app.speaking and sinks.made[0].closed
    assert d.app.visit.read_aloud  # still on for this visit
    d.tap_id("start")  # a new screen: read at once
    assert d.screen().name == "privacy"
    _heard(d, sinks, 2)
    assert reader.speaker.last.sentences[0] == "Your privacy"
    # The second tap of a hurried double-tap lands while taps are held (issue 15): it acts on
    # nothing, so it does not stop the reading either.
    from kiosk.ui.driver import touch

    d.app.hold_input()
    d.pump(1)
    assert d.app.input_held() > 0
    finger = touch(Window.width / 2, Window.height * 0.6)
    finger.touch_down()
    d.pump(1)
    finger.touch_up()
    d.pump(1)
    assert reader.speaking and d.screen().name == "privacy"
    _check_target(d, out)
    d.tap(d.screen().ids.footer.ids.language)  # the same screen in Spanish: read in Spanish
    _heard(d, sinks, 3)
    assert reader.speaker.last.language == "es" and reader.speaker.last.voice == "es-419"
    assert reader.speaker.last.sentences[0] == "Su privacidad"
    _check_target(d, out)
    d.tap(d.screen().ids.footer.ids.language)
    # Listening is not idle: past the idle timeout while it reads, no countdown, no wipe.
    assert reader.speaking
    clock.now += 200
    d.app.tick()  # the app's timer (every 0.25 s), at once
    d.pump(2)
    assert d.app.countdown is None and d.screen().name == "privacy"
    assert d.app.visit.tick() is None


def crisis_and_wipe(out: Path) -> None:
    """A visit read aloud through to the crisis screen (988 and 911 read), the speaker turned
    off and on there; the end of the visit turns read-aloud off for the next member."""
    clock = FakeClock()
    d, sinks = _start(clock)
    reader = d.app.read_aloud
    d.tap(_speaker(d))
    _heard(d, sinks, 1)
    d.tap_id("start")
    _heard(d, sinks, 2)
    assert d.screen().name == "privacy" and reader.speaker.last.sentences[0] == "Your privacy"
    d.tap_id("accept")
    assert d.screen().name == "identify"
    _check_target(d, out)
    d.tap_id("anonymous")
    assert d.screen().name == "menu"
    _check_target(d, out)
    d.tap_id("single")
    d.tap_text("Patient Health Questionnaire (PHQ-9)", within=d.screen().ids.screeners)
    assert d.screen().name == "question"
    _check_target(d, out)
    while d.app.visit.journey.question != "9":
        d.tap_text("Not at all")
    d.tap_text("Several days")
    d.tap_text("Not difficult at all")
    assert d.screen().name == "crisis"
    made = len(sinks.made)
    _heard(d, sinks, made)
    assert "988" in reader.speaker.last.text and "911" in reader.speaker.last.text
    _check_target(d, out)
    # The speaker button while speaking: stops, and read-aloud is off for the rest.
    d.tap(_speaker(d))
    assert not reader.speaking and not d.app.visit.read_aloud
    d.tap(_speaker(d))  # and on again
    _heard(d, sinks, made + 1)
    assert d.app.visit.read_aloud
    # End session (the crisis screen stays until closed): close it, end from the results.
    d.tap_id("close")
    clock.now += 5  # the second step is offered a moment after the first
    d.wait_for(lambda: not d.find("confirm").disabled, frames=2000)
    d.tap_id("confirm")
    assert d.screen().name == "results"
    _check_target(d, out)
    d.tap(d.screen().ids.footer.ids.end)
    d.tap(d.app.end_confirm.ids.confirm)
    assert d.screen().name == "attract"
    assert not d.app.visit.read_aloud and not reader.speaking  # the wipe turned it off
    count = len(sinks.made)
    d.tap_id("start")  # the next member's screens are not read
    d.pump(5)
    assert len(sinks.made) == count and not reader.speaking


def admin_settings(out: Path) -> None:
    """The admin sets the reading speed and the volume; each tap says a sample; both kept."""
    from kiosk.speech.espeak import DEFAULT_RATE, DEFAULT_VOLUME
    from kiosk.speech.reader import SpeechPrefs

    d, sinks = _start()
    for _ in range(5):
        d.tap_id("corner")
    for ch in "2468":
        d.tap_text(ch, within=d.screen().ids.pad)
    d.tap_id("ok")
    assert d.screen().name == "admin"
    rate = d.find("speech_rate")
    assert f"{DEFAULT_RATE} words a minute" in rate.text
    d.tap(rate)
    _heard(d, sinks, 1)
    d.tap_id("speech_volume")
    prefs = SpeechPrefs.load(d.app.read_aloud.prefs.path.parent)
    assert prefs.rate != DEFAULT_RATE and prefs.volume != DEFAULT_VOLUME
    assert f"{prefs.rate} words a minute" in d.find("speech_rate").text
    assert f"{prefs.volume}%" in d.find("speech_volume").text
    d.screenshot(out / "read-aloud-admin-en.png")


def device_reading(out: Path) -> None:
    """With read-aloud on, a reading arriving from the cuff is read out; the countdown is not."""
    from kiosk.cli import build_devices
    from kiosk.devices.simulator import bp_reading
    from kiosk.settings import KioskSettings
    from shared.devices import encode_blood_pressure

    settings = KioskSettings(data_dir=Path(tempfile.mkdtemp(prefix="kiosk-devices-")))
    bridge = build_devices(settings, simulated=True)
    try:
        d, sinks = _start(devices=bridge)
        reader = d.app.read_aloud
        d.tap_id("start")
        d.tap_id("accept")
        d.tap_id("anonymous")
        d.app.do(d.app.visit.questions.single, "blood_pressure")
        d.pump(2)
        simulator = bridge.host.simulator
        bridge.host.call(simulator.wait_subscribed("blood_pressure")).result(30)
        panel = bridge.panel
        assert panel is not None and panel.parent is not None and panel.state == "waiting"
        d.tap(_speaker(d))
        _heard(d, sinks, 1)
        said = reader.speaker.last.text
        assert "Put the cuff on and press its start button." in said
        assert "Waiting for the cuff" not in said  # the countdown would restart the reading
        count = len(sinks.made)
        sim = simulator.device("blood_pressure")
        sim.queue.append(encode_blood_pressure(bp_reading(152, 96, 78)))
        bridge.host.call(sim.press_start()).result(30)
        d.wait_for(lambda: panel.state == "shown", frames=2000)
        _heard(d, sinks, count + 1)  # read out, without a tap
        assert "Your reading: 152/96 mmHg, pulse 78" in reader.speaker.last.text
        assert "Use this reading" in reader.speaker.last.sentences
        d.screenshot(out / "read-aloud-device-reading-en.png")
    finally:
        bridge.stop()


JOURNEYS: dict[str, Callable[[Path], None]] = {"taps": taps, "crisis_and_wipe": crisis_and_wipe,
                                               "admin_settings": admin_settings,
                                               "device_reading": device_reading}


if __name__ == "__main__":
    # The taps journey's hurried double tap is a tap guard test: the kiosk's own drawing. The
    # walk on to the crisis screen and the wipe (crisis_and_wipe) tests no guard: drawn at
    # 1080x1920 with Kivy's anti-aliasing on every frame, it was most of this file's CPU.
    sys.exit(run(JOURNEYS, sys.argv[1:], lambda _name: (WIDTH, HEIGHT), kiosk_drawing={"taps"}))
