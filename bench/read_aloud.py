"""Read-aloud latency: a tap on the speaker button to espeak-ng's first audio samples, p50/p95.

The kiosk runs in a real window (offscreen SDL on Mesa's software GL, portrait 1080x1920)
with a fake backend. There is no sound card here, so the player (aplay on a kiosk) is a probe
process that espeak-ng writes into the same way; the end point is the moment the first sample
bytes reach it, when a sound card would start playing. A real touch goes down and up on the speaker
button; the clock starts at the release (a button acts on release). Then the speech is stopped
(untimed), so every timed tap starts from silence.

The baseline, in the same run and interleaved with the taps: espeak-ng started directly with
the same screen's SSML into a probe, from the spawn to its first samples. The difference is
what the kiosk adds (the screen's words, the thread, the touch); the baseline is what
espeak-ng needs to load its voice and say the first clause, which no kiosk code can remove.
A third series, for diagnosis only, repeats each tap but draws no frame while waiting (the
kiosk's window is frozen): the gap to the first series is what drawing the screen takes from
espeak-ng on a 2-core machine with software GL.
Screens: attract, privacy (the longest text), a PHQ-9 question, the crisis screen (988).
Prints ONE JSON line (milliseconds).
Usage: python bench/read_aloud.py [--taps 15]
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
SCREENS = ("attract", "privacy", "question", "crisis")


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
            "max": round(ordered[-1], 2)}


# The probe: a player process that notes (CLOCK_MONOTONIC, as time.monotonic here) when the
# header and the first sample bytes reach it, then reads on as a player would.
PROBE = ("import sys, time\nprint('ready', flush=True)\nr = sys.stdin.buffer\nr.read(45)\n"
         "print(time.monotonic(), flush=True)\nwhile r.read(65536):\n    pass\n")


class Probe:
    """A Player for kiosk.speech.espeak.Speaker: espeak-ng writes straight into it, as into
    aplay. Started before the tap (untimed), like a sound card that is already there."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", PROBE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        self.stdin = self.process.stdin
        assert self.process.stdout is not None
        self.process.stdout.readline()  # "ready": started before the clock starts

    def heard_at(self, pump: Any = None, timeout: float = 30.0) -> float:
        """When the first samples arrived (waiting, and pumping frames, until they do)."""
        import select

        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0 if pump else 1)
            if ready:
                return float(self.process.stdout.readline())
            if pump is not None:
                pump()
        raise RuntimeError("no samples reached the player")

    def drain(self) -> None:
        """Wait for the end of the stream."""
        self.process.wait()

    def close(self) -> None:
        """Stop at once (what it noted stays readable)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.stdin is not None and not self.stdin.closed:
            self.stdin.close()

    def release(self) -> None:
        """Done with it."""
        self.close()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _espeak_first_samples(ssml: str, voice: str, rate: int, volume: int) -> float:
    """The baseline: spawn espeak-ng with this SSML into a player; ms to its first samples."""
    from kiosk.speech.espeak import command

    probe = Probe()
    start = time.monotonic()
    process = subprocess.Popen(command(voice, rate, volume), stdin=subprocess.PIPE,
                               stdout=probe.stdin, stderr=subprocess.DEVNULL)
    assert process.stdin is not None and probe.stdin is not None
    probe.stdin.close()
    process.stdin.write(ssml.encode("utf-8"))
    process.stdin.close()
    took = (probe.heard_at() - start) * 1000
    process.kill()
    process.wait()
    probe.release()
    return took


def child(taps: int, width: int, height: int) -> None:
    """Run the taps in this (fresh) process and print the samples."""
    sys.path.insert(0, str(ROOT))
    from kiosk.ui.driver import Driver, configure_window, headless_environment, touch

    headless_environment(tempfile.mkdtemp(prefix="kivy-bench-"))
    configure_window(width, height, synthetic_input_only=True)
    from kivy.base import EventLoop

    from kiosk.admin import AdminLock
    from kiosk.speech.espeak import Speaker
    from kiosk.speech.reader import ReadAloud, SpeechPrefs
    from kiosk.ui.app import KioskApp
    from tests.kiosk.ui.fakes import FakeBackend

    folder = Path(tempfile.mkdtemp(prefix="kiosk-bench-read-aloud-"))
    admin = AdminLock(folder)
    prefs = SpeechPrefs.load(folder)
    probes: list[Probe] = []
    speaker = Speaker(lambda: probes[-1], rate=lambda: prefs.rate, volume=lambda: prefs.volume)
    app = KioskApp(backend=FakeBackend(), admin=admin, require_setup=False,
                   read_aloud=ReadAloud(speaker, prefs))
    driver = Driver.start(app)
    kiosk: dict[str, list[float]] = {s: [] for s in SCREENS}
    baseline: dict[str, list[float]] = {s: [] for s in SCREENS}
    frozen: dict[str, list[float]] = {s: [] for s in SCREENS}
    words: dict[str, int] = {}

    def measure(name: str) -> None:
        """Time the taps on this screen's speaker button, and the baseline beside each."""
        assert driver.screen().name == name, driver.screen().name
        said = app.utterance()
        words[name] = len(said.text.split())
        button = driver.find("speaker")
        driver.settle()
        for _ in range(taps):
            baseline[name].append(_espeak_first_samples(said.ssml(), said.voice, prefs.rate,
                                                        prefs.volume))
            for series, pump in ((kiosk, EventLoop.idle), (frozen, None)):
                probes.append(Probe())
                finger = touch(*button.to_window(*button.center))
                finger.touch_down()
                EventLoop.idle()
                start = time.monotonic()
                finger.touch_up()
                # The kiosk goes on drawing frames meanwhile, as it does on the glass (the
                # diagnostic series draws none: what the frames cost espeak-ng).
                series[name].append((probes[-1].heard_at(pump) - start) * 1000)
                probes[-1].release()
                # Untimed: stop, and read-aloud off again, as a second tap on the button does
                # (a tap would race the end of a short screen's speech).
                app.read_aloud.speaker.stop()
                app.visit.read_aloud = False
                driver.pump(2)
                driver.settle()

    measure("attract")
    driver.tap_id("start")
    measure("privacy")
    driver.tap_id("accept")
    driver.tap_id("anonymous")
    app.do(app.visit.questions.single, "phq9")
    driver.pump(2)
    measure("question")
    while app.visit.journey.question != "9":
        app.do(app.visit.questions.answer, 0)
    app.do(app.visit.questions.answer, 1)
    app.do(app.visit.questions.answer, 0)
    driver.pump(2)
    measure("crisis")
    print(json.dumps({"kiosk": kiosk, "baseline": baseline, "frozen": frozen, "words": words}),
          file=sys.__stdout__, flush=True)


def main() -> None:
    """Measure the kiosk's taps and the baseline; print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--taps", type=int, default=15)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        try:
            child(args.taps, args.width, args.height)
        except Exception:  # noqa: BLE001 - Kivy holds sys.stderr: report on the real one
            import traceback

            traceback.print_exc(file=sys.__stderr__)
            sys.exit(1)
        return
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, __file__, "--child", "--taps", str(args.taps),
                           "--width", str(args.width), "--height", str(args.height)],
                          env=env, capture_output=True, text=True, timeout=900, check=True)
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    screens = {}
    for name in SCREENS:
        tap, base, frozen = (_percentiles(measured[k][name])
                             for k in ("kiosk", "baseline", "frozen"))
        screens[name] = {"words": measured["words"][name], "tap_to_first_sample_ms": tap,
                         "espeak_alone_ms": base, "tap_no_frames_drawn_ms": frozen,
                         "p50_added_ms": round(tap["p50"] - base["p50"], 2),
                         "p95_ratio": round(tap["p95"] / base["p95"], 2)}
    every_tap = [t for name in SCREENS for t in measured["kiosk"][name]]
    every_base = [t for name in SCREENS for t in measured["baseline"][name]]
    every_frozen = [t for name in SCREENS for t in measured["frozen"][name]]
    out = {"bench": "read_aloud", "taps_per_screen": args.taps,
           "window": f"{args.width}x{args.height}", "screens": screens,
           "all_ms": _percentiles(every_tap), "all_baseline_ms": _percentiles(every_base),
           "all_no_frames_drawn_ms": _percentiles(every_frozen),
           "p95_ratio": round(_percentiles(every_tap)["p95"] / _percentiles(every_base)["p95"],
                              2),
           "espeak": _espeak_version(), "python": platform.python_version(),
           "cpus": os.cpu_count()}
    print(json.dumps(out))


def _espeak_version() -> str:
    done = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                          check=False)
    return done.stdout.split(" Data")[0].strip()


if __name__ == "__main__":
    main()
