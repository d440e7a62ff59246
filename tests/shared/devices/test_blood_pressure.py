"""Blood Pressure Measurement (0x2A35) against the Blood Pressure Service 1.0 byte layout.

The layout (shared/devices/blood_pressure.py's table, from the Bluetooth SIG's Blood Pressure
Service 1.0 and the GATT Specification Supplement's "Blood Pressure Measurement"): Flags (u8;
bit 0 kPa, bit 1 Time Stamp, bit 2 Pulse Rate, bit 3 User ID, bit 4 Measurement Status), then
Systolic, Diastolic and Mean Arterial Pressure as SFLOAT, then the optional fields in that
order. Each example below is worked out byte by byte in its comment.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from shared.devices import (
    BP_STATUS_CODES,
    BloodPressureReading,
    DeviceValueError,
    encode_blood_pressure,
    parse_blood_pressure,
)

# 120/80 mmHg, MAP 93, 2026-12-06 09:30:00, pulse 72, user 1, status 0x0000.
# Flags 0x1E = time stamp | pulse | user | status, units mmHg (bit 0 clear).
# 120 = 0x0078 -> 78 00; 80 = 0x0050 -> 50 00; 93 = 0x005D -> 5D 00;
# 2026 = 0x07EA -> EA 07, month 12 = 0C, day 06, 09 h, 30 min = 1E, 00 s;
# pulse 72 = 0x0048 -> 48 00; user 01; status 00 00.
FULL_MMHG = bytes.fromhex("1E 7800 5000 5D00 EA070C06091E00 4800 01 0000")


def test_full_reading_in_mmhg() -> None:
    reading = parse_blood_pressure(FULL_MMHG)
    assert reading == BloodPressureReading(
        unit="mmHg", systolic=Decimal(120), diastolic=Decimal(80), mean_arterial=Decimal(93),
        timestamp=datetime(2026, 12, 6, 9, 30, 0), pulse_rate=Decimal(72), user_id=1, status=())
    assert reading.mmhg() == (120, 80)
    assert reading.pulse() == 72


def test_minimal_reading_has_only_the_three_pressures() -> None:
    # Flags 0x00: mmHg, nothing optional. 138/86, MAP 103 (0x0067).
    reading = parse_blood_pressure(bytes.fromhex("00 8A00 5600 6700"))
    assert (reading.systolic, reading.diastolic, reading.mean_arterial) == (138, 86, 103)
    assert reading.timestamp is None and reading.pulse_rate is None and reading.user_id is None
    assert reading.status == ()


def test_kpa_reading_converts_to_whole_mmhg() -> None:
    # Flags 0x01 (kPa). 16.0 kPa: mantissa 160, exponent -1 -> 0xF0A0 -> A0 F0;
    # 10.7 kPa: mantissa 107 = 0x06B -> 0xF06B -> 6B F0; MAP 12.4 kPa: 124 = 0x07C -> 7C F0.
    # 16.0 x 760/101.325 = 120.01 -> 120; 10.7 x 7.50062 = 80.26 -> 80.
    reading = parse_blood_pressure(bytes.fromhex("01 A0F0 6BF0 7CF0"))
    assert reading.unit == "kPa"
    assert reading.systolic == Decimal("16.0") and reading.diastolic == Decimal("10.7")
    assert reading.mmhg() == (120, 80)


# Measurement Status, bit by bit (bits 3-4 together are the pulse rate range).
@pytest.mark.parametrize(("bits", "codes"), [
    (0x0001, ("body_movement",)),
    (0x0002, ("cuff_too_loose",)),
    (0x0004, ("irregular_pulse",)),
    (0x0008, ("pulse_above_range",)),   # range 01: exceeds the upper limit
    (0x0010, ("pulse_below_range",)),   # range 10: below the lower limit
    (0x0020, ("improper_position",)),
    (0x003F & ~0x0010, ("body_movement", "cuff_too_loose", "irregular_pulse",
                        "pulse_above_range", "improper_position")),
    (0xFFC0, ()),                       # bits 6-15 are reserved: ignored, as the spec says
])
def test_each_status_bit(bits: int, codes: tuple[str, ...]) -> None:
    # Flags 0x10 (status only); 120/80/93; then the status word little-endian.
    value = bytes.fromhex("10 7800 5000 5D00") + bits.to_bytes(2, "little")
    assert parse_blood_pressure(value).status == codes


def test_every_status_code_is_covered_above() -> None:
    # The table above names every code the parser can give.
    assert set(BP_STATUS_CODES) == {"body_movement", "cuff_too_loose", "irregular_pulse",
                                    "pulse_above_range", "pulse_below_range",
                                    "improper_position"}


def test_unknown_user_and_a_clock_never_set() -> None:
    # Flags 0x0A: time stamp and user id. Date Time all zero = "not known"; user 0xFF = unknown.
    reading = parse_blood_pressure(bytes.fromhex("0A 7800 5000 5D00 00000000000000 FF"))
    assert reading.timestamp is None
    assert reading.user_id == 0xFF


@pytest.mark.parametrize(("value", "field", "words"), [
    (bytes.fromhex("00 7800 5000"), "mean_arterial_pressure", "ended after 5 bytes"),
    (bytes.fromhex("04 7800 5000 5D00"), "pulse_rate", "needs 2 more"),
    (bytes.fromhex("00 7800 5000 5D00 00"), "flags", "1 bytes more"),
    (bytes.fromhex("00 FF07 5000 5D00"), "systolic", "NaN"),
    (bytes.fromhex("00 7800 0008 5D00"), "diastolic", "NRes"),
    (bytes.fromhex("04 7800 5000 5D00 FE07"), "pulse_rate", "INFINITY"),
    (bytes.fromhex("20 7800 5000 5D00"), "flags", "bits 5-7"),
    (bytes.fromhex("00 0000 5000 5D00"), "systolic", "not a pressure"),
    (bytes.fromhex("10 7800 5000 5D00 1800"), "measurement_status", "reserved"),
    (bytes.fromhex("02 7800 5000 5D00 EA070D06091E00"), "time_stamp", "not a date"),
    (b"", "flags", "ended after 0 bytes"),
])
def test_garbled_values_are_refused_naming_the_field(value: bytes, field: str,
                                                     words: str) -> None:
    with pytest.raises(DeviceValueError) as caught:
        parse_blood_pressure(value)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_encoder_writes_the_worked_example() -> None:
    reading = parse_blood_pressure(FULL_MMHG)
    assert encode_blood_pressure(reading, status_present=True) == FULL_MMHG
    kpa = BloodPressureReading(unit="kPa", systolic=Decimal("16.0"),
                               diastolic=Decimal("10.7"), mean_arterial=Decimal("12.4"))
    assert encode_blood_pressure(kpa, exponent=-1) == bytes.fromhex("01 A0F0 6BF0 7CF0")
