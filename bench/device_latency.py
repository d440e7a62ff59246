"""Device latency: a cuff's indication to its value drawn on the kiosk, p50/p95, beside a tap's
redraw in the same run.

The kiosk runs with the simulated cuff (bumble GATT server on bumble's in-process link, the
same host code as a real dongle) on the blood-pressure question. Each round the cuff indicates
a new reading: the clock starts when the kiosk's BLE host receives the indication (its
``perf_counter``, taken in the host's thread) and stops at the first frame flipped with the
reading on the panel. Then a real touch on "Measure again" is timed from its release to the
first frame drawn with the panel waiting again: the tap baseline, same app, same screen, same
moment. Offscreen SDL on Mesa's software GL, portrait 1080x1920 by default. Prints ONE JSON
line (milliseconds).
Usage: python bench/device_latency.py [--readings 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
            "max": round(ordered[-1], 2)}


def _pump_until(predicate: Any, seconds: float = 30.0) -> None:
    from kivy.base import EventLoop

    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("the kiosk never got there")
        EventLoop.idle()


def run(readings: int, width: int, height: int) -> dict[str, Any]:
    """Measure in this process; return the JSON line's content."""
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    from kiosk.ui.driver import Driver, configure_window, headless_environment, touch

    headless_environment(tempfile.mkdtemp(prefix="kivy-bench-"))
    configure_window(width, height, synthetic_input_only=True)
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from kiosk.admin import AdminLock
    from kiosk.devices.host import Found
    from kiosk.devices.simulator import CUFF_ADDRESS, bp_reading
    from kiosk.ui.app import KioskApp
    from kiosk.ui.devices import DeviceBridge, pairing_store
    from shared.devices import encode_blood_pressure
    from tests.kiosk.ui.fakes import FakeBackend

    folder = Path(tempfile.mkdtemp(prefix="kiosk-bench-devices-"))
    bridge = DeviceBridge.simulated(pairing_store(folder))
    bridge.start()
    bridge.pair(Found("blood_pressure", CUFF_ADDRESS, "Onsite Sim Cuff"))
    admin = AdminLock(folder)
    app = KioskApp(backend=FakeBackend(), admin=admin, require_setup=False, devices=bridge)
    driver = Driver.start(app)
    frames = [0]
    Window.bind(on_flip=lambda *_a: frames.__setitem__(0, frames[0] + 1))
    indication: list[float] = []
    taps: list[float] = []
    bridge.drawn = lambda received: indication.append((time.perf_counter() - received) * 1000)
    simulator = bridge.host.simulator
    assert simulator is not None
    try:
        driver.tap_id("start")
        driver.tap_id("accept")
        driver.tap_id("anonymous")
        app.do(app.visit.questions.single, "blood_pressure")
        driver.pump(2)
        panel = bridge.panel
        assert panel is not None and panel.state == "waiting"
        bridge.host.call(simulator.wait_subscribed("blood_pressure")).result(30)
        for round_ in range(readings):
            before = len(indication)
            value = encode_blood_pressure(bp_reading(110 + round_ % 60, 70 + round_ % 30))
            # The cuff's side: indicate and wait for the kiosk's confirmation (ATT).
            bridge.host.call(simulator.cuff.indicate(value)).result(30)
            _pump_until(lambda b=before: len(indication) > b)
            # The tap's side: "Measure again", release to the first frame that shows it.
            driver.settle()  # untimed: taps are ignored for a moment after each change
            button = driver.find("measure_again")
            finger = touch(*button.to_window(*button.center))
            finger.touch_down()
            EventLoop.idle()
            start = time.perf_counter()
            finger.touch_up()
            seen_at = None
            while True:
                if seen_at is None and panel.state == "waiting":
                    seen_at = frames[0]
                if seen_at is not None and frames[0] > seen_at:
                    taps.append((time.perf_counter() - start) * 1000)
                    break
                EventLoop.idle()
    finally:
        bridge.stop()
        app.stop()
    found = {"indication_ms": _percentiles(indication), "tap_ms": _percentiles(taps)}
    return {"bench": "device_latency", "readings": readings, "window": f"{width}x{height}",
            **found,
            "p95_ratio": round(found["indication_ms"]["p95"] / found["tap_ms"]["p95"], 2),
            "load": round(os.getloadavg()[0], 1), "python": platform.python_version(),
            "cpus": os.cpu_count()}


def main() -> None:
    """Measure; print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, default=100)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    args = parser.parse_args()
    out = run(args.readings, args.width, args.height)
    print(json.dumps(out), file=sys.__stdout__, flush=True)


if __name__ == "__main__":
    main()
