"""The tests' fork server (tests/forkserver.py): a forked command is the command, with its own
environment, output, exit code, session and signals, as a new interpreter would be."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onsite_server import devserver
from tests.forkserver import ROOT, Forked, ForkServer


@pytest.fixture
def forks() -> Iterator[ForkServer]:
    """A fork server of this test's own (the session's is shared by every test)."""
    server = ForkServer()
    yield server
    server.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ONSITE_INSTANCE_PATH": str(tmp_path / "instance"),
            "ONSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", **extra}


def test_a_forked_command_has_its_environment_output_and_exit_code(
        forks: ForkServer, tmp_path: Path) -> None:
    env = _env(tmp_path)
    with (tmp_path / "out").open("w+b") as out, (tmp_path / "err").open("w+b") as err:
        proc = forks.spawn(["init-db"], env, out, err, False)
        assert isinstance(proc, Forked)
        assert proc.wait(timeout=120) == 0
    assert (tmp_path / "db.sqlite").stat().st_size > 0  # the command's own database setting
    with (tmp_path / "out").open("w+b") as out, (tmp_path / "err").open("w+b") as err:
        proc = forks.spawn(["create-site", "--employer", "acme", "--employer-name", "Acme",
                            "--slug", "Not a slug!", "--name", "HQ"], env, out, err, False)
        assert proc is not None and proc.wait(timeout=120) != 0
        err.seek(0)
        said = err.read().decode()
    assert "slug" in said.lower(), said  # its error went to its own stderr


def test_a_forked_server_leads_its_session_and_stops_on_a_signal(
        forks: ForkServer, tmp_path: Path) -> None:
    devserver.cli(_env(tmp_path), "init-db")
    port = devserver.free_port()
    with (tmp_path / "server.log").open("ab") as log:
        proc = forks.spawn(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
                            "1", "--no-tls"], _env(tmp_path), log, log, True)
    assert proc is not None
    try:
        assert os.getpgid(proc.pid) == proc.pid == os.getsid(proc.pid)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_what_an_interpreter_reads_at_its_start_gets_an_interpreter_of_its_own(
        forks: ForkServer, tmp_path: Path) -> None:
    for name, value in (("PYTHONPATH", "/elsewhere"), ("TZ", "Asia/Tokyo"),
                        ("LANG", "es_ES.UTF-8")):
        assert forks.spawn(["--help"], _env(tmp_path, **{name: value}), None, None,
                           False) is None, name


def test_the_server_imports_nothing_that_reads_its_environment_at_import() -> None:
    code = ("import sys; from tests.forkserver import _preload; _preload(); "
            "print(sorted(m for m in sys.modules if m.startswith(('prometheus', "
            "'onsite_server.metrics'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_command_past_its_timeout_is_killed_as_subprocess_run_kills_it(
        tmp_path: Path) -> None:
    devserver.cli(_env(tmp_path), "init-db")
    port = devserver.free_port()
    with pytest.raises(subprocess.TimeoutExpired):
        devserver.run(_env(tmp_path), "serve", "--host", "127.0.0.1", "--port", str(port),
                      "--workers", "1", "--no-tls", timeout=4)
    with pytest.raises(OSError):  # the master is gone: nothing listens on its port
        for _ in range(50):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.2)
