"""The kiosk tells systemd it is up and still answering, as deploy/kiosk's unit expects: the
messages on a real notify socket, the real app's READY=1 and WATCHDOG=1 pings, and the unit
itself checked by systemd-analyze."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk import watchdog

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket where systemd would listen."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.5)
    try:
        yield sock
    finally:
        sock.close()


def test_notify_sends_one_datagram(notify_socket: socket.socket, tmp_path: Path) -> None:
    assert watchdog.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "notify")})
    assert notify_socket.recv(256) == b"READY=1"


def test_abstract_socket_names(tmp_path: Path) -> None:
    name = f"onsite-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert watchdog.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(256) == b"WATCHDOG=1"


def test_without_systemd_nothing_is_sent_or_scheduled(tmp_path: Path) -> None:
    assert not watchdog.notify("READY=1", {})
    assert not watchdog.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})
    scheduled: list[object] = []
    assert not watchdog.start(scheduled.append, scheduled.append, {})
    assert scheduled == []


@pytest.mark.parametrize(("usec", "seconds"), [("30000000", 15.0), ("0", None), ("", None),
                                               ("junk", None)])
def test_the_ping_interval_is_half_the_watchdog(usec: str, seconds: float | None) -> None:
    assert watchdog.ping_interval({"WATCHDOG_USEC": usec}) == seconds


@pytest.mark.slow
def test_the_real_kiosk_says_ready_then_pings(notify_socket: socket.socket,
                                              tmp_path: Path) -> None:
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "600000",
           "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1", "KIVY_HOME": str(tmp_path / "k"),
           "KIVY_NO_CONSOLELOG": "1", "KIVY_NO_FILELOG": "1",
           "ONSITE_KIOSK_DATA_DIR": str(tmp_path / "data")}
    exe = Path(sys.executable).with_name("onsite-kiosk")
    proc = subprocess.Popen([str(exe)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and got.count(b"WATCHDOG=1") < 3:
            try:
                got.append(notify_socket.recv(256))
            except TimeoutError:
                assert proc.poll() is None, "the kiosk exited"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert got and got[0].startswith(b"READY=1"), got
    assert got.count(b"WATCHDOG=1") >= 3


@pytest.mark.skipif(shutil.which("systemd-analyze") is None or shutil.which("cage") is None,
                    reason="systemd-analyze and cage (Debian packages) check the unit")
def test_the_kiosk_unit_verifies(tmp_path: Path) -> None:
    text = (REPO / "deploy" / "kiosk" / "onsite-kiosk.service").read_text()
    for setting in ("Type=notify", "NotifyAccess=all", "WatchdogSec=30", "Restart=always",
                    "ExecStart=/usr/bin/cage -d -s -- "):
        assert setting in text
    unit = tmp_path / "onsite-kiosk.service"
    unit.write_text(text.replace("/opt/onsite-wellness/.venv/bin/onsite-kiosk",
                                 str(Path(sys.executable).with_name("onsite-kiosk"))))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, check=False)
    # A user unit verified by the system manager: only its [Install] target is foreign.
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "default.target" not in line]
    assert problems == [], problems
