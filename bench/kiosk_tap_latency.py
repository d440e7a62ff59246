"""Kiosk tap latency: a touch on an answer button to the next question drawn, p50/p95.

A real touch (down, then up) goes through the window onto a PHQ-9 answer button; the clock
starts at the release (a button acts on release, as a finger lifts) and stops at the first
frame flipped after the next question's text is on the label. 200 taps by default; after
the last PHQ-9 question the visit steps back to the first (not timed). The baseline, run the
same way in its own process (Kivy's App is a process singleton): a one-Button app whose tap
changes a Label (TESTING.md's "tap -> next screen drawn, NoTransition"). Each side also
reports ``frame_ms``: the median cost of drawing its screen once, GL finished, without the
frame clock's wait (the kiosk's on the last question shown). Offscreen SDL on
Mesa's software GL, portrait 1080x1920; Kivy caps drawing at 60 frames a second, so a frame
is 16.7 ms. Prints ONE JSON line (milliseconds).
Usage: python bench/kiosk_tap_latency.py [--taps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
            "max": round(ordered[-1], 2)}


class Frames:
    """Counts flipped frames, so a measurement can wait for the next one."""

    def __init__(self) -> None:
        from kivy.core.window import Window

        self.count = 0
        Window.bind(on_flip=self._flip)

    def _flip(self, *_args: object) -> None:
        self.count += 1


def _timed_tap(driver: Any, frames: Frames, button: Any, changed: Any) -> float:
    """Touch a button; return ms from the release to the first frame drawn after the change."""
    from kivy.base import EventLoop

    from kiosk.ui.driver import touch

    finger = touch(*button.to_window(*button.center))
    finger.touch_down()
    EventLoop.idle()
    start = time.perf_counter()
    finger.touch_up()
    seen_at = None
    for _ in range(600):
        if seen_at is None and changed():
            seen_at = frames.count
        if seen_at is not None and frames.count > seen_at:
            return (time.perf_counter() - start) * 1000
        EventLoop.idle()
    raise RuntimeError("the tap never showed")


def child(kind: str, taps: int, width: int, height: int) -> None:
    """Run the taps in this (fresh) process and print the samples."""
    sys.path.insert(0, str(ROOT))
    from kiosk.ui.driver import Driver, configure_window, headless_environment

    headless_environment(tempfile.mkdtemp(prefix="kivy-bench-"))
    configure_window(width, height, synthetic_input_only=True)
    samples: list[float] = []
    if kind == "kiosk":
        from kiosk.admin import AdminLock
        from kiosk.ui.app import KioskApp
        from tests.kiosk.ui.fakes import FakeBackend

        admin = AdminLock(Path(tempfile.mkdtemp(prefix="kiosk-bench-admin-")))
        app = KioskApp(backend=FakeBackend(), admin=admin, require_setup=False)
        driver = Driver.start(app)
        frames = Frames()
        driver.tap_id("start")
        driver.tap_id("accept")
        driver.tap_id("anonymous")
        app.act("single", "phq9")
        driver.pump(2)
        while len(samples) < taps:
            journey = app.visit.journey
            if journey.question == "10":  # the last question: step back, untimed
                while journey.question_index > 0:
                    app.act("back")
                driver.pump(2)
                continue
            screen = driver.screen()
            before = screen.ids.question.text
            button = screen.answer_buttons[0]
            driver.settle()  # untimed: the kiosk ignores taps for a moment after each change
            samples.append(_timed_tap(driver, frames, button,
                                      lambda s=screen, b=before: s.ids.question.text != b))
    else:
        from kivy.app import App
        from kivy.uix.boxlayout import BoxLayout
        from kivy.uix.button import Button
        from kivy.uix.label import Label

        class Baseline(App):  # type: ignore[misc]
            """One Button that changes one Label."""

            def build(self) -> BoxLayout:
                """The button and the label."""
                box = BoxLayout(orientation="vertical")
                self.label = Label(text="0")
                self.button = Button(text="Tap")
                self.button.bind(on_release=lambda *_a: setattr(
                    self.label, "text", str(int(self.label.text) + 1)))
                box.add_widget(self.label)
                box.add_widget(self.button)
                return box

        app = Baseline()
        driver = Driver.start(app)
        frames = Frames()
        while len(samples) < taps:
            before = app.label.text
            samples.append(_timed_tap(driver, frames, app.button,
                                      lambda b=before: app.label.text != b))
    print(json.dumps({"taps": samples, "frame_ms": _frame_ms()}), file=sys.__stdout__,
          flush=True)


def _frame_ms(frames: int = 40) -> float:
    """Median time to draw the current screen once and let the GL finish it (no waiting for
    the frame clock): what a frame of this screen costs the renderer."""
    from kivy.core.window import Window
    from kivy.graphics.opengl import glFinish

    took = []
    for _ in range(frames):
        Window.canvas.ask_update()
        start = time.perf_counter()
        Window.dispatch("on_draw")
        glFinish()
        took.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(took), 2)


def main() -> None:
    """Measure the kiosk and the baseline; print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--taps", type=int, default=200)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    parser.add_argument("--child", choices=("kiosk", "baseline"))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.taps, args.width, args.height)
        return
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    found: dict[str, dict[str, float]] = {}
    for kind in ("baseline", "kiosk"):
        done = subprocess.run([sys.executable, __file__, "--child", kind, "--taps",
                               str(args.taps), "--width", str(args.width), "--height",
                               str(args.height)], env=env, capture_output=True, text=True,
                              timeout=600, check=True)
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        found[kind] = {**_percentiles(measured["taps"]), "frame_ms": measured["frame_ms"]}
    out = {"bench": "kiosk_tap_latency", "taps": args.taps,
           "window": f"{args.width}x{args.height}", "kiosk_ms": found["kiosk"],
           "baseline_ms": found["baseline"],
           "p95_ratio": round(found["kiosk"]["p95"] / found["baseline"]["p95"], 2),
           "frame_ratio": round(found["kiosk"]["frame_ms"] / found["baseline"]["frame_ms"], 2),
           "python": platform.python_version(), "cpus": os.cpu_count()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
