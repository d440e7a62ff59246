"""Read-aloud in a real window (issue 19), each journey in its own process: the speaker button
on every member screen (at least 100 px on the 1080x1920 screen), a tap elsewhere stops the
speech, a new screen is read, the end of the visit turns it off; the admin's settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kiosk.ui.runner import journey_env

pytestmark = [pytest.mark.ui, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                 reason="espeak-ng is not installed (scripts/bootstrap.sh)")]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / "kiosk"


@pytest.mark.parametrize("journey", ["taps", "crisis_and_wipe", "admin_settings",
                                     "device_reading"])
def test_read_aloud_journey(journey: str) -> None:
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "tests.kiosk.ui.read_aloud_journeys", journey,
                           str(ARTIFACTS / "read-aloud")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"{journey} failed:\n{done.stderr[-4000:]}"
    assert f"{journey}: ok" in done.stdout


SPEECH_VOICES = {"en": "espeak-ng en-us", "es": "espeak-ng es-419"}


def test_the_tour_with_read_aloud_saves_each_screens_speech_beside_its_screenshot(
        tmp_path: Path) -> None:
    from kiosk.speech.espeak import SAMPLE_RATE, read_info, synthesize
    from kiosk.speech.utterance import Utterance
    from tests.kiosk.speech.helpers import longest_inner_silence, sound_seconds, wav_samples

    out = ARTIFACTS / "tour-read-aloud"
    for old in [*out.glob("*.png"), *out.glob("*.wav")]:
        old.unlink()
    env = dict(os.environ, ONSITE_KIOSK_WIDTH="540", ONSITE_KIOSK_HEIGHT="960", **journey_env(),
               HOME=str(tmp_path))
    exe = Path(sys.executable).with_name("onsite-kiosk")
    # With the simulated cuff and scale: their screens are read too (the device panel).
    done = subprocess.run([str(exe), "--tour", str(out), "--read-aloud", "--simulated-devices"],
                          env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    shots = sorted(out.glob("*.png"))
    assert shots and "read-aloud WAV files" in done.stdout
    assert sorted(p.stem for p in out.glob("*.wav")) == [p.stem for p in shots]
    for shot in shots:
        language = shot.name[:2]  # the staff screens too: the tour opens them in its language
        data = shot.with_suffix(".wav").read_bytes()
        info = read_info(data)
        samples, rate = wav_samples(data)
        assert rate == SAMPLE_RATE
        # The right language's voice, and these samples are that voice saying those words
        # (espeak-ng is deterministic): not a file of something else.
        assert info["ISFT"] == SPEECH_VOICES[language], shot.name
        said = Utterance(language, tuple(info["ICMT"].splitlines()))
        assert said, f"{shot.name}: nothing said"
        assert synthesize(said) == samples.tobytes(), shot.name
        assert sound_seconds(samples, rate) > 0.5, f"{shot.name}: silent"
        assert longest_inner_silence(samples, rate) < 1.0, shot.name
        if shot.stem.endswith("-crisis"):
            assert "988" in info["ICMT"] and "911" in info["ICMT"]
    by_name = {p.stem: read_info(p.with_suffix(".wav").read_bytes())["ICMT"] for p in shots}
    assert "Your privacy" in by_name["en-02-privacy"]
    assert "Su privacidad" in by_name["es-02-privacy"]
    cuff = next(text for stem, text in by_name.items() if stem.startswith("en-")
                and stem.endswith("device_cuff_wait"))
    assert "Put the cuff on and press its start button." in cuff
    assert "Type the number, then tap OK." not in cuff
