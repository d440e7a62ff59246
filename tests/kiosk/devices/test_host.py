"""The kiosk's bumble central against the simulated cuff and scale over bumble's in-process
link: scanning, Device Information, indications of every status bit and unit, garbled values
and reconnection after a dropped connection. The same host code runs on a USB controller."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

from kiosk.devices.simulated import CUFF_ADDRESS, SCALE_ADDRESS, bp_reading, weight_reading
from shared.devices import (
    BP_STATUS_CODES,
    BloodPressureReading,
    WeightReading,
    encode_blood_pressure,
    encode_weight,
)

from .conftest import WAIT, Bench


def test_scan_finds_the_cuff_and_the_scale_by_their_service() -> None:
    from kiosk.devices.host import DeviceHost  # bumble: in the test, not at collection

    host = DeviceHost(lambda _event: None, simulated=True)
    host.start()
    try:
        found = host.call(host.scan(0.5)).result(WAIT)
    finally:
        host.stop()
    assert [(f.kind, f.address, f.name) for f in found] == [
        ("blood_pressure", CUFF_ADDRESS, "Onsite Sim Cuff"),
        ("weight", SCALE_ADDRESS, "Onsite Sim Scale")]


def test_a_reading_carries_the_device_information(bench: Bench) -> None:
    bench.events.drain()
    bench.host.call(bench.simulator.cuff.press_start()).result(WAIT)
    event = bench.events.next("reading", "blood_pressure")
    assert event.info is not None
    assert (event.info.manufacturer, event.info.model, event.info.serial) == (
        "Onsite Simulated Devices", "SIM-BP1", "BP-0001")
    assert isinstance(event.reading, BloodPressureReading)
    assert event.reading.mmhg() == (128, 82)


@pytest.mark.parametrize("code", BP_STATUS_CODES)
def test_each_status_bit_arrives(bench: Bench, code: str) -> None:
    bench.events.drain()
    bench.send("blood_pressure", encode_blood_pressure(bp_reading(131, 84, status=(code,))))
    event = bench.events.next("reading", "blood_pressure")
    assert isinstance(event.reading, BloodPressureReading)
    assert event.reading.status == (code,)


def test_kpa_arrives_and_converts(bench: Bench) -> None:
    bench.events.drain()
    # 18.7 / 12.0 kPa = 140.3 / 90.0 mmHg.
    reading = bp_reading("18.7", "12.0", unit="kPa")
    bench.send("blood_pressure", encode_blood_pressure(reading, exponent=-1))
    event = bench.events.next("reading", "blood_pressure")
    assert isinstance(event.reading, BloodPressureReading)
    assert event.reading.unit == "kPa" and event.reading.mmhg() == (140, 90)


def test_scale_reading_with_its_feature(bench: Bench) -> None:
    bench.events.drain()
    bench.send("weight", encode_weight(weight_reading("180.4", "70.0", unit="lb")))
    event = bench.events.next("reading", "weight")
    assert isinstance(event.reading, WeightReading)
    assert event.feature is not None and event.feature.weight_resolution == 3
    # The simulated scale weighs to 0.1 kg / 0.2 lb (resolution 3): 180.4 lb stays 180.4.
    assert event.reading.weight_in("lb", event.feature) == Decimal("180.4")
    assert event.reading.height_in("in", event.feature) == Decimal("70.0")


@pytest.mark.parametrize(("kind", "value", "field"), [
    ("blood_pressure", bytes.fromhex("00 7800"), "diastolic"),
    ("blood_pressure", bytes.fromhex("00 FF07 5000 5D00"), "systolic"),
    ("weight", bytes.fromhex("00 FFFF"), "weight"),
])
def test_garbled_values_are_refused_with_the_field(bench: Bench, kind: str, value: bytes,
                                                   field: str) -> None:
    bench.events.drain()
    bench.send(kind, value)
    event = bench.events.next("refused", kind)
    assert event.field == field and event.reading is None and event.message


def test_a_dropped_connection_reconnects_and_readings_flow_again(bench: Bench) -> None:
    bench.events.drain()
    bench.host.call(bench.simulator.cuff.drop_connection()).result(WAIT)
    assert bench.events.next("disconnected", "blood_pressure").address == CUFF_ADDRESS
    connected = bench.events.next("connected", "blood_pressure")
    assert connected.info is not None and connected.info.serial == "BP-0001"
    bench.host.call(bench.simulator.wait_subscribed("blood_pressure", WAIT)).result(WAIT + 1)
    bench.send("blood_pressure", encode_blood_pressure(bp_reading(119, 77)))
    event = bench.events.next("reading", "blood_pressure")
    assert isinstance(event.reading, BloodPressureReading)
    assert event.reading.mmhg() == (119, 77)


def test_a_wrong_user_reading_arrives_with_its_user(bench: Bench) -> None:
    # The host passes the user id on; the check-up step refuses it (test_measure.py).
    bench.events.drain()
    bench.send("blood_pressure", encode_blood_pressure(bp_reading(150, 95, user_id=2)))
    event = bench.events.next("reading", "blood_pressure")
    assert isinstance(event.reading, BloodPressureReading) and event.reading.user_id == 2


def test_host_needs_one_kind_of_controller() -> None:
    from kiosk.devices.host import DeviceHost  # bumble: in the test, not at collection

    with pytest.raises(ValueError, match="not both"):
        DeviceHost(lambda _event: None, transport="usb:0", simulated=True)
    with pytest.raises(ValueError, match="not both"):
        DeviceHost(lambda _event: None)


def test_the_host_stops_from_a_thread_that_runs_an_event_loop() -> None:
    """stop() works when its caller runs asyncio (Playwright's sync API leaves such a loop)."""
    from kiosk.devices.host import DeviceHost

    host = DeviceHost(lambda _event: None, simulated=True)
    host.start()

    async def stop_inside_a_running_loop() -> None:
        host.stop()

    # On a thread of its own: asyncio.run() refuses to start where a loop already runs, and
    # in a worker that ran a browser test first Playwright's loop runs on the main thread.
    caller = threading.Thread(target=asyncio.run, args=(stop_inside_a_running_loop(),))
    caller.start()
    caller.join(timeout=WAIT)
    assert not caller.is_alive()
    assert host._loop.is_closed()
