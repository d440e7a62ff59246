"""One way to run a named UI journey in its own process (Kivy's App and Window are singletons).

Each ``*_journeys.py`` module keeps its journeys in a dict and ends with
``sys.exit(run(JOURNEYS, sys.argv[1:], size_of))``. The window is configured here, before any
journey imports Kivy's window, which is why this module imports nothing of Kivy itself.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from kiosk.ui.driver import Driver, configure_window, headless_environment

# After every change on the glass the kiosk ignores taps for its tap guard (400 ms by default,
# KioskSettings.tap_guard_ms), and a journey's driver waits that out before each tap as a person
# would (Driver.settle). In a journey that is pure waiting: about half of a tour's time. The
# journeys that do not test the guard run with this shorter one (still above zero, so taps are
# held after each change and the driver still waits for the new screen's frames); the guard
# itself keeps its own tests at the real value (test_real_taps.py, test_speaker_taps.py and the
# read-aloud journeys). ONSITE_KIOSK_TAP_GUARD_MS carries it to an ``onsite-kiosk --tour``.
# 20 ms (50 until session 14): with the frames unpaced (below), the 240 taps of a layout walk
# waited 7.6 s at 20 ms against 17.6 s at 50; the frames after each tap are counted either way
# (Driver.tap_at), so a new screen is laid out before the next tap reads where to touch.
JOURNEY_TAP_GUARD_MS = 20

# Kivy asks the GL driver for multisample anti-aliasing (graphics.multisamples = 2), which
# smooths the thin border lines of buttons and fields and nothing else. On Mesa's llvmpipe,
# with no GPU, it is about half of what a frame costs: the offline tour used 16 s of CPU with
# it and 11 s without, a layout walk at 1080x1920 47 s and 23 s (docs/BENCHMARKS.md, session
# 9). Widgets, layout, text and taps are the same either way, so the walks that run with the
# journeys' tap guard draw without it; what tests the guard (the read-aloud taps journey, the
# OS-level taps under Xvfb) keeps the kiosk's own settings.
#
# Kivy also paces its frames to 60 a second (graphics.maxfps), sleeping out the rest of each
# frame's 16.7 ms, and a walk pumps its frames itself, thousands of them (three a tap).
# Unpaced, each frame takes what its work takes: the layout walk at 1080x1920 went from 64 s
# to 58 s with the same 8 s of CPU (session 14). What must last in real time still does: the
# tap guard (Driver.settle), a scroll view's release and every wait for a timer or a thread
# (Driver.wait_for) are timed, not counted in frames. The journeys that keep the kiosk's own
# settings keep its pace.
JOURNEY_KIVY_CONFIG = {"KCFG_GRAPHICS_MULTISAMPLES": "0", "KCFG_GRAPHICS_MAXFPS": "0"}
# The same journeys draw the window only for their screenshots (Driver.draw_between_shots):
# every frame still runs the clock, input, layout and the flip.


def journey_env() -> dict[str, str]:
    """Environment for an ``onsite-kiosk --tour`` walked as the journeys are (guard, drawing)."""
    return {"ONSITE_KIOSK_TAP_GUARD_MS": str(JOURNEY_TAP_GUARD_MS), **JOURNEY_KIVY_CONFIG}


def run(journeys: Mapping[str, Callable[..., None]], argv: list[str],
        size_of: Callable[[str], tuple[int, int]], *, kiosk_drawing: Collection[str] = ()) -> int:
    """Run the journey ``argv[0]`` writing into ``argv[1]``, the rest its arguments; exit code.

    The journeys named in ``kiosk_drawing`` keep Kivy's own drawing settings (see
    JOURNEY_KIVY_CONFIG).
    """
    name, out, *rest = argv
    # The journey's own folders (Kivy's home, the kiosk's data and admin folders) go into one
    # that is removed when the process exits: made in /tmp itself, about twenty were left there
    # by every run. Kivy's exit handlers, registered later, run before this one.
    scratch = tempfile.mkdtemp(prefix="kiosk-journey-")
    tempfile.tempdir = scratch
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    if name not in kiosk_drawing:
        os.environ.update(JOURNEY_KIVY_CONFIG)  # read when Kivy's config is first imported
        Driver.draw_between_shots = False
    headless_environment(tempfile.mkdtemp(prefix="kivy-home-"))
    configure_window(*size_of(name), synthetic_input_only=True)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        journeys[name](out_dir, *rest)
    except Exception:  # noqa: BLE001 - report any failure of the journey and exit 1
        traceback.print_exc(file=sys.__stderr__)
        return 1
    print(f"{name}: ok in {time.monotonic() - started:.1f} s", file=sys.__stdout__)
    return 0
