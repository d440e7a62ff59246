"""Every touch target on every screen of the tour, at the kiosk's real sizes (issue 15), and
a speaker within reach over the phone and email pads (issue 19), each journey in its own
process (Kivy's App and Window are process singletons): ``layout_journeys.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / "kiosk"


def _run(name: str, out: Path) -> str:
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "tests.kiosk.ui.layout_journeys", name,
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-6000:]}"
    return done.stdout


@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_every_touch_target_of_the_tour_is_at_least_100_px(orientation: str) -> None:
    """Portrait 1080x1920 and landscape 1920x1080, English and Spanish: every control at
    least 100 px both ways, on the glass, overlapping no other, its words inside it, and a
    speaker button within reach (the pads' own, where a pad stands over the footer)."""
    out = ARTIFACTS / f"tour-{orientation}"
    for old in out.glob("*.png"):
        old.unlink()
    assert f"{orientation}: ok" in _run(orientation, out)


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed (scripts/bootstrap.sh)")
@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_the_phone_and_email_pads_have_a_speaker_that_reads_them(orientation: str) -> None:
    assert f"pads_{orientation}: ok" in _run(f"pads_{orientation}", ARTIFACTS / "pads")
