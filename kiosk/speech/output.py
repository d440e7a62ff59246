"""Where speech is heard: headphones when a jack is connected (the private default), else the
kiosk's speaker; and the sinks that play or keep the samples.

The decision is plain logic (``route``) over what ALSA reports about its jacks
(``amixer contents``, parsed by ``jacks``), so tests check it without a sound card. Applying
it sets the mixer's Headphone and Speaker switches: on a card without them (or none at all),
the driver's own auto-mute is left to do it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Literal

from .espeak import wav_bytes

log = logging.getLogger(__name__)

Route = Literal["headphones", "speaker"]
_CONTROL = re.compile(r"numid=\d+,iface=CARD,name='([^']*)'")
_VALUES = re.compile(r"^\s*:\s*values=(\w+)")


def jacks(amixer_contents: str) -> dict[str, bool]:
    """The jack controls of ``amixer -c CARD contents`` (name: plugged in)."""
    found: dict[str, bool] = {}
    name: str | None = None
    for line in amixer_contents.splitlines():
        control = _CONTROL.search(line)
        if control is not None:
            name = control.group(1) if "Jack" in control.group(1) else None
            continue
        value = _VALUES.match(line)
        if value is not None and name is not None:
            found[name] = value.group(1) in ("on", "1")
            name = None
    return found


def headphones_in(found: Mapping[str, bool]) -> bool | None:
    """Whether headphones are plugged in (None: the card reports no headphone jack)."""
    states = [on for name, on in found.items()
              if "headphone" in name.lower() and "phantom" not in name.lower()]
    return any(states) if states else None


def route(headphones: bool | None) -> Route:
    """Headphones whenever they are plugged in (no one else hears a member's results); the
    speaker otherwise, or when the card cannot tell."""
    return "headphones" if headphones else "speaker"


def mixer_commands(chosen: Route, card: str = "0") -> list[list[str]]:
    """The amixer calls that send the sound to ``chosen`` alone."""
    on, off = ("Headphone", "Speaker") if chosen == "headphones" else ("Speaker", "Headphone")
    return [["amixer", "-q", "-c", card, "sset", on, "unmute"],
            ["amixer", "-q", "-c", card, "sset", off, "mute"]]


def apply_route(card: str = "0",
                run: Callable[[list[str]], str] | None = None) -> Route:
    """Read the jacks, choose, and set the mixer; return the route (best effort, never raises)."""
    runner = run or _run
    try:
        found = jacks(runner(["amixer", "-c", card, "contents"]))
    except (OSError, subprocess.SubprocessError):
        found = {}
    chosen = route(headphones_in(found))
    for cmd in mixer_commands(chosen, card):
        try:
            runner(cmd)
        except (OSError, subprocess.SubprocessError):
            pass  # a card without that control: its auto-mute decides
    return chosen


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=5).stdout


class AplaySink:
    """Plays on the sound card: ``aplay`` (alsa-utils) reads espeak-ng's WAV stream directly
    (a Player: see kiosk.speech.espeak), after the route is set for this utterance."""

    warned = False

    def __init__(self, device: str = "default", card: str = "0") -> None:
        self.route = apply_route(card)
        self._process: subprocess.Popen[bytes] | None = None
        self.stdin: IO[bytes] | None = None
        try:
            self._process = subprocess.Popen(["aplay", "-q", "-D", device, "-t", "wav", "-"],
                                             stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self.stdin = self._process.stdin
        except OSError as exc:
            self._warn(f"read-aloud: cannot start aplay ({exc})")
            # Nothing plays, but espeak-ng still needs somewhere to write.
            self.stdin = open(os.devnull, "wb")  # noqa: SIM115 - handed to espeak-ng

    @classmethod
    def _warn(cls, text: str) -> None:
        if not cls.warned:  # once: a kiosk with no sound card would say it on every tap
            cls.warned = True
            log.warning(text)

    def drain(self) -> None:
        """Wait until aplay has played everything (or was closed)."""
        process = self._process
        if process is not None:
            process.wait()
            if process.returncode not in (0, -9):
                self._warn("read-aloud: aplay could not play (no sound card?)")

    def close(self) -> None:
        """Stop playing: a stopped utterance must fall silent at once."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()  # our own aplay child
            process.wait()


class MemorySink:
    """Keeps the samples (tests, the benchmark); ``realtime`` makes each write wait, as a sound
    card does, until it is closed (a sink that plays never lets espeak-ng run far ahead)."""

    def __init__(self, *, realtime: bool = False) -> None:
        self.samples = bytearray()
        self.closed = False
        self.realtime = realtime
        self._closed = threading.Event()

    def write(self, samples: bytes) -> None:
        """Keep them (and, in real time, hold on until closed)."""
        if self.closed:
            raise BrokenPipeError("sink closed")
        self.samples += samples
        if self.realtime:
            self._closed.wait(timeout=30)

    def close(self) -> None:
        """Nothing to let go of (a held write returns)."""
        self.closed = True
        self._closed.set()


def write_wav(path: Path, samples: bytes, *, text: str, voice: str) -> Path:
    """Save samples as a WAV file naming what was said and the voice (the tour's files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(samples, comment=text, software=f"espeak-ng {voice}"))
    return path
