"""Run `onsite-server serve` in a subprocess on a free loopback port (tests and benchmarks).

Every command goes through ``spawn``: a new ``python -m onsite_server.cli`` process, or, where
the tests set a launcher (``set_launcher``), a fork of a process that has imported the server
already (tests/forkserver.py): the same command with the same environment, output and exit
code, without paying the imports again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol


class Process(Protocol):
    """What a started command is to its caller: ``subprocess.Popen``'s part that is used."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code (``subprocess.TimeoutExpired`` after timeout seconds)."""

    def terminate(self) -> None:
        """Send SIGTERM."""


class Launcher(Protocol):
    """Starts an onsite-server command some other way than a new interpreter (tests)."""

    def spawn(self, args: Sequence[str], env: dict[str, str], stdout: IO[Any] | None,
              stderr: IO[Any] | None, new_session: bool) -> Process | None:
        """Start the command with its output to these files; None when it cannot."""


_launcher: Launcher | None = None


def set_launcher(launcher: Launcher | None) -> None:
    """Start this process's commands through launcher (None: a new interpreter each)."""
    global _launcher
    _launcher = launcher


def spawn(args: Sequence[str], env: dict[str, str], *, stdout: IO[Any] | None = None,
          stderr: IO[Any] | None = None, new_session: bool = False) -> Process:
    """Start ``onsite-server ARGS`` with env; its output to the given open files."""
    if _launcher is not None:
        started = _launcher.spawn(args, env, stdout, stderr, new_session)
        if started is not None:
            return started
    return subprocess.Popen([sys.executable, "-m", "onsite_server.cli", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            start_new_session=new_session)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(env: dict[str, str], *args: str, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    """Run an onsite-server CLI command with env; its output and exit code (not checked)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = spawn(args, env, stdout=out, stderr=err)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # As subprocess.run does: the command (not in a group of its own) is killed.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
            raise
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            ["onsite-server", *args], code, out.read().decode(errors="replace"),
            err.read().decode(errors="replace"))


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run an onsite-server CLI command with env; raise if it fails."""
    done = run(env, *args, timeout=timeout)
    done.check_returncode()
    return done


@functools.cache
def _head() -> str | None:
    from .migrate import head_revision

    return head_revision()


def _at_head(env: dict[str, str]) -> bool:
    """Tell whether env's database is migrated to the newest revision already.

    Then ``init-db`` would change nothing, and its process (about 1.5 s of CPU: the app, Alembic
    and every model imported) is not started: the tests' and drills' databases are copies of a
    migrated template, and a drill restarts its server on the same database. Without a database
    URL (the instance folder's default), or when the database cannot be read, ``init-db`` runs.
    """
    url = env.get("ONSITE_DATABASE_URL")
    if not url:
        return False
    from .db import Database
    from .migrate import current_revision

    database = Database()
    try:
        database.configure(url, group_commit=False)
        return current_revision(database) == _head()
    except Exception:  # noqa: BLE001 - anything unusual: let init-db say what it is
        return False
    finally:
        database.dispose()


def _answers(url: str, *, healthy: bool) -> bool:
    """Tell whether /healthz answers (with 200 when healthy is asked for)."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        exc.close()
        # An honest 503 (read-only database, full disk) still means the server is up.
        return not healthy
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_server(
    env: dict[str, str],
    log_path: Path,
    *,
    workers: int = 2,
    extra_args: Sequence[str] = (),
    start_timeout: float = 60,
    migrate: bool = True,
    healthy: bool = True,
) -> tuple[Process, str]:
    """Start gunicorn without TLS in its own process group; return it and its base URL.

    With migrate, a database not yet at the newest revision is migrated first (``init-db``).
    It waits until /healthz answers 200 (or answers at all, with healthy=False). The output
    goes to log_path: an unread pipe would fill up and block the workers. The process group
    lets a drill kill the master and its workers at once (kill_server).
    """
    if migrate and not _at_head(env):
        cli(env, "init-db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        proc = spawn(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
                      str(workers), "--no-tls", *extra_args], env, stdout=log, stderr=log,
                     new_session=True)
    try:
        deadline = time.monotonic() + start_timeout
        while not _answers(url, healthy=healthy):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"server did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


def stop_server(proc: Process) -> None:
    """Stop a server started by start_server, politely, then by force."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        kill_server(proc)


def kill_server(proc: Process) -> None:
    """kill -9 the server's master and workers at once, as a power cut would stop them."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=20)


@contextmanager
def running_server(
    env: dict[str, str],
    log_path: Path,
    *,
    workers: int = 2,
    extra_args: Sequence[str] = (),
    start_timeout: float = 60,
) -> Iterator[str]:
    """Migrate, start gunicorn without TLS, wait for /healthz, yield the base URL, then stop."""
    proc, url = start_server(env, log_path, workers=workers, extra_args=extra_args,
                             start_timeout=start_timeout)
    try:
        yield url
    finally:
        stop_server(proc)
