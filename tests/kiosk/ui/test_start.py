"""The kiosk's cold start (issue 20, P3): the first frame needs Kivy, the attract screen and the
cached branding only; pydantic, the schemas, the visit and the backend come after it.

Each check runs in a fresh interpreter: what a process has imported is what it paid for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.sync import CatalogCache
from tests.kiosk.ui.fakes import fake_catalog

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / "kiosk"
ENV = dict(os.environ, PYTHONPATH=str(ROOT), KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1",
           SDL_VIDEODRIVER="offscreen")


def test_the_app_and_the_attract_screen_import_without_pydantic() -> None:
    """Importing the app and the attract screen's module loads no pydantic, no schemas and
    no visit (before issue 20 P3, ``kiosk.backend`` imported the schemas for its types)."""
    listing = "print(' '.join(sorted(sys.modules)))"
    code = f"import kiosk.ui.app, kiosk.ui.screens.entry, kiosk.cli\nimport sys\n{listing}"
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                          text=True, check=True, timeout=120, cwd=ROOT)
    loaded = set(done.stdout.split())
    assert "kivy" in loaded and "kiosk.ui.screens.entry" in loaded  # the imports really ran
    heavy = sorted(m for m in loaded if m.split(".")[0] == "pydantic"
                   or m.startswith(("shared.schemas", "kiosk.visit", "kiosk.service")))
    assert heavy == []


def _data(tmp_path: Path, *, catalog: dict[str, object] | None, paired: bool) -> Path:
    """A kiosk data folder as the real backend leaves it."""
    data = tmp_path / "data"
    data.mkdir()
    if catalog is not None:
        CatalogCache(data / "catalog.json").store('"v1"', catalog)
    if paired:
        (data / "pairing.json").write_text(json.dumps({"server_url": "https://x"}),
                                           encoding="utf-8")
    return data


def _run(name: str, data: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "tests.kiosk.ui.start_journeys", name,
                           str(ARTIFACTS), str(data)], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=240, check=False)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.ui
@pytest.mark.parametrize("name", ["deferred_first_frame", "tap_before_ready"])
def test_the_first_frame_comes_before_the_backend(name: str, tmp_path: Path) -> None:
    """The first frame shows the cached site name with nothing of pydantic loaded; the backend
    follows by itself, or at once for a tap that comes first (which then acts)."""
    body = fake_catalog().model_dump(mode="json")
    body["settings"]["timeouts"]["idle_seconds"] = 61  # to tell the cached catalog's apply
    _run(name, _data(tmp_path, catalog=body, paired=True))


@pytest.mark.ui
@pytest.mark.parametrize(("name", "paired"), [("no_catalog", False),
                                              ("pairing_refused_after_start", True),
                                              ("not_paired", False)])
def test_a_kiosk_without_a_catalog_or_pairing_starts_as_before(name: str, paired: bool,
                                                               tmp_path: Path) -> None:
    """No catalog: no site name. Not paired: setup, decided before the first frame; a pairing
    file the backend does not accept: setup, once the backend says so."""
    _run(name, _data(tmp_path, catalog=None, paired=paired))


@pytest.mark.ui
def test_a_catalog_that_does_not_validate_still_stops_the_start_naming_the_field(
        tmp_path: Path) -> None:
    """The branding is read without validation for the first frame; the validation after it
    still refuses the catalog, with pydantic's error naming the field."""
    body = fake_catalog().model_dump(mode="json")
    del body["settings"]["branding"]["name"]
    out = _run("broken_catalog", _data(tmp_path, catalog=body, paired=True))
    assert "validation error" in out
