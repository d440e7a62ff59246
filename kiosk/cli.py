"""``onsite-kiosk``: start the kiosk, pair it, or walk the tour of every screen.

    onsite-kiosk                                   # the paired server from the settings
    onsite-kiosk --server URL --pairing-code CODE  # first pairing, then the kiosk
    onsite-kiosk --tour DIR [--server URL --pairing-code CODE] [--read-aloud]
    onsite-kiosk --tour DIR --simulated-devices    # BP and weight from the simulated devices

The app gets its collaborators (settings, backend, admin lock, clock) passed in; this module
builds them. Kivy is imported only after its environment is set (kiosk/ui is the only package
that imports it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .admin import AdminLock
from .backend import Backend, DeferredBackend, Offline, Refused
from .settings import KioskSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onsite-kiosk", description=__doc__.split("\n")[0])
    parser.add_argument("--server", metavar="URL", help="the onsite server, for a first pairing")
    parser.add_argument("--pairing-code", metavar="CODE", help="the code from the dashboard")
    parser.add_argument("--tour", metavar="DIR", type=Path,
                        help="walk every screen in English and Spanish, save screenshots in DIR")
    parser.add_argument("--read-aloud", action="store_true",
                        help="with --tour: also save what the speaker button says on each "
                             "screen, as <lang>-<nn>-<screen>.wav beside its screenshot")
    parser.add_argument("--fullscreen", action="store_true", help="kiosk mode: full screen")
    parser.add_argument("--landscape", action="store_true", help="1920x1080 instead of portrait")
    parser.add_argument("--simulated-devices", action="store_true",
                        help="a simulated Bluetooth cuff and scale (bumble, in process), paired")
    return parser


def build_backend(settings: KioskSettings) -> Backend:
    """The real backend over the outbox, sync worker and API client (kiosk/service.py)."""
    from .service import build_backend as build  # the service owns outbox, sync and client

    backend: Backend = build(settings)
    return backend


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``onsite-kiosk``."""
    args = _parser().parse_args(argv)
    if bool(args.server) != bool(args.pairing_code):
        _parser().error("--server and --pairing-code go together")
    settings = KioskSettings.from_env()
    if args.landscape:
        settings = dataclasses.replace(settings, width=1920, height=1080)
    if args.fullscreen:
        settings = dataclasses.replace(settings, fullscreen=True)
    if args.read_aloud and args.tour is None:
        _parser().error("--read-aloud goes with --tour")
    if args.read_aloud and shutil.which("espeak-ng") is None:
        _parser().error("--read-aloud needs espeak-ng: install the Debian package espeak-ng "
                        "(scripts/bootstrap.sh does)")
    if args.tour is not None:
        sys.exit(tour(args.tour, settings, server=args.server, pairing_code=args.pairing_code,
                      simulated_devices=args.simulated_devices, read_aloud=args.read_aloud))
    run(settings, server=args.server, pairing_code=args.pairing_code,
        simulated_devices=args.simulated_devices)


def build_devices(settings: KioskSettings, *, simulated: bool) -> Any:
    """The Bluetooth cuff and scale (kiosk/ui/devices.py), or None when the kiosk has none.

    Real devices need a controller: ONSITE_KIOSK_BLE_TRANSPORT names it in bumble's terms
    (``usb:0``, ``hci-socket:0``). Simulated devices are paired at once (the demo, the tour).
    """
    if not simulated and not settings.ble_transport:
        return None
    from kiosk.devices.events import Found
    from kiosk.devices.simulator import CUFF_ADDRESS, SCALE_ADDRESS

    from .ui.devices import DeviceBridge, pairing_store

    store = pairing_store(settings.data_dir)
    if not simulated:
        bridge = DeviceBridge.usb(settings.ble_transport, store)
        bridge.start()
        return bridge
    bridge = DeviceBridge.simulated(store)
    bridge.start()
    bridge.pair(Found("blood_pressure", CUFF_ADDRESS, "Onsite Sim Cuff"))
    bridge.pair(Found("weight", SCALE_ADDRESS, "Onsite Sim Scale"))
    return bridge


def run(settings: KioskSettings, *, server: str | None = None,
        pairing_code: str | None = None, simulated_devices: bool = False) -> None:
    """Open the kiosk window (pairing first when a server and code were given)."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    # Built after the first frame (kiosk/ui/app.py): the service imports pydantic and opens
    # the outbox, and the attract screen needs neither. A pairing from the command line
    # needs it now.
    deferred = DeferredBackend(lambda: build_backend(settings), catalog_path=settings.catalog_path,
                               pairing_path=settings.pairing_path)
    if server and pairing_code:
        try:
            deferred.build().pair(server, pairing_code)
        except (Offline, Refused) as exc:
            print(f"onsite-kiosk: pairing with {server} did not work ({exc}); the kiosk opens "
                  "its pairing screen", file=sys.stderr)
    from .ui.driver import configure_window

    configure_window(settings.width, settings.height, synthetic_input_only=False,
                     fullscreen=settings.fullscreen)
    from kivy.clock import Clock

    from . import watchdog
    from .ui.app import KioskApp

    watchdog.start(Clock.schedule_once, Clock.schedule_interval)
    devices = build_devices(settings, simulated=simulated_devices)
    if devices is not None and simulated_devices:
        devices.auto_press = 3.0  # the demo's simulated cuff "measures" by itself
    try:
        KioskApp(backend=deferred.built or deferred, admin=AdminLock(settings.data_dir),
                 language=settings.language, tap_guard=settings.tap_guard_ms / 1000,
                 layout_file=settings.layout_file, devices=devices).run()
    finally:
        if devices is not None:
            devices.stop()
        close = getattr(deferred.built, "close", None)  # None: never built (a failed start)
        if callable(close):
            close()  # the sync worker's thread


def tour(out: Path, settings: KioskSettings, *, server: str | None = None,
         pairing_code: str | None = None, backend: Backend | None = None,
         simulated_devices: bool = False, read_aloud: bool = False) -> int:
    """Walk every screen with demo answers; data in a temporary folder; return the exit code.

    With ``read_aloud``, each screenshot gets a WAV file of what the speaker button says there.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="onsite-kiosk-tour-"))
    try:
        from .ui.driver import headless_environment

        os.environ["SDL_VIDEODRIVER"] = "offscreen"  # the tour never needs a display
        headless_environment(str(data_dir / "kivy"))
        settings = dataclasses.replace(settings, data_dir=data_dir / "kiosk", language="en",
                                       server_url=server or settings.server_url)
        online = False
        if backend is None:
            backend = build_backend(settings)
            if server and pairing_code:
                try:
                    backend.pair(server, pairing_code)
                    online = True
                except (Offline, Refused, OSError) as exc:
                    print(f"tour: no reachable server at {server} ({exc}): taking the offline "
                          "journey", flush=True)
            else:
                print("tour: no server given: taking the offline journey", flush=True)
        else:
            online = backend.status().online
        return _walk(out, settings, backend, online=online, simulated_devices=simulated_devices,
                     read_aloud=read_aloud)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _walk(out: Path, settings: KioskSettings, backend: Backend, *, online: bool,
          simulated_devices: bool = False, read_aloud: bool = False) -> int:
    from .ui.driver import configure_window

    configure_window(settings.width, settings.height, synthetic_input_only=True)
    from .ui.app import KioskApp
    from .ui.driver import Driver
    from .ui.tour import ADMIN_PIN, NoCrisisBackend, Tour

    admin = AdminLock(settings.data_dir)
    admin.set_pin(ADMIN_PIN)
    quiet: Any = NoCrisisBackend(backend)
    devices = build_devices(settings, simulated=simulated_devices)
    app = KioskApp(backend=quiet, admin=admin, language="en", require_setup=False,
                   tap_guard=settings.tap_guard_ms / 1000, devices=devices)
    # The tour keeps screenshots, not frames: it draws the window only to take each one.
    driver = Driver.start(app, draw_between_shots=False)
    try:
        walk = Tour(driver, out, online=online, quiet=quiet, devices=devices,
                    read_aloud=read_aloud)
        taken = walk.run()
    except Exception:  # noqa: BLE001 - any failure of the walk is reported, then exit 1
        # Kivy routes sys.stderr into its (silenced) log: write to the real stream.
        traceback.print_exc(file=sys.__stderr__)
        return 1
    finally:
        app.stop()
        if devices is not None:
            devices.stop()
        if online:
            _drain(backend, seconds=30)
        close = getattr(backend, "close", None)
        if callable(close):
            close()  # the sync worker's thread
    spoken = f" and {len(walk.spoken)} read-aloud WAV files" if read_aloud else ""
    print(f"tour: {len(taken)} screenshots{spoken} in {out} "
          f"({'online' if online else 'offline'} journey; {quiet.dropped} crisis items "
          "kept from the server)", flush=True)
    return 0


def _drain(backend: Backend, *, seconds: float) -> None:
    """Give the sync worker a bounded time to send what the tour queued (its data is temporary)."""
    deadline = time.monotonic() + seconds
    while backend.status().outbox_depth and time.monotonic() < deadline:
        backend.sync_now()
        time.sleep(0.2)


if __name__ == "__main__":
    main()
