"""Read-aloud for a visit: the speaker button, screen changes, taps elsewhere (no Kivy here).

The visit holds whether read-aloud is on (``Visit.read_aloud``), so the wipe at the end of
every visit switches it off with everything else. The app tells this controller about the
speaker button, every other tap, and what each screen now says; it decides what to speak.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .espeak import DEFAULT_RATE, DEFAULT_VOLUME, RATES, VOLUMES, Speaker, synthesize
from .output import write_wav
from .utterance import Utterance


class ReadAloud:
    """Decides when to speak: the button starts or stops; a new screen stops and, while
    read-aloud is on, reads the new screen; any other tap stops."""

    def __init__(self, speaker: Speaker, prefs: SpeechPrefs | None = None) -> None:
        self.speaker = speaker
        self.prefs = prefs or SpeechPrefs(Path("speech.json"))
        self._said: tuple[str, tuple[str, ...]] | None = None

    @property
    def speaking(self) -> bool:
        """True while words are being said."""
        return self.speaker.speaking

    def button(self, visit: Any, utterance: Utterance) -> None:
        """The speaker button: read this screen and keep reading the next ones; tapped while
        speaking, it stops and read-aloud is off again."""
        if self.speaker.speaking:
            self.speaker.stop()
            visit.read_aloud = False
            return
        visit.read_aloud = True
        self._said = (utterance.language, utterance.sentences)
        self.speaker.say(utterance)

    def shown(self, visit: Any, utterance: Utterance) -> None:
        """The screen now says this: when it says something new (another screen, the next
        question, the other language), stop, and read it if read-aloud is on."""
        key = (utterance.language, utterance.sentences)
        if key == self._said:
            return
        self._said = key
        self.speaker.stop()
        if getattr(visit, "read_aloud", False):
            self.speaker.say(utterance)

    def interrupt(self) -> None:
        """A tap anywhere but the speaker button: stop speaking (read-aloud stays on)."""
        self.speaker.stop()

    def forget(self) -> None:
        """Read-aloud is off and silent: the next screen is news whenever it is turned on."""
        self._said = None

    def write_wav(self, utterance: Utterance, path: Path) -> Path:
        """Synthesize the utterance at the admin's rate and volume into a WAV file, naming
        its words and voice inside (the tour's ``<lang>-<nn>-<screen>.wav``)."""
        samples = synthesize(utterance, rate=self.prefs.rate, volume=self.prefs.volume,
                             espeak=self.speaker.espeak)
        return write_wav(path, samples, text=utterance.text, voice=utterance.voice)


@dataclass
class SpeechPrefs:
    """The admin's reading speed and volume, in ``<data_dir>/speech.json``."""

    path: Path
    rate: int = DEFAULT_RATE
    volume: int = DEFAULT_VOLUME

    @classmethod
    def load(cls, data_dir: Path) -> SpeechPrefs:
        """Read the settings (the defaults when unset or unreadable)."""
        prefs = cls(Path(data_dir) / "speech.json")
        try:
            data = json.loads(prefs.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return prefs
        if isinstance(data, dict):
            if data.get("rate") in RATES:
                prefs.rate = int(data["rate"])
            if data.get("volume") in VOLUMES:
                prefs.volume = int(data["volume"])
        return prefs

    def save(self) -> None:
        """Keep the settings across restarts."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rate": self.rate, "volume": self.volume}),
                       encoding="utf-8")
        os.replace(tmp, self.path)

    def next_rate(self) -> int:
        """The next reading speed in the admin's cycle (slowest after the fastest); saved."""
        self.rate = RATES[(RATES.index(self.rate) + 1) % len(RATES)] if self.rate in RATES \
            else DEFAULT_RATE
        self.save()
        return self.rate

    def next_volume(self) -> int:
        """The next volume in the admin's cycle (quietest after the loudest); saved."""
        self.volume = VOLUMES[(VOLUMES.index(self.volume) + 1) % len(VOLUMES)] \
            if self.volume in VOLUMES else DEFAULT_VOLUME
        self.save()
        return self.volume
