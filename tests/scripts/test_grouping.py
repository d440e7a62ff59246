"""The test command's scheduling (``--dist loadgroup``, tests/conftest.py) keeps a module whose
tests share a module-scoped fixture on one worker, so the fixture is built once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS = "tests/scripts/test_grouping.py"
# Set only for the inner run below: the file that its shared fixture writes a line to each
# time it is built.
INNER_VAR = "TEST_GROUPING_INNER_BUILDS"
inner_only = pytest.mark.skipif(not os.environ.get(INNER_VAR), reason="only inside the check")


@pytest.fixture(scope="module")
def shared() -> Iterator[int]:
    """Stands for a costly module fixture (a fresh virtualenv, a live server)."""
    with open(os.environ[INNER_VAR], "a") as built:
        built.write(f"{os.getpid()}\n")
    yield os.getpid()


@inner_only
@pytest.mark.parametrize("n", range(6))
def test_inner_uses_the_shared_fixture(shared: int, n: int) -> None:
    assert shared == os.getpid()


@pytest.mark.skipif(bool(os.environ.get(INNER_VAR)), reason="not inside itself")
def test_a_module_with_a_shared_fixture_builds_it_once_on_two_workers(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    builds.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env[INNER_VAR] = str(builds)
    done = subprocess.run([sys.executable, "-m", "pytest", THIS, "-n", "2", "--dist",
                           "loadgroup", "-p", "no:cacheprovider", "-q"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "6 passed" in done.stdout, done.stdout[-3000:]
    assert len(builds.read_text().splitlines()) == 1, builds.read_text()
