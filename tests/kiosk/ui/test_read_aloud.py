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

pytestmark = [pytest.mark.ui, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                 reason="espeak-ng is not installed (scripts/bootstrap.sh)")]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / "kiosk"


@pytest.mark.parametrize("journey", ["taps", "admin_settings"])
def test_read_aloud_journey(journey: str) -> None:
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "tests.kiosk.ui.read_aloud_journeys", journey,
                           str(ARTIFACTS / "read-aloud")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"{journey} failed:\n{done.stderr[-4000:]}"
    assert f"{journey}: ok" in done.stdout
