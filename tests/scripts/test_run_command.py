"""The run command (scripts/run.sh) on a fresh copy of the project, with no display.

Its bootstrap makes a fresh virtualenv with only the ``kiosk`` extra (``python3 -m venv`` and
``pip install -e ".[kiosk]"``, downloaded afresh: these machines keep no pip cache), so a
run-time import of a test package (``kivy.tests`` needs pytest) fails here as it would on a
new machine. With no display the command writes the kiosk's tour, and says "failed" when the
tour fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onsite_server.devserver import free_port
from tests.kiosk.ui.runner import journey_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = "Kiosk tour written to"
FAILED = "The kiosk tour failed"


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files as a fresh clone would have them: no .venv, no instance, no caches."""
    copy = tmp_path_factory.mktemp("fresh") / "onsite"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the work tree is still listed as cached
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def _env(**extra: str) -> dict[str, str]:
    # Nothing of this test run may leak in: no display, no venv, no ONSITE_* settings.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ONSITE_", "PYTEST_", "KIVY_", "SDL_", "VIRTUAL_ENV"))
           and k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":")
                           if not p.startswith(str(ROOT)))
    env.update(ONSITE_PORT=str(free_port()), CENTRAL_PORT=str(free_port()), **extra)
    return env


def _run_until_tour(copy: Path, log: Path, **extra: str) -> str:
    """Start run.sh, wait for its word on the tour, stop everything; return what it printed."""
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=copy, env=_env(**extra),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 900  # a cold pip cache on a busy machine
        while time.monotonic() < deadline:
            said = log.read_text(errors="replace")
            if WRITTEN in said or FAILED in said or proc.poll() is not None:
                time.sleep(0.5)  # let a line that follows arrive too
                return log.read_text(errors="replace")
            time.sleep(1)
        raise AssertionError("run.sh never said how the tour went:\n" + said[-4000:])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C: its trap stops the servers
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def first_run(fresh_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The first run.sh on the fresh copy (it builds the copy's .venv)."""
    log = tmp_path_factory.mktemp("run") / "run.log"
    # The kiosk's own setting, with the journeys' shorter tap guard and lighter drawing: the
    # tour waits out the guard before each tap (tests/kiosk/ui/runner.py). pip does not
    # byte-compile the ~5,000 modules it installs (PIP_COMPILE=0 is --no-compile: 25 s of CPU
    # against 10 s here); each process compiles what it imports, once, as on first use.
    yield _run_until_tour(fresh_copy, log, ONSITE_KIOSK_WIDTH="540", ONSITE_KIOSK_HEIGHT="960",
                          PIP_COMPILE="0", **journey_env())


def test_the_fresh_venv_holds_only_the_kiosk_extra(fresh_copy: Path, first_run: str) -> None:
    python = fresh_copy / ".venv" / "bin" / "python"
    assert python.exists(), first_run[-3000:]
    assert subprocess.run([str(python), "-c", "import kivy"], check=False).returncode == 0
    # What the test extras bring must be absent, or this run proves nothing.
    lacks = subprocess.run([str(python), "-c", "import pytest"], capture_output=True,
                           check=False)
    assert lacks.returncode != 0


def test_run_sh_writes_the_tour_in_a_fresh_venv(fresh_copy: Path, first_run: str) -> None:
    assert WRITTEN in first_run, first_run[-4000:]
    assert FAILED not in first_run
    assert "online journey" in first_run  # paired with the demo server it started
    tour = fresh_copy / "instance" / "kiosk-tour"
    for language in ("en", "es"):
        shown = {p.name.split("-", 2)[2].removesuffix(".png")
                 for p in tour.glob(f"{language}-*.png")}
        assert {"attract", "privacy", "identify", "menu", "question", "results", "referral",
                "booking", "qr", "done", "admin"} <= shown, sorted(shown)


def test_run_sh_says_failed_when_the_tour_fails(fresh_copy: Path, first_run: str,
                                                  tmp_path: Path) -> None:
    # A window size the kiosk cannot read: the tour stops at once with an error.
    said = _run_until_tour(fresh_copy, tmp_path / "run.log", ONSITE_KIOSK_WIDTH="wide")
    assert FAILED in said, said[-4000:]
    assert WRITTEN not in said
