"""A kiosk BLE host on bumble with the simulated cuff and scale, shared by a module's tests."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from kiosk.devices.events import DeviceEvent, Pairing
from kiosk.devices.simulated import CUFF_ADDRESS, SCALE_ADDRESS

if TYPE_CHECKING:
    # bumble: imported by the fixture that starts a host, not at every worker's collection.
    from kiosk.devices.host import DeviceHost
    from kiosk.devices.simulator import Simulator

WAIT = 20.0  # seconds: a bound on a wait that should end at once, not a timing assertion


class Events:
    """The host's events in arrival order, with waits for the one a test expects."""

    def __init__(self) -> None:
        self.queue: queue.Queue[DeviceEvent] = queue.Queue()

    def put(self, event: DeviceEvent) -> None:
        """The host's callback (runs on the host's thread)."""
        self.queue.put(event)

    def next(self, what: str, kind: str | None = None) -> DeviceEvent:
        """The next event of ``what`` (and ``kind``), skipping others."""
        while True:
            event = self.queue.get(timeout=WAIT)
            if event.what == what and (kind is None or event.kind == kind):
                return event

    def drain(self) -> None:
        """Forget events so far."""
        while not self.queue.empty():
            self.queue.get_nowait()


class Bench:
    """The host, its simulator and its events."""

    def __init__(self, host: DeviceHost, events: Events) -> None:
        self.host = host
        self.events = events
        assert host.simulator is not None
        self.simulator: Simulator = host.simulator

    def send(self, kind: str, value: bytes) -> None:
        """Have the simulated device of ``kind`` indicate ``value`` (waits for the confirm)."""
        self.host.call(self.simulator.device(kind).indicate(value)).result(WAIT)


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    """A started host watching the simulated cuff and scale, both connected."""
    from kiosk.devices.host import DeviceHost

    events = Events()
    host = DeviceHost(events.put, simulated=True)
    host.start()
    try:
        host.watch(Pairing("blood_pressure", CUFF_ADDRESS, "Onsite Sim Cuff"))
        host.watch(Pairing("weight", SCALE_ADDRESS, "Onsite Sim Scale"))
        assert host.simulator is not None
        for kind in ("blood_pressure", "weight"):
            host.call(host.simulator.wait_subscribed(kind, WAIT)).result(WAIT + 1)
        yield Bench(host, events)
    finally:
        host.stop()
