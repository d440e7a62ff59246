"""The kiosk in a real X window, its speech kept for a test to read (issue 19).

    DISPLAY=:N SDL_VIDEODRIVER=x11 python -m tests.kiosk.ui.speaker_kiosk LAYOUT SPEECH

Built as ``onsite-kiosk`` builds it (kiosk.cli.run: the real input providers, Kivy's own
blocking loop, the probe writing LAYOUT), over the fake backend, and with read-aloud on real
espeak-ng whose samples go to memory instead of a sound card (there is none here): the
speech backend's own seam, a sink per utterance (kiosk.speech.espeak.Speaker). Ten times a
second SPEECH is rewritten with each utterance said so far (language, voice, sentences, the
samples made, whether it was stopped), whether it is still speaking, and the answers given.
``test_speaker_taps.py`` taps the window from outside with xdotool and reads both files.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 1080, 1920


def main(argv: list[str]) -> int:
    """Run the kiosk until it is killed."""
    layout, speech = (Path(a) for a in argv)
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kiosk.ui.driver import configure_window

    configure_window(WIDTH, HEIGHT, synthetic_input_only=False)
    from kivy.clock import Clock

    from kiosk.admin import AdminLock
    from kiosk.speech.espeak import Speaker
    from kiosk.speech.output import MemorySink
    from kiosk.speech.reader import ReadAloud, SpeechPrefs
    from kiosk.ui.app import KioskApp
    from tests.kiosk.ui.fakes import FakeBackend

    folder = Path(tempfile.mkdtemp(prefix="kiosk-speaker-"))
    admin = AdminLock(folder)
    admin.set_pin("2468")
    made: list[tuple[Any, MemorySink]] = []
    prefs = SpeechPrefs.load(folder)

    def sink() -> MemorySink:
        # Held "playing" until stopped, as a sound card holds espeak-ng back.
        made.append((None, MemorySink(realtime=True)))
        return made[-1][1]

    speaker = Speaker(sink, rate=lambda: prefs.rate, volume=lambda: prefs.volume)
    reader = ReadAloud(speaker, prefs)
    said: list[Any] = []
    real_say = speaker.say

    def say(utterance: Any) -> None:
        if utterance:  # an empty one makes no sink (Speaker.say)
            said.append(utterance)
        real_say(utterance)

    speaker.say = say  # type: ignore[method-assign]
    app = KioskApp(backend=FakeBackend(), admin=admin, read_aloud=reader,
                   layout_file=layout)

    def write(_dt: float) -> None:
        sinks = [s for _u, s in made]
        record = {
            "utterances": [{"language": u.language, "voice": u.voice,
                            "sentences": list(u.sentences),
                            "samples": len(s.samples) // 2, "stopped": s.closed}
                           for u, s in zip(said, sinks, strict=False)],
            "speaking": reader.speaking, "read_aloud": bool(app.visit.read_aloud),
            "answers": app.visit.journey.answers}
        tmp = speech.with_name(speech.name + ".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, speech)

    Clock.schedule_interval(write, 0.1)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
