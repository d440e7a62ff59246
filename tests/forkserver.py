"""A fork server for the onsite-server commands the tests start: the imports paid once a worker.

Every ``onsite-server serve`` and CLI command a test started through
``onsite_server.devserver`` was a new interpreter that imported Flask, SQLAlchemy, pydantic, the
models and gunicorn again: about 1 s of CPU each, over a hundred a whole run (docs/BENCHMARKS.md,
"Session 17"). This server, one per pytest process, imports them once; for each command it forks
a child that takes the command's environment, output files (passed over the socket) and session,
and runs ``onsite_server.cli.main`` as the console script does. The child ends through the
interpreter's own shutdown (atexit handlers run), and the server reports its exit code.
gunicorn's master is that child, and its workers are the master's forks, as in production.

Not imported in the server: what reads the environment when imported. prometheus_client chooses
its multi-process mode at import (``PROMETHEUS_MULTIPROC_DIR``, which ``serve`` sets before it
imports ``onsite_server.metrics``). A command whose ``PYTHON*``, locale or ``TZ`` variables differ
from the server's own is started as a new interpreter instead (``spawn`` answers None): those
are read when an interpreter starts.

    python -m tests.forkserver SOCKET_PATH      (started by ForkServer; not by hand)
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
# Read by the interpreter (or the C library) when it starts, not when a command runs.
_AT_START = ("PYTHON", "LC_", "LANG", "TZ")


def _at_start(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_AT_START)}


# --- the server ------------------------------------------------------------------------------


class _Child(Exception):  # noqa: N818 - not an error: how a fork leaves the server's loop
    """Raised in a fresh fork: run this request's command, outside the server's loop."""

    def __init__(self, request: dict[str, Any], fds: list[int], conn: socket.socket) -> None:
        super().__init__()
        self.request = request
        self.fds = fds
        self.conn = conn


def _preload() -> None:
    """Import what every command and ``serve`` import, but nothing that reads the environment."""
    import gunicorn.app.base  # noqa: F401
    import gunicorn.arbiter  # noqa: F401
    import gunicorn.workers.gthread  # noqa: F401

    import onsite_server.cli  # noqa: F401
    import onsite_server.cli_serve  # noqa: F401
    import onsite_server.migrate  # noqa: F401
    from onsite_server import (  # noqa: F401
        accesslog,
        advocate,
        api,
        dashboard,
        health,
        jsonguard,
        logs,
        openapi,
        security,
        wellknown,
    )

    assert "prometheus_client" not in sys.modules, "prometheus_client reads its env at import"


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One request: a JSON line, with the command's output files as passed descriptors."""
    data = b""
    fds: list[int] = []
    while not data.endswith(b"\n"):
        chunk, got, _flags, _addr = socket.recv_fds(conn, 65536, 4)
        if not chunk:
            raise ConnectionError("the client went away")
        data += chunk
        fds += got
    return json.loads(data), fds


def _serve(path: str) -> None:
    """Accept requests until the pytest process that started this one is gone."""
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    running: dict[int, socket.socket] = {}
    print("ready", flush=True)
    # Nobody reads this pipe after "ready": anything more would fill it and block.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)

    def become_child(request: dict[str, Any], fds: list[int], conn: socket.socket) -> _Child:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        selector.close()
        listener.close()
        os.close(wake_r)
        os.close(wake_w)
        for other in running.values():
            other.close()
        return _Child(request, fds, conn)

    while os.getppid() == parent:
        for key, _ in selector.select(timeout=1.0):
            if key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
                continue
            conn, _ = listener.accept()
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError):
                conn.close()
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                raise become_child(request, fds, conn)
            for fd in fds:
                os.close(fd)
            # The child says its pid itself, once it leads its own session: a caller may
            # signal its process group as soon as it knows the pid (as after Popen).
            running[pid] = conn
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = running.pop(pid)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)})
                             .encode() + b"\n")
            conn.close()


def _run_child(request: dict[str, Any], fds: list[int], conn: socket.socket) -> None:
    """In the fork: become the command (its session, files, environment, folder) and run it."""
    if request["new_session"]:
        os.setsid()
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    conn.close()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    out = fds[0] if request["stdout"] else os.open(os.devnull, os.O_WRONLY)
    err = fds[-1] if request["stderr"] else out
    os.dup2(out, 1)
    os.dup2(err, 2)
    for fd in {out, err, *fds}:
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = ["onsite-server", *request["args"]]
    from onsite_server.cli import main

    main(args=request["args"], prog_name="onsite-server")


def _main(path: str) -> None:
    _preload()
    try:
        _serve(path)
    except _Child as child:
        _run_child(child.request, child.fds, child.conn)


# --- the client ------------------------------------------------------------------------------


class Forked:
    """A command running as a fork of the server: ``subprocess.Popen``'s part devserver uses."""

    def __init__(self, conn: socket.socket, pid: int, args: Sequence[str]) -> None:
        self.conn = conn
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None
        self._buffer = b""

    def _read(self, timeout: float | None) -> None:
        """Read the exit code the server sends when the command ends (wait up to timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if self._buffer.endswith(b"\n"):
                self.returncode = int(json.loads(self._buffer)["returncode"])
                self.conn.close()
                return
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.conn.settimeout(left)
            try:
                chunk = self.conn.recv(4096)
            except (TimeoutError, BlockingIOError):
                return
            if not chunk:
                self.conn.close()
                raise RuntimeError(f"the fork server went away while {self.args} ran")
            self._buffer += chunk

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        if self.returncode is None:
            self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code (``subprocess.TimeoutExpired`` after timeout seconds)."""
        self._read(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def terminate(self) -> None:
        """Send SIGTERM to the command (not its process group), if it still runs."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)


class ForkServer:
    """The pytest process's side: starts the server at the first command, stops it at exit."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._folder: str | None = None
        self._path = ""
        self._env: dict[str, str] = {}
        self._lock = threading.Lock()

    def _start(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="onsite-forkserver-")
        self._path = os.path.join(self._folder, "socket")
        self._env = dict(os.environ)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", self._path], cwd=ROOT, env=self._env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        with self._proc.stdout:
            if self._proc.stdout.readline().strip() != b"ready":
                raise RuntimeError("the fork server did not start")

    def spawn(self, args: Sequence[str], env: dict[str, str], stdout: IO[Any] | None,
              stderr: IO[Any] | None, new_session: bool) -> Forked | None:
        """Start ``onsite-server ARGS`` as a fork; None when it needs an interpreter of its own."""
        with self._lock:
            if self._proc is None:
                self._start()
        assert self._proc is not None
        if self._proc.poll() is not None:
            return None
        if _at_start(env) != _at_start(self._env):
            return None
        files = [f for f in (stdout, stderr) if f is not None]
        for f in files:
            f.flush()
        request = {"args": list(args), "env": env, "cwd": os.getcwd(),
                   "stdout": stdout is not None, "stderr": stderr is not None,
                   "new_session": new_session}
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self._path)
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [f.fileno() for f in files])
        answer = b""
        while b"\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                raise RuntimeError(f"the fork server did not start {list(args)}")
            answer += chunk
        line, _, rest = answer.partition(b"\n")
        said = json.loads(line)
        if "pid" not in said:  # it ended before it could say its pid
            conn.close()
            raise RuntimeError(f"{list(args)} ended at its start: {said}")
        forked = Forked(conn, int(said["pid"]), ["onsite-server", *args])
        forked._buffer = rest
        return forked

    def close(self) -> None:
        """Stop the server (commands it started run on; their exit codes are not read)."""
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
            self._proc = None
        if self._folder is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
                os.rmdir(self._folder)
            self._folder = None


if __name__ == "__main__":
    _main(sys.argv[1])
