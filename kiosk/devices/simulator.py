"""A simulated blood-pressure cuff and weight scale: bumble GATT servers on an in-process link.

Each runs a bumble ``Device`` on its own bumble ``Controller``, attached to the same
``LocalLink`` as the kiosk's central, so the kiosk meets them exactly as it meets a real
device: it scans their advertisements, connects, discovers services, reads the Device
Information strings, writes the CCCD and receives ATT indications. Only the radio is missing.

The simulator can send what real devices send on a bad day: every measurement status bit,
kPa instead of mmHg, pounds instead of kilograms, a dropped connection, a garbled value and a
reading saved for another user of the cuff.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Device
from bumble.gatt import Characteristic, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.profiles.device_information_service import DeviceInformationService
from bumble.transport.common import AsyncPipeSink

from kiosk.devices.gatt_ids import (
    BLOOD_PRESSURE_MEASUREMENT,
    BLOOD_PRESSURE_SERVICE,
    WEIGHT_MEASUREMENT,
    WEIGHT_SCALE_FEATURE,
    WEIGHT_SCALE_SERVICE,
)
from kiosk.devices.simulated import (
    CENTRAL_ADDRESS,
    CUFF_ADDRESS,
    SCALE_ADDRESS,
    bp_reading,
    weight_reading,
)
from shared.devices import (
    WeightScaleFeature,
    encode_blood_pressure,
    encode_weight,
    encode_weight_feature,
)

__all__ = ["CUFF_ADDRESS", "SCALE_ADDRESS", "SimulatedDevice", "Simulator", "bp_reading",
           "weight_reading"]

log = logging.getLogger(__name__)

@dataclass
class SimulatedDevice:
    """One simulated device: its bumble Device, its measurement characteristic, its queue."""

    kind: str
    address: str
    device: Device
    measurement: Characteristic[bytes]
    # What the next press of "start" sends: encoded values, first in first out.
    queue: deque[bytes] = field(default_factory=deque)
    default: bytes = b""

    async def indicate(self, value: bytes) -> None:
        """Send ``value`` as an indication to every subscribed central (waits for the confirm)."""
        await self.device.indicate_subscribers(self.measurement, value)

    async def press_start(self) -> bytes:
        """What the member's press of the device's start button does: measure, then indicate."""
        value = self.queue.popleft() if self.queue else self.default
        await self.indicate(value)
        return value

    async def drop_connection(self) -> None:
        """Break every connection, as a device that walks out of range or sleeps does."""
        for connection in list(self.device.connections.values()):
            await connection.disconnect()

    def is_subscribed(self) -> bool:
        """Whether a connected central has written the measurement's CCCD for indications."""
        handle = self.measurement.handle
        return any(cccds.get(handle, b"\0\0")[0] & 0x02
                   for cccds in self.device.gatt_server.subscribers.values())


class Simulator:
    """A cuff and a scale on one in-process link, with the kiosk's own controller beside them."""

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self.cuff = self._cuff()
        self.scale = self._scale()

    def central_controller(self) -> Controller:
        """The controller the kiosk's central runs on (a real one is a USB dongle)."""
        return Controller("kiosk", link=self.link, public_address=CENTRAL_ADDRESS)

    def device(self, kind: str) -> SimulatedDevice:
        """The simulated device of ``kind`` ("blood_pressure" or "weight")."""
        return self.cuff if kind == "blood_pressure" else self.scale

    def _make(self, name: str, address: str, services: list[Service]) -> Device:
        controller = Controller(name, link=self.link, public_address=address)
        device = Device(name=name, address=Address(address),
                        host=Host(controller, AsyncPipeSink(controller)))
        for service in services:
            device.add_service(service)
        return device

    def _cuff(self) -> SimulatedDevice:
        measurement: Characteristic[bytes] = Characteristic(
            BLOOD_PRESSURE_MEASUREMENT, Characteristic.Properties.INDICATE,
            Characteristic.Permissions(0), b"")
        device = self._make("Onsite Sim Cuff", CUFF_ADDRESS, [
            Service(BLOOD_PRESSURE_SERVICE, [measurement]),
            DeviceInformationService(manufacturer_name="Onsite Simulated Devices",
                                     model_number="SIM-BP1", serial_number="BP-0001"),
        ])
        return SimulatedDevice("blood_pressure", CUFF_ADDRESS, device, measurement,
                               default=encode_blood_pressure(bp_reading(128, 82)))

    def _scale(self) -> SimulatedDevice:
        measurement: Characteristic[bytes] = Characteristic(
            WEIGHT_MEASUREMENT, Characteristic.Properties.INDICATE,
            Characteristic.Permissions(0), b"")
        feature: Characteristic[bytes] = Characteristic(
            WEIGHT_SCALE_FEATURE, Characteristic.Properties.READ, Characteristic.READABLE,
            encode_weight_feature(WeightScaleFeature(bmi=True, weight_resolution=3,
                                                     height_resolution=2)))
        device = self._make("Onsite Sim Scale", SCALE_ADDRESS, [
            Service(WEIGHT_SCALE_SERVICE, [feature, measurement]),
            DeviceInformationService(manufacturer_name="Onsite Simulated Devices",
                                     model_number="SIM-WS1", serial_number="WS-0001"),
        ])
        return SimulatedDevice("weight", SCALE_ADDRESS, device, measurement,
                               default=encode_weight(weight_reading("81.6", "1.780")))

    async def start(self) -> None:
        """Power the devices on and advertise them, restarting after every disconnection."""
        for sim, service in ((self.cuff, BLOOD_PRESSURE_SERVICE),
                             (self.scale, WEIGHT_SCALE_SERVICE)):
            await sim.device.power_on()
            data = AdvertisingData([
                (AdvertisingData.FLAGS, bytes([0x06])),
                (AdvertisingData.COMPLETE_LOCAL_NAME, sim.device.name.encode()),
                (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, bytes(service)),
            ])
            await sim.device.start_advertising(auto_restart=True, advertising_data=bytes(data),
                                               advertising_interval_min=20,
                                               advertising_interval_max=20)

    async def stop(self) -> None:
        """Drop the connections and stop advertising."""
        for sim in (self.cuff, self.scale):
            await sim.device.stop_advertising()
            await sim.drop_connection()

    async def wait_subscribed(self, kind: str, timeout: float = 10.0) -> None:
        """Wait until the kiosk has subscribed to ``kind``'s indications."""
        sim = self.device(kind)
        async with asyncio.timeout(timeout):
            while not sim.is_subscribed():
                await asyncio.sleep(0.01)
