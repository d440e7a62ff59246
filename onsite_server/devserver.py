"""Run `onsite-server serve` in a subprocess on a free loopback port (tests and benchmarks)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run an onsite-server CLI command with env; raise if it fails."""
    return subprocess.run([sys.executable, "-m", "onsite_server.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=True)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def running_server(
    env: dict[str, str],
    log_path: Path,
    *,
    workers: int = 2,
    extra_args: Sequence[str] = (),
    start_timeout: float = 60,
) -> Iterator[str]:
    """Migrate, start gunicorn without TLS, wait for /healthz, yield the base URL, then stop.

    The server's output goes to log_path: an unread pipe would fill up and block the workers.
    """
    cli(env, "init-db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "onsite_server.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--no-tls", *extra_args],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + start_timeout
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server did not start: {log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)
