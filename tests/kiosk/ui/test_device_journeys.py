"""The kiosk window with the simulated Bluetooth cuff and scale (issue 19), each journey in its
own process; screenshots in tmp/artifacts/kiosk/devices for a person to look at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / \
    "kiosk" / "devices"


def run(name: str, *args: str, module: str = "tests.kiosk.ui.device_journeys") -> str:
    """Run one device journey in a fresh process; fail with its traceback."""
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", module, name, str(ARTIFACTS), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
                          check=False)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.parametrize("journey", ["cuff", "scale", "admin_pairing"])
def test_device_journey(journey: str) -> None:
    assert f"{journey}: ok" in run(journey)


DEVICE_SCREENS = ("device_cuff_wait", "device_cuff_advice", "device_cuff_reading",
                  "device_scale_wait", "device_scale_reading", "admin_devices")


def test_the_tour_with_simulated_devices_saves_their_screens() -> None:
    """The pinned command: ``onsite-kiosk --tour DIR --simulated-devices`` (offline here)."""
    out = ARTIFACTS / "tour"
    for old in out.glob("*.png"):
        old.unlink()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", "from kiosk.app import main; main()",
                           "--tour", str(out), "--simulated-devices"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    for language in ("en", "es"):
        names = sorted(p.name for p in out.glob(f"{language}-*.png"))
        shown = {n.split("-", 2)[2].removesuffix(".png") for n in names}
        assert set(DEVICE_SCREENS) <= shown, set(DEVICE_SCREENS) - shown
        # BP and body size came from the devices: the number pad was never needed for them.
        assert "question_height" in shown  # the height is still typed (feet, then inches)
