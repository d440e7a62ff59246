"""Tell systemd the kiosk is up and still answering (sd_notify), from the UI thread's clock.

Under ``deploy/kiosk/onsite-kiosk.service`` (``Type=notify``, ``WatchdogSec=``) systemd hands
the app ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC``. The app says ``READY=1`` once its loop runs
and ``WATCHDOG=1`` every half period from Kivy's clock: a frozen UI stops the pings, and
systemd restarts the kiosk, as it does when the app crashes. The protocol is one datagram
per message to a Unix socket (an ``@`` name is in the abstract namespace), so no library is
needed. ``WATCHDOG_PID`` is not checked: under cage the main process is the compositor, and
the unit's ``NotifyAccess=all`` lets the app, its child, speak for the service.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from typing import Any


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one sd_notify message; False when not run by systemd or the socket is gone."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False  # systemd went away (shutdown): nothing to tell
    return True


def ping_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of WATCHDOG_USEC), or None without a watchdog."""
    raw = (environ if environ is not None else os.environ).get("WATCHDOG_USEC", "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


def start(schedule_once: Callable[..., Any], schedule_interval: Callable[..., Any],
          environ: Mapping[str, str] | None = None) -> bool:
    """Schedule READY=1 on the first frame and the watchdog pings; False when not under systemd."""
    env = dict(environ if environ is not None else os.environ)
    if not env.get("NOTIFY_SOCKET"):
        return False
    schedule_once(lambda _dt: notify("READY=1\nSTATUS=showing the kiosk", env), 0)
    interval = ping_interval(env)
    if interval is not None:
        schedule_interval(lambda _dt: notify("WATCHDOG=1", env), interval)
    return True
