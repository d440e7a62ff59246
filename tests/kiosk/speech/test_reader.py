"""When read-aloud speaks (kiosk.speech.reader), without a window or a sound card: the button
starts and stops, a tap elsewhere stops, a new screen is read while read-aloud is on, and the
end of every visit turns it off."""

from __future__ import annotations

from pathlib import Path

from kiosk.flow import ATTRACT
from kiosk.speech.espeak import DEFAULT_RATE, DEFAULT_VOLUME
from kiosk.speech.reader import ReadAloud, SpeechPrefs
from kiosk.speech.utterance import Utterance
from tests.kiosk.test_visit import _signed_in

HELLO = Utterance("en", ("Hello.",))
MENU = Utterance("en", ("What would you like to do?",))


class FakeSpeaker:
    """Records what it was asked to say; speaks until stopped."""

    def __init__(self) -> None:
        self.said: list[Utterance] = []
        self.speaking = False
        self.espeak = "espeak-ng"

    def say(self, utterance: Utterance) -> None:
        self.said.append(utterance)
        self.speaking = True

    def stop(self) -> None:
        self.speaking = False


def _reader() -> tuple[ReadAloud, FakeSpeaker]:
    speaker = FakeSpeaker()
    return ReadAloud(speaker), speaker  # type: ignore[arg-type]


def test_the_button_reads_and_a_tap_elsewhere_stops_it() -> None:
    visit, _ = _signed_in()
    reader, speaker = _reader()
    reader.button(visit, HELLO)
    assert speaker.said == [HELLO] and reader.speaking and visit.read_aloud
    reader.interrupt()  # a tap on anything but the speaker button
    assert not reader.speaking
    assert visit.read_aloud  # read-aloud stays on for the visit
    reader.shown(visit, HELLO)  # the same screen again: not read again
    assert speaker.said == [HELLO]


def test_a_new_screen_is_read_while_read_aloud_is_on() -> None:
    visit, _ = _signed_in()
    reader, speaker = _reader()
    reader.shown(visit, HELLO)
    assert speaker.said == []  # off: a new screen is not read
    reader.button(visit, HELLO)
    reader.shown(visit, MENU)
    assert speaker.said == [HELLO, MENU]
    reader.shown(visit, Utterance("es", ("¿Qué le gustaría hacer?",)))  # the other language
    assert speaker.said[-1].language == "es"


def test_the_button_while_speaking_stops_and_turns_read_aloud_off() -> None:
    visit, _ = _signed_in()
    reader, speaker = _reader()
    reader.button(visit, HELLO)
    reader.button(visit, HELLO)
    assert not reader.speaking and not visit.read_aloud
    reader.shown(visit, MENU)
    assert speaker.said == [HELLO]


def test_the_end_of_every_visit_turns_read_aloud_off() -> None:
    visit, _ = _signed_in()
    reader, speaker = _reader()
    reader.button(visit, HELLO)
    assert visit.end() == ATTRACT
    assert not visit.read_aloud
    reader.shown(visit, Utterance("en", ("Wellness check-up",)))
    assert not reader.speaking  # the attract screen stops it and is not read
    assert len(speaker.said) == 1


def test_the_admins_rate_and_volume_are_kept(tmp_path: Path) -> None:
    prefs = SpeechPrefs.load(tmp_path)
    assert (prefs.rate, prefs.volume) == (DEFAULT_RATE, DEFAULT_VOLUME)
    prefs.next_rate()
    prefs.next_volume()
    again = SpeechPrefs.load(tmp_path)
    assert (again.rate, again.volume) == (prefs.rate, prefs.volume) != (DEFAULT_RATE,
                                                                          DEFAULT_VOLUME)
    (tmp_path / "speech.json").write_text('{"rate": 5000, "volume": "loud"}')
    assert SpeechPrefs.load(tmp_path).rate == DEFAULT_RATE
