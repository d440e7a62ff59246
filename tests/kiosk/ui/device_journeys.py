"""Journeys with a Bluetooth cuff and scale in the real kiosk window, one per process.

    python -m tests.kiosk.ui.device_journeys NAME ARTIFACT_DIR [SERVER_URL PAIRING_CODE DB]

The kiosk's BLE host runs on bumble with the simulated cuff and scale (bumble GATT servers on
its in-process link), paired as staff would pair them. Taps go through the window; what the
member sees is read back from the widgets and saved as screenshots.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kiosk.ui.runner import JOURNEY_TAP_GUARD_MS, run

WIDTH, HEIGHT = 540, 960
WAIT = 30.0


def _kiosk(backend: Any) -> tuple[Any, Any]:
    """The kiosk app with simulated devices paired; its driver and the bridge."""
    from kiosk.admin import AdminLock
    from kiosk.devices.host import Found
    from kiosk.devices.simulator import CUFF_ADDRESS, SCALE_ADDRESS
    from kiosk.ui.app import KioskApp
    from kiosk.ui.devices import DeviceBridge, pairing_store
    from kiosk.ui.driver import Driver

    folder = Path(tempfile.mkdtemp(prefix="kiosk-devices-"))
    admin = AdminLock(folder)
    admin.set_pin("2468")
    bridge = DeviceBridge.simulated(pairing_store(folder))
    bridge.start()
    bridge.pair(Found("blood_pressure", CUFF_ADDRESS, "Onsite Sim Cuff"))
    bridge.pair(Found("weight", SCALE_ADDRESS, "Onsite Sim Scale"))
    app = KioskApp(backend=backend, admin=admin, require_setup=False, devices=bridge,
                   tap_guard=JOURNEY_TAP_GUARD_MS / 1000)
    return Driver.start(app), bridge


def _to_screener(d: Any, instrument: str) -> None:
    from kivy.core.window import Window

    d.tap_id("start")
    d.tap_id("accept")
    screen = d.screen()
    Window.dispatch("on_textinput", "b-7001")  # a badge scan, then anonymous
    Window.dispatch("on_key_down", 13, 0, "\r", [])
    d.pump(2)
    assert screen.field == "dob"
    d.tap_id("anonymous")
    assert d.screen().name == "menu"
    d.tap_id("single")
    d.tap_text(d.app.visit.instrument_title(instrument), within=d.screen().ids.screeners)
    assert d.screen().name == "question"


def _send(d: Any, bridge: Any, kind: str, value: bytes) -> None:
    """The simulated device measures and indicates ``value``; wait for the panel to change."""
    simulator = bridge.host.simulator
    bridge.host.call(simulator.wait_subscribed(kind, WAIT)).result(WAIT + 1)
    before = bridge.panel.state
    bridge.host.call(simulator.device(kind).indicate(value)).result(WAIT)
    deadline = time.monotonic() + WAIT
    while bridge.panel.state == before and time.monotonic() < deadline:
        d.pump(1)
    d.pump(2)


def cuff(out: Path) -> None:
    """The cuff: countdown, type-instead, status advice, wrong user, garbled, kPa; confirmed."""
    from kiosk.devices.simulator import bp_reading
    from shared.devices import encode_blood_pressure
    from tests.kiosk.ui.fakes import FakeBackend

    backend = FakeBackend()
    d, bridge = _kiosk(backend)
    try:
        _to_screener(d, "blood_pressure")
        screen, panel = d.screen(), bridge.panel
        assert panel is not None and panel.parent is not None, "no device panel"
        assert screen.ids.number_box.parent is None  # no number pad under the panel
        assert panel.state == "waiting" and "Put the cuff on" in panel.instruction
        assert panel.status_text.startswith("Waiting for the cuff: ")
        seconds = int(panel.status_text.split(": ")[1].split()[0])
        assert 0 < seconds <= 120
        d.screenshot(out / "device-cuff-wait.png")

        # Typing is there all along: the number pad comes back for this question.
        d.tap_id("type_instead")
        assert panel.parent is None and screen.ids.number_box.parent is not None
        d.tap(screen.ids.footer.ids.back)  # back to the menu, and the screener again
        assert d.screen().name == "menu"
        d.tap_id("single")
        d.tap_text(d.app.visit.instrument_title("blood_pressure"),
                   within=d.screen().ids.screeners)
        assert panel.parent is not None and panel.state == "waiting"

        # A status bit: the reading shows with its advice; the member measures again.
        _send(d, bridge, "blood_pressure", encode_blood_pressure(
            bp_reading(141, 92, status=("irregular_pulse", "body_movement"))))
        assert panel.state == "shown" and "141/92 mmHg" in panel.status_text
        assert "You moved" in panel.advice_text and "irregular pulse" in panel.advice_text
        assert not d.find("use_reading").disabled
        d.screenshot(out / "device-cuff-advice.png")
        d.tap_id("measure_again")
        assert panel.state == "waiting" and d.find("use_reading").disabled

        # Another user's reading is explained, never shown as a number.
        _send(d, bridge, "blood_pressure", encode_blood_pressure(bp_reading(150, 95, user_id=2)))
        assert panel.state == "refused" and "user 2" in panel.status_text
        assert "150" not in panel.status_text and d.find("use_reading").disabled
        d.screenshot(out / "device-cuff-wrong-user.png")
        d.tap_id("measure_again")

        # A garbled value (NaN systolic) is refused plainly.
        _send(d, bridge, "blood_pressure", bytes.fromhex("00 FF07 5000 5D00"))
        assert panel.state == "refused" and "could not be read" in panel.status_text
        d.tap_id("measure_again")

        # kPa: shown in mmHg (18.7/12.0 kPa = 140/90 mmHg); in Spanish too.
        _send(d, bridge, "blood_pressure", encode_blood_pressure(
            bp_reading("18.7", "12.0", 76, unit="kPa"), exponent=-1))
        assert panel.state == "shown" and "140/90 mmHg" in panel.status_text
        assert "pulse 76" in panel.status_text
        d.tap(screen.ids.footer.ids.language)
        assert "Su lectura: 140/90 mmHg" in panel.status_text, panel.status_text
        d.screenshot(out / "device-cuff-reading-es.png")
        d.tap(screen.ids.footer.ids.language)

        d.tap_id("use_reading")
        assert d.screen().name == "results", d.screen().name
        assert panel.status_text == "" and panel.advice_text == ""  # nothing of it stays
        item = backend.submitted[-1]
        assert item["answers"] == {"systolic": 140, "diastolic": 90}, item["answers"]
        assert item["devices"] == [{"kind": "blood_pressure",
                                    "manufacturer": "Onsite Simulated Devices",
                                    "model": "SIM-BP1", "serial": "BP-0001",
                                    "link_ids": ["diastolic", "systolic"]}], item
    finally:
        bridge.stop()


def scale(out: Path) -> None:
    """The scale answers the weight in the visit's units; the height was typed before it."""
    from kiosk.devices.simulator import weight_reading
    from shared.devices import encode_weight
    from tests.kiosk.ui.fakes import FakeBackend

    backend = FakeBackend()
    d, bridge = _kiosk(backend)
    try:
        _to_screener(d, "bmi")
        screen = d.screen()
        assert bridge.panel is None or bridge.panel.parent is None  # height: typed
        if d.app.visit.journey.units != "metric":
            d.tap_id("metric")
        for ch in "170":
            d.tap_text(ch, within=screen.ids.numpad)
        d.tap_id("enter")
        assert d.app.visit.journey.question == "weight_kg"
        panel = bridge.panel
        assert panel is not None and panel.parent is not None
        assert "Step on the scale" in panel.instruction
        _send(d, bridge, "weight", encode_weight(weight_reading("81.63", "1.781")))
        # The simulated scale weighs to 0.1 kg (its Weight Scale Feature says so).
        assert panel.state == "shown" and "81.6 kg" in panel.status_text, panel.status_text
        d.screenshot(out / "device-scale-reading.png")
        d.tap_id("use_reading")
        assert d.screen().name == "results"
        item = backend.submitted[-1]
        assert item["answers"] == {"height_cm": 170, "weight_kg": 81.6}
        assert item["devices"][0]["link_ids"] == ["weight_kg"]
        assert item["devices"][0]["model"] == "SIM-WS1"
    finally:
        bridge.stop()


def admin_pairing(out: Path) -> None:
    """Admin mode: forget the cuff, find it, pair it again; remembered by address."""
    from kiosk.devices.simulator import CUFF_ADDRESS
    from tests.kiosk.ui.fakes import FakeBackend

    d, bridge = _kiosk(FakeBackend())
    try:
        for _ in range(5):
            d.tap_id("corner")
        for ch in "2468":
            d.tap_text(ch, within=d.screen().ids.pad)
        d.tap_id("ok")
        assert d.screen().name == "admin"
        d.tap_id("devices")
        screen = d.screen()
        assert screen.name == "admin_devices"
        assert "Onsite Sim Cuff" in screen.paired_text
        d.tap_id("forget_cuff")
        assert bridge.pairing("blood_pressure") is None
        assert "Blood pressure cuff: none" in screen.paired_text
        simulator = bridge.host.simulator
        deadline = time.monotonic() + WAIT
        while simulator.cuff.device.connections and time.monotonic() < deadline:
            d.pump(1)
        d.tap_id("scan")
        while (screen.scanning or not screen.ids.found.children) and \
                time.monotonic() < deadline:
            d.pump(1)
            time.sleep(0.02)
        found = list(reversed(screen.ids.found.children))
        assert [b.text for b in found] == [f"Blood pressure cuff: Onsite Sim Cuff ({CUFF_ADDRESS})"]
        d.screenshot(out / "device-admin-found.png")
        d.tap(found[0])
        assert bridge.pairing("blood_pressure").address == CUFF_ADDRESS
        assert bridge.store.load()["blood_pressure"].address == CUFF_ADDRESS  # on disk
        deadline = time.monotonic() + WAIT
        while CUFF_ADDRESS not in bridge.connected and time.monotonic() < deadline:
            d.pump(1)
        screen.refresh()
        assert f"({CUFF_ADDRESS}, connected)" in screen.paired_text, screen.paired_text
    finally:
        bridge.stop()


def full_path(out: Path, server: str, code: str) -> None:
    """E1001 against a live server: the simulated cuff's reading, shown and confirmed on the
    screen, sent with its device; the consent given on the referral screen; outbox drained.
    The parent test reads the server's database and builds the Bundle for central."""
    from kiosk.cli import build_backend
    from kiosk.devices.simulator import bp_reading
    from kiosk.settings import KioskSettings
    from shared.devices import encode_blood_pressure

    tmp = Path(tempfile.mkdtemp(prefix="kiosk-live-devices-"))
    settings = KioskSettings(data_dir=tmp / "data", key_dir=tmp / "keys", server_url=server)
    backend = build_backend(settings)
    bridge = None
    try:
        backend.pair(server, code)
        deadline = time.monotonic() + 60
        while backend.catalog() is None and time.monotonic() < deadline:
            backend.sync_now()
            time.sleep(0.2)
        assert backend.catalog() is not None, "no catalog after pairing"
        d, bridge = _kiosk(backend)
        d.tap_id("start")
        d.tap_id("accept")
        screen = d.screen()
        for text in ("E1001", None, "03141985"):
            if text is None:
                d.tap_id("dob_field")
                continue
            for ch in text:
                if ch.isalpha() != screen.letters:
                    d.tap_text("ABC" if ch.isalpha() else "123", within=screen.ids.keypad)
                d.tap_text(ch, within=screen.ids.keypad)
        d.tap_id("submit")
        assert d.screen().name == "menu", d.app.visit.message
        d.tap_id("single")
        d.tap_text(d.app.visit.instrument_title("blood_pressure"),
                   within=d.screen().ids.screeners)
        panel = bridge.panel
        assert panel is not None and panel.parent is not None and panel.state == "waiting"
        _send(d, bridge, "blood_pressure", encode_blood_pressure(bp_reading(152, 96, 81)))
        assert panel.state == "shown" and "152/96 mmHg, pulse 81" in panel.status_text
        d.screenshot(out / "device-full-path-reading.png")
        d.tap_id("use_reading")
        assert d.screen().name == "results", d.screen().name
        d.tap_id("next")
        assert d.screen().name == "referral", d.screen().name
        d.tap_id("phone")
        d.tap_id("morning")
        d.tap_id("agree")
        pad = d.screen().phone_pad
        for ch in "5550100142":
            d.tap_text(ch, within=pad.ids.pad)
        d.tap(pad.ids.save)
        d.tap_id("next")
        assert d.screen().name == "menu", d.screen().name
        deadline = time.monotonic() + 60
        while backend.status().outbox_depth and time.monotonic() < deadline:
            backend.sync_now()
            d.pump(1)
            time.sleep(0.1)
        assert backend.status().outbox_depth == 0, backend.status()
    finally:
        if bridge is not None:
            bridge.stop()
        close = getattr(backend, "close", None)
        if callable(close):
            close()


JOURNEYS: dict[str, Callable[..., None]] = {
    f.__name__: f for f in (cuff, scale, admin_pairing, full_path)}


if __name__ == "__main__":
    sys.exit(run(JOURNEYS, sys.argv[1:], lambda _name: (WIDTH, HEIGHT)))
