"""The speaker button tapped as a person taps it: OS-level clicks into a real X window (issue 19).

The kiosk runs in an X window on Xvfb (SDL's x11 driver, Kivy's own loop and input providers,
``speaker_kiosk.py``); ``xdotool`` moves the pointer and clicks. Where to tap comes from the
kiosk's probe (kiosk/ui/probe.py). What was said comes from the speech backend's seam: real
espeak-ng, its samples kept in memory (there is no sound card), written out by the kiosk with
each utterance's language, voice and words. A tap on the speaker reads the screen in the
member's language; a tap elsewhere stops it; a hurried double tap on the speaker reads once,
keeps reading, and acts on nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kiosk.ui.test_real_taps import (
    ARTIFACTS,
    HEIGHT,
    Person,
    display,
    kiosk_in_window,
)

pytestmark = [pytest.mark.ui, pytest.mark.slow,
              pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                 reason="needs Xvfb and xdotool (scripts/bootstrap.sh test)"),
              pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                 reason="espeak-ng is not installed (scripts/bootstrap.sh)")]

ROOT = Path(__file__).resolve().parents[3]
__all__ = ["display"]  # the Xvfb fixture, shared with the double-tap tests


class Listener(Person):
    """A person at the kiosk who can also hear it (the speech record)."""

    def __init__(self, display: str, layout: Path, speech: Path,
                 proc: subprocess.Popen[bytes]) -> None:
        super().__init__(display, layout, proc)
        self.speech = speech

    def heard(self) -> dict[str, Any]:
        """What the kiosk has said so far, and whether it is speaking now."""
        return dict(json.loads(self.speech.read_text("utf-8")))

    def until(self, what: Callable[[dict[str, Any]], bool], timeout: float = 30) -> \
            dict[str, Any]:
        """Wait until the speech record shows ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, "the kiosk exited"
            try:
                heard = self.heard()
                if what(heard):
                    return heard
            except (FileNotFoundError, ValueError):
                pass
            assert time.monotonic() < deadline, f"never happened; heard {self.heard()}"
            time.sleep(0.05)


@pytest.fixture
def listener(display: str, tmp_path: Path) -> Iterator[Listener]:
    """The kiosk in the X window, on its attract screen, its speech recorded."""
    layout, speech = tmp_path / "layout.json", tmp_path / "speech.json"
    env = {**os.environ, "DISPLAY": display, "SDL_VIDEODRIVER": "x11", "HOME": str(tmp_path),
           "KIVY_HOME": str(tmp_path / "kivy"), "KIVY_NO_CONSOLELOG": "1",
           "PYTHONPATH": str(ROOT)}
    with kiosk_in_window([sys.executable, "-m", "tests.kiosk.ui.speaker_kiosk", str(layout),
                          str(speech)], env, tmp_path / "kiosk.log",
                         lambda proc: Listener(display, layout, speech, proc),
                         cwd=ROOT) as person:
        yield person


def test_the_speaker_reads_in_the_members_language_a_tap_elsewhere_stops_it_and_a_double_tap_reads_once(  # noqa: E501
        listener: Listener) -> None:
    p = listener
    p.tap(id="start")
    p.wait(lambda s: s["screen"] == "privacy")
    p.tap(id="accept")
    p.wait(lambda s: s["screen"] == "identify")
    p.tap(id="anonymous")
    p.wait(lambda s: s["screen"] == "menu")
    p.tap(id="single")
    p.wait(lambda s: any("PHQ-9" in b["text"] for b in s["buttons"]))
    p.tap(text="PHQ-9")
    p.wait(lambda s: s["screen"] == "question" and s["question"] == "1")
    p.tap(id="language")  # the member reads Spanish
    p.wait(lambda s: any(b["text"] == "Escuchar" for b in s["buttons"]))
    assert p.heard()["utterances"] == [], "nothing is read before the speaker is tapped"

    # One tap on the speaker: the question and its answers, in Spanish, synthesized.
    p.tap(id="speaker")
    heard = p.until(lambda h: h["utterances"] and h["utterances"][0]["samples"] > 0)
    first = heard["utterances"][0]
    assert first["language"] == "es" and first["voice"] == "es-419", first
    assert "Poco interés o placer en hacer cosas" in first["sentences"], first["sentences"]
    assert "Ningún día" in first["sentences"], first["sentences"]  # an answer, read out
    time.sleep(0.5)
    assert p.heard()["speaking"], "the reading stopped by itself"
    p.screenshot(ARTIFACTS / "real-taps" / "speaker-reading-es.png")

    # A tap on nothing (the page's margin): the reading stops; nothing else happens.
    p.tap_at(12, HEIGHT // 2)
    heard = p.until(lambda h: not h["speaking"])
    assert heard["utterances"][0]["stopped"] and len(heard["utterances"]) == 1
    seen = p.settle(0.5)
    assert (seen["screen"], seen["question"]) == ("question", "1")

    # A hurried double tap on the speaker: one reading, still going; no answer, same question.
    p.double_tap(id="speaker")
    seen = p.settle()
    heard = p.heard()
    assert len(heard["utterances"]) == 2, [u["sentences"][:1] for u in heard["utterances"]]
    second = heard["utterances"][1]
    assert second["language"] == "es" and second["samples"] > 0
    assert heard["speaking"] and not second["stopped"], \
        "the second tap of a double tap stopped the reading the first one started"
    assert (seen["screen"], seen["question"]) == ("question", "1")
    assert heard["answers"] == {} or heard["answers"] == {"phq9": {}}, heard["answers"]
    p.tap_at(12, HEIGHT // 2)  # quiet again before the kiosk is closed
    p.until(lambda h: not h["speaking"])
