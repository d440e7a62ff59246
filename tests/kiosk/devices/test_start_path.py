"""The kiosk's start path leaves bumble out: it is imported only when a cuff or scale is used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _modules_after(statement: str) -> set[str]:
    """The top-level packages imported by ``statement`` in a fresh interpreter."""
    listing = "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    code = f"{statement}\nimport sys\n{listing}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1",
               SDL_VIDEODRIVER="offscreen")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, timeout=120, cwd=ROOT)
    return set(done.stdout.split())


def test_the_app_and_its_screens_import_without_bumble() -> None:
    """Importing the app, its screens and the device panel does not pull in bumble (~0.3 s)."""
    loaded = _modules_after("import kiosk.ui.app, kiosk.ui.screens, kiosk.ui.devices")
    assert "kivy" in loaded  # the statement really ran the app's imports
    assert "bumble" not in loaded


def test_the_host_still_brings_bumble_when_devices_are_used() -> None:
    """The lazy path is real: the host module imports bumble and re-exports the records."""
    loaded = _modules_after("from kiosk.devices.host import DeviceEvent, DeviceHost, Pairing")
    assert "bumble" in loaded


def test_collecting_the_device_tests_leaves_bumble_out() -> None:
    """The device tests' modules import the records and the simulated values without bumble.

    Every xdist worker collects them: bumble at module level cost each about 0.55 s. The host
    and the simulator are imported by the fixtures and tests that start them.
    """
    loaded = _modules_after(
        "import tests.kiosk.devices.conftest, tests.kiosk.devices.test_host,"
        " tests.kiosk.devices.test_measure, tests.kiosk.devices.test_pairings,"
        " kiosk.devices.simulated")
    assert "kiosk" in loaded and "pytest" in loaded
    assert "bumble" not in loaded
