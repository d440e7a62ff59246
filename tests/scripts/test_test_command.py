"""The test command (scripts/test.sh) stops its PostgreSQL and removes its folder, however
pytest ends, and keeps pytest's exit code."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "test.sh"
# Set only for the inner run of the test command, which then selects the sleeper below: the
# file it names is made once the sleeper runs.
SLEEPER_VAR = "TEST_COMMAND_INNER_SLEEPER"
THIS = "tests/scripts/test_test_command.py"

pytestmark = pytest.mark.skipif(
    not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")),
    reason="PostgreSQL server binaries are not installed",
)


@pytest.mark.skipif(not os.environ.get(SLEEPER_VAR), reason="only inside the test command")
def test_inner_sleeper() -> None:
    """Keeps the inner pytest busy until it is interrupted."""
    Path(os.environ[SLEEPER_VAR]).touch()
    time.sleep(120)


def _env(**extra: str) -> dict[str, str]:
    # The inner run starts its own cluster; nothing of this run's may leak into it. One xdist
    # worker (still a worker process under pytest's, as in a whole run): the inner runs
    # collect one module, and each of the default four workers cost about 0.9 s of CPU to
    # start and collect it.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ONSITE_", "PYTEST_", SLEEPER_VAR))}
    env["ONSITE_TEST_WORKERS"] = "1"
    env.update(extra)
    return env


def _start(log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    # A session of its own, like a terminal's job: a signal to its group reaches the script
    # and pytest alike, as a Ctrl-C does.
    with log.open("wb") as out:
        return subprocess.Popen(["bash", str(SCRIPT), *args], cwd=ROOT, env=_env(**env),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _cluster(log: Path) -> tuple[int, Path]:
    found = re.search(r"throwaway PostgreSQL on port (\d+) in (\S+)", log.read_text())
    assert found, log.read_text()[-3000:]
    return int(found.group(1)), Path(found.group(2))


def _wait_for(log: Path, marker: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "the inner pytest did not start in time"
        time.sleep(0.2)


def _assert_cleaned_up(port: int, folder: Path) -> None:
    assert not folder.exists(), f"{folder} was left behind"
    with socket.socket() as sock:
        sock.settimeout(2)
        assert sock.connect_ex(("127.0.0.1", port)) != 0, f"PostgreSQL still on port {port}"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(folder) not in ps.stdout


@pytest.mark.slow
def test_exit_code_is_kept_and_the_cluster_removed(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    # Exit code 5 (nothing collected) must come through unchanged; .ci/run relies on it.
    proc = _start(log, "tests/shared/test_partial.py", "-q", "-k", "no_test_has_this_name")
    assert proc.wait(timeout=600) == 5, log.read_text()[-3000:]
    _assert_cleaned_up(*_cluster(log))


@pytest.mark.slow
def test_a_killed_run_leaves_no_cluster(tmp_path: Path) -> None:
    """SIGKILL to the whole run (a time limit, the OOM killer) runs no trap: the cluster and
    its folder still go, soon after."""
    log = tmp_path / "run.log"
    marker = tmp_path / "sleeping"
    proc = _start(log, THIS, "-q", "-k", "test_inner_sleeper", **{SLEEPER_VAR: str(marker)})
    try:
        _wait_for(log, marker, proc, timeout=600)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    port, folder = _cluster(log)
    deadline = time.monotonic() + 60
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    _assert_cleaned_up(port, folder)


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c-to-group", "sigterm-to-script"])
def test_interrupted_run_cleans_up(tmp_path: Path, to_group: bool) -> None:
    log = tmp_path / "run.log"
    marker = tmp_path / "sleeping"
    proc = _start(log, THIS, "-q", "-k", "test_inner_sleeper", **{SLEEPER_VAR: str(marker)})
    try:
        _wait_for(log, marker, proc, timeout=600)
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        returncode = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The script dies of the signal it got, so that a calling shell stops as well.
    assert returncode == -(signal.SIGINT if to_group else signal.SIGTERM), log.read_text()[-3000:]
    _assert_cleaned_up(*_cluster(log))
