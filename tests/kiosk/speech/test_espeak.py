"""Speech made by the real espeak-ng (Debian's package): the right voice, no long pauses inside,
loud enough and as loud as the admin set, and stopped at once.

Samples are 16-bit mono at 22,050 Hz (espeak-ng's voices); a pause is counted on the samples.
"""

from __future__ import annotations

import shutil
import time

import pytest

from kiosk.speech.espeak import (
    RATES,
    SAMPLE_RATE,
    Speaker,
    command,
    read_info,
    synthesize,
    wav_bytes,
)
from kiosk.speech.output import MemorySink
from kiosk.speech.utterance import Utterance
from tests.kiosk.speech.helpers import (
    longest_inner_silence,
    rms,
    samples_of,
    sound_seconds,
    wav_samples,
)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed (scripts/bootstrap.sh)")

CRISIS_EN = Utterance("en", ("If you are thinking about hurting yourself, help is here now.",
                             "Call or text 988.", "In an emergency, call 911.",
                             "Riverside Crisis Center: +1 555 0199"))
CRISIS_ES = Utterance("es", ("Si está pensando en hacerse daño, hay ayuda ahora.",
                             "Llame o envíe un mensaje de texto al 988.",
                             "En una emergencia, llame al 911."))


def test_the_command_takes_ssml_on_stdin_never_the_words_on_its_command_line() -> None:
    cmd = command("es-419", 130, 75)
    assert cmd[:2] == ["espeak-ng", "-m"] and cmd[cmd.index("-v") + 1] == "es-419"
    assert "--stdout" in cmd and not any("988" in part for part in cmd)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("said", [CRISIS_EN, CRISIS_ES], ids=["en", "es"])
def test_speech_at_every_rate_has_no_pause_longer_than_a_second(said: Utterance,
                                                                rate: int) -> None:
    samples = samples_of(synthesize(said, rate=rate))
    assert sound_seconds(samples, SAMPLE_RATE) > 3
    assert longest_inner_silence(samples, SAMPLE_RATE) < 1.0


def test_the_spanish_voice_is_not_the_english_one() -> None:
    # The same words, each voice: different sounds (the voice is really applied).
    words = Utterance("es", ("Llame al 988.",))
    spanish = synthesize(words)
    english = synthesize(Utterance("en", words.sentences))
    assert spanish != english
    assert synthesize(words) == spanish  # and espeak-ng is deterministic


def test_988_is_said_digit_by_digit_so_it_takes_longer_than_the_number() -> None:
    # "nine eight eight" and "nine hundred eighty-eight" differ; the digits are what people
    # dial. The plain text path (no SSML) would read the number.
    spelled = samples_of(synthesize(Utterance("en", ("988",))))
    import subprocess

    number = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "--stdout"],
                            input=b"988", capture_output=True, check=True).stdout[44:]
    assert len(spelled) * 2 < len(number)


def test_the_admins_volume_makes_it_louder() -> None:
    said = Utterance("en", ("Your results.",))
    quiet, loud = (rms(samples_of(synthesize(said, volume=v))) for v in (25, 100))
    assert loud > 3 * quiet > 0


def test_a_wav_file_names_its_words_and_voice() -> None:
    data = wav_bytes(synthesize(CRISIS_ES), comment=CRISIS_ES.text, software="espeak-ng es-419")
    samples, rate = wav_samples(data)
    assert rate == SAMPLE_RATE and len(samples) > SAMPLE_RATE
    assert read_info(data) == {"ICMT": CRISIS_ES.text, "ISFT": "espeak-ng es-419"}


def test_the_speaker_speaks_in_the_background_and_stops_at_once() -> None:
    sinks: list[MemorySink] = []
    firsts: list[float] = []

    def sink() -> MemorySink:
        # The first plays "in real time": it holds the first samples until it is stopped.
        sinks.append(MemorySink(realtime=not sinks))
        return sinks[-1]

    speaker = Speaker(sink, on_first_samples=firsts.append)
    long = Utterance("en", tuple(f"Sentence number {n} of a long screen." for n in range(40)))
    speaker.say(long)  # returns at once
    assert speaker.speaking
    deadline = time.monotonic() + 10
    while not firsts and time.monotonic() < deadline:
        time.sleep(0.01)
    assert firsts, "no samples came"
    speaker.stop()
    assert not speaker.speaking and sinks[0].closed
    assert len(sinks[0].samples) <= 4096  # the first chunk only: cut short
    speaker.say(Utterance("en", ("Short.",)))
    speaker.wait()
    assert len(sinks) == 2 and len(sinks[1].samples) > 0 and sinks[1].closed


class CatPlayer:
    """A player process that reads espeak-ng's stream itself, as aplay does: ``cat`` to a
    file (or ``sleep``, a player that never reads: a sound card still playing)."""

    def __init__(self, cmd: list[str], out: object) -> None:
        import subprocess

        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out)
        self.stdin = self.process.stdin

    def drain(self) -> None:
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def test_a_player_gets_espeaks_stream_directly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = (tmp_path / "heard.wav").open("wb")
    players: list[CatPlayer] = []

    def player() -> CatPlayer:
        players.append(CatPlayer(["cat"], out))
        return players[-1]

    speaker = Speaker(player)
    speaker.say(CRISIS_EN)
    speaker.wait()
    out.close()
    assert not speaker.speaking and players[0].process.returncode == 0
    heard = (tmp_path / "heard.wav").read_bytes()
    assert heard[:4] == b"RIFF" and heard[44:] == synthesize(CRISIS_EN)


def test_stopping_silences_a_player_that_is_still_playing() -> None:
    import subprocess

    players: list[CatPlayer] = []

    def player() -> CatPlayer:
        players.append(CatPlayer(["sleep", "60"], subprocess.DEVNULL))
        return players[-1]

    speaker = Speaker(player)
    speaker.say(Utterance("en", tuple(f"Sentence {n} of a long screen." for n in range(80))))
    assert speaker.speaking
    speaker.stop()
    assert not speaker.speaking
    assert players[0].process.poll() is not None  # the player was ended


def test_with_no_sound_card_the_kiosk_speaks_to_no_one_and_goes_on() -> None:
    from kiosk.speech.output import AplaySink

    speaker = Speaker(AplaySink)
    speaker.say(Utterance("en", ("Hello.",)))
    speaker.wait(timeout=30)
    assert not speaker.speaking
