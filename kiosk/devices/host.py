"""The kiosk's Bluetooth LE central, on bumble, for real and simulated devices alike.

A ``DeviceHost`` runs bumble on an asyncio loop in its own thread (Kivy owns the main thread).
For each paired device it keeps a connection: connect, discover the measurement service and
Device Information, read the manufacturer, model and serial, subscribe to the measurement's
indications, and when the link drops (a cuff sleeps between measurements, a scale walks out of
range) connect again with jittered backoff. Every indication is parsed by ``shared.devices``
and handed to ``on_event`` as a ``DeviceEvent``, on the host's thread: a Kivy caller wraps the
callback in ``Clock.schedule_once``.

The controller is the only difference between real and simulated devices: a USB dongle or
an HCI socket (``bumble.transport.open_transport``, e.g. ``usb:0`` or ``hci-socket:0``), or the
simulator's in-process link. Everything above it is the same code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from bumble.core import AdvertisingData, BaseBumbleError
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.hci import Address
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from kiosk.devices.events import DeviceEvent, Found, Pairing
from kiosk.devices.gatt_ids import (
    DEVICE_INFORMATION_SERVICE,
    INFO_UUIDS,
    MEASUREMENT_OF,
    SERVICE_OF,
    WEIGHT_SCALE_FEATURE,
)
from kiosk.devices.simulator import Simulator
from shared.backoff import full_jitter
from shared.devices import (
    BloodPressureReading,
    DeviceInfo,
    DeviceValueError,
    WeightReading,
    WeightScaleFeature,
    parse_blood_pressure,
    parse_info_string,
    parse_weight,
    parse_weight_feature,
)

__all__ = ["DeviceEvent", "DeviceHost", "Found", "Pairing"]

log = logging.getLogger(__name__)
T = TypeVar("T")

KIOSK_ADDRESS = "C0:FF:EE:00:00:FE"
CONNECT_TIMEOUT = 10.0
# Reconnects: quick after a clean drop (a cuff disconnects after every reading), backing off
# while a device stays away, never longer than this.
RECONNECT_BASE = 0.2
RECONNECT_CAP = 5.0


class DeviceHost:
    """A bumble central in a background thread that keeps paired devices connected."""

    def __init__(self, on_event: Callable[[DeviceEvent], None], transport: str | None = None,
                 simulated: bool = False) -> None:
        if simulated == (transport is not None):
            raise ValueError("give a transport (e.g. usb:0) or simulated=True, not both")
        self.on_event = on_event
        self.transport_name = transport
        self.simulated = simulated
        self.simulator: Simulator | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._device: Device | None = None
        self._transport: Any = None
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._connect_lock: asyncio.Lock | None = None

    # -- the thread ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Start the loop thread, power the controller on (and the simulator, if simulated)."""
        self._thread = threading.Thread(target=self._loop.run_forever, name="ble-host",
                                        daemon=True)
        self._thread.start()
        self.call(self._setup()).result(timeout)

    def call(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the host's loop from any thread; the caller may wait on the future."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching, close the transport and end the thread."""
        if self._thread is None:
            return
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self.call(self._teardown()).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None
        # bumble leaves a few tasks of its own (timers of closed connections): end them now
        # that the loop no longer runs, and close the loop. On a thread of its own, because
        # the caller's thread may have an event loop of its own running (asyncio refuses to
        # run a second loop there).
        closer = threading.Thread(target=self._close_loop, name="ble-host-close", daemon=True)
        closer.start()
        closer.join(timeout)

    def _close_loop(self) -> None:
        leftover = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            self._loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _setup(self) -> None:
        self._connect_lock = asyncio.Lock()
        if self.simulated:
            self.simulator = Simulator()
            await self.simulator.start()
            controller = self.simulator.central_controller()
            self._device = Device(name="Onsite kiosk", address=Address(KIOSK_ADDRESS),
                                  host=Host(controller, AsyncPipeSink(controller)))
        else:
            from bumble.transport import open_transport

            assert self.transport_name is not None
            self._transport = await open_transport(self.transport_name)
            self._device = Device.with_hci("Onsite kiosk", Address(KIOSK_ADDRESS),
                                           self._transport.source, self._transport.sink)
        await self._device.power_on()

    async def _teardown(self) -> None:
        for task in list(self._watches.values()):
            task.cancel()
        for task in list(self._watches.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watches.clear()
        if self._device is not None:
            for connection in list(self._device.connections.values()):
                with contextlib.suppress(BaseBumbleError, TimeoutError):
                    await connection.disconnect()
        if self.simulator is not None:
            await self.simulator.stop()
        if self._transport is not None:
            await self._transport.close()

    def _emit(self, event: DeviceEvent) -> None:
        try:
            self.on_event(event)
        except Exception:  # a broken listener must not end the host's loop
            log.exception("device event listener failed on %s", event)

    # -- admin mode: scan ------------------------------------------------------------------

    async def scan(self, seconds: float = 5.0) -> list[Found]:
        """Cuffs and scales advertising their service within ``seconds``, one per address."""
        assert self._device is not None and self._connect_lock is not None
        found: dict[str, Found] = {}

        def on_advertisement(advertisement: Advertisement) -> None:
            uuids = (advertisement.data.get(
                AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS) or []) + (
                advertisement.data.get(
                    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS) or [])
            name = advertisement.data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or ""
            for kind, service in SERVICE_OF.items():
                if service in uuids:
                    address = str(advertisement.address)
                    found.setdefault(address, Found(kind, address, str(name)))

        async with self._connect_lock:
            self._device.on("advertisement", on_advertisement)
            try:
                await self._device.start_scanning(filter_duplicates=True)
                await asyncio.sleep(seconds)
                await self._device.stop_scanning()
            finally:
                self._device.remove_listener("advertisement", on_advertisement)
        return sorted(found.values(), key=lambda item: (item.kind, item.address))

    # -- keeping paired devices connected ---------------------------------------------------

    def watch(self, pairing: Pairing) -> None:
        """Keep ``pairing`` connected and subscribed until ``unwatch`` (from any thread)."""
        self._loop.call_soon_threadsafe(self._start_watch, pairing)

    def unwatch(self, address: str) -> None:
        """Stop keeping ``address`` connected."""
        def cancel() -> None:
            task = self._watches.pop(address, None)
            if task is not None:
                task.cancel()
        self._loop.call_soon_threadsafe(cancel)

    def _start_watch(self, pairing: Pairing) -> None:
        if pairing.address in self._watches:
            return
        self._watches[pairing.address] = self._loop.create_task(self._watch(pairing))

    async def _watch(self, pairing: Pairing) -> None:
        failures = 0
        while True:
            try:
                await self._session(pairing)
                failures = 0
            except (BaseBumbleError, TimeoutError, DeviceValueError) as exc:
                failures += 1
                log.info("%s %s: %s", pairing.kind, pairing.address, exc)
            await asyncio.sleep(full_jitter(failures, RECONNECT_BASE, RECONNECT_CAP))

    async def _session(self, pairing: Pairing) -> None:
        """One connection: connect, read who the device is, subscribe, wait for the drop."""
        assert self._device is not None and self._connect_lock is not None
        async with self._connect_lock:  # bumble allows one pending LE connection at a time
            connection = await self._device.connect(Address(pairing.address),
                                                    timeout=CONNECT_TIMEOUT)
        dropped = asyncio.Event()
        connection.on(Connection.EVENT_DISCONNECTION, lambda *_: dropped.set())
        try:
            info, feature, measurement = await self._discover(connection, pairing)
            if measurement is None:
                self._emit(DeviceEvent(pairing.kind, "refused", pairing.address, info,
                                       field="service", message="the device has no "
                                       f"{MEASUREMENT_OF[pairing.kind].name} characteristic"))
                await connection.disconnect()
                return

            def on_value(value: bytes) -> None:
                self._on_value(pairing, info, feature, bytes(value), time.perf_counter())

            await measurement.subscribe(on_value, prefer_notify=False)
            self._emit(DeviceEvent(pairing.kind, "connected", pairing.address, info))
            await dropped.wait()
        finally:
            if not dropped.is_set():
                with contextlib.suppress(BaseBumbleError, TimeoutError):
                    await connection.disconnect()
            self._emit(DeviceEvent(pairing.kind, "disconnected", pairing.address))

    async def _discover(self, connection: Connection, pairing: Pairing) -> tuple[
            DeviceInfo, WeightScaleFeature | None, Any]:
        peer = Peer(connection)
        await peer.discover_services([SERVICE_OF[pairing.kind], DEVICE_INFORMATION_SERVICE])
        for service in peer.services:
            await service.discover_characteristics()
        strings: dict[str, str] = {}
        for name, uuid in INFO_UUIDS.items():
            found = peer.get_characteristics_by_uuid(uuid)
            if found:
                strings[name] = parse_info_string(await found[0].read_value(), name)
        info = DeviceInfo(kind=pairing.kind, address=pairing.address, **strings)
        feature = None
        if pairing.kind == "weight":
            features = peer.get_characteristics_by_uuid(WEIGHT_SCALE_FEATURE)
            if features:
                feature = parse_weight_feature(await features[0].read_value())
        measurements = peer.get_characteristics_by_uuid(MEASUREMENT_OF[pairing.kind])
        return info, feature, measurements[0] if measurements else None

    def _on_value(self, pairing: Pairing, info: DeviceInfo, feature: WeightScaleFeature | None,
                  value: bytes, received: float) -> None:
        try:
            reading: BloodPressureReading | WeightReading = (
                parse_blood_pressure(value) if pairing.kind == "blood_pressure"
                else parse_weight(value))
        except DeviceValueError as exc:
            # The field and why, not the bytes: a reading is health data and stays out of logs.
            log.warning("%s %s sent a value that was refused: %s", pairing.kind,
                        pairing.address, exc.field)
            self._emit(DeviceEvent(pairing.kind, "refused", pairing.address, info,
                                   field=exc.field, message=exc.message, received=received))
            return
        self._emit(DeviceEvent(pairing.kind, "reading", pairing.address, info, reading=reading,
                               feature=feature, received=received))
