"""Blood Pressure Measurement (0x2A35), the indication of the Blood Pressure Service (0x1810).

Byte layout (Blood Pressure Service 1.0 / 1.1, Bluetooth SIG; GATT Specification Supplement,
"Blood Pressure Measurement"), little-endian:

======  ==========================  =====================================================
bytes   field                       present when
======  ==========================  =====================================================
1       Flags                       always. bit 0: units (0 mmHg, 1 kPa); bit 1: Time
                                    Stamp; bit 2: Pulse Rate; bit 3: User ID; bit 4:
                                    Measurement Status. Bits 5-7 are not defined here.
2       Systolic (SFLOAT)           always
2       Diastolic (SFLOAT)          always
2       Mean Arterial Pressure      always
7       Time Stamp (Date Time)      flags bit 1
2       Pulse Rate (SFLOAT, /min)   flags bit 2
1       User ID (0xFF = unknown)    flags bit 3
2       Measurement Status          flags bit 4. bit 0 body movement during measurement;
                                    bit 1 cuff too loose; bit 2 irregular pulse; bits 3-4
                                    pulse rate range (0 within, 1 above upper limit, 2 below
                                    lower limit, 3 reserved); bit 5 improper measurement
                                    position; bits 6-15 reserved.
======  ==========================  =====================================================

Worked example (the first case of tests/shared/devices/test_blood_pressure.py): 120/80 mmHg,
MAP 93, taken 2026-12-06 09:30:00, pulse 72, user 1, no status bits, is flags 0x1E then
``78 00  50 00  5D 00  EA 07 0C 06 09 1E 00  48 00  01  00 00`` (19 bytes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from shared.devices._fields import Reader, decode_date_time, encode_date_time
from shared.devices.errors import DeviceValueError
from shared.devices.ieee11073 import decode_sfloat, encode_sfloat

__all__ = [
    "BP_STATUS_CODES",
    "MMHG_PER_KPA",
    "UNKNOWN_USER",
    "BloodPressureReading",
    "encode_blood_pressure",
    "parse_blood_pressure",
]

# 1 kPa in mmHg: 760 mmHg = 101.325 kPa (the standard atmosphere, ISO 80000-4).
MMHG_PER_KPA = Decimal(760) / Decimal("101.325")
UNKNOWN_USER = 0xFF  # "Unknown user" in the User ID characteristic's definition

_UNITS_KPA = 0x01
_TIME_STAMP = 0x02
_PULSE_RATE = 0x04
_USER_ID = 0x08
_STATUS = 0x10
_DEFINED_FLAGS = 0x1F

# Our names for the status bits, in bit order; assets/devices/status_advice.json words them.
BP_STATUS_CODES = ("body_movement", "cuff_too_loose", "irregular_pulse", "pulse_above_range",
                   "pulse_below_range", "improper_position")
_STATUS_BITS = {"body_movement": 0x0001, "cuff_too_loose": 0x0002, "irregular_pulse": 0x0004,
                "improper_position": 0x0020}
_PULSE_RANGE_SHIFT = 3
_PULSE_RANGE = {1: "pulse_above_range", 2: "pulse_below_range"}


@dataclass(frozen=True)
class BloodPressureReading:
    """One cuff measurement as the cuff sent it (values in ``unit``), with its status."""

    unit: str  # "mmHg" or "kPa"
    systolic: Decimal
    diastolic: Decimal
    mean_arterial: Decimal
    timestamp: datetime | None = None
    pulse_rate: Decimal | None = None
    user_id: int | None = None  # None: not sent; UNKNOWN_USER: the cuff does not know
    status: tuple[str, ...] = ()  # BP_STATUS_CODES in bit order

    def mmhg(self) -> tuple[int, int]:
        """Systolic and diastolic in whole mmHg, the unit the check-up's questions take."""
        factor = MMHG_PER_KPA if self.unit == "kPa" else Decimal(1)
        return (int((self.systolic * factor).quantize(Decimal(1), ROUND_HALF_EVEN)),
                int((self.diastolic * factor).quantize(Decimal(1), ROUND_HALF_EVEN)))

    def pulse(self) -> int | None:
        """The pulse in whole beats per minute, if the cuff sent it."""
        if self.pulse_rate is None:
            return None
        return int(self.pulse_rate.quantize(Decimal(1), ROUND_HALF_EVEN))


def parse_blood_pressure(value: bytes) -> BloodPressureReading:
    """Read a Blood Pressure Measurement value; refuse anything garbled, naming the field."""
    reader = Reader(value, "the blood pressure measurement")
    flags = reader.uint8("flags")
    if flags & ~_DEFINED_FLAGS:
        # A field we cannot place would shift every field after it: better no reading.
        raise DeviceValueError(
            "flags", f"0x{flags:02X} sets bits 5-7, which Blood Pressure Service 1.0 does not "
            "define; the fields after them cannot be placed")
    unit = "kPa" if flags & _UNITS_KPA else "mmHg"
    systolic = decode_sfloat(reader.uint16("systolic"), "systolic")
    diastolic = decode_sfloat(reader.uint16("diastolic"), "diastolic")
    mean_arterial = decode_sfloat(reader.uint16("mean_arterial_pressure"),
                                  "mean_arterial_pressure")
    for name, number in (("systolic", systolic), ("diastolic", diastolic),
                         ("mean_arterial_pressure", mean_arterial)):
        if number <= 0:
            raise DeviceValueError(name, f"{number} {unit} is not a pressure a cuff measures")
    timestamp = (decode_date_time(reader.take(7, "time_stamp"), "time_stamp")
                 if flags & _TIME_STAMP else None)
    pulse_rate = None
    if flags & _PULSE_RATE:
        pulse_rate = decode_sfloat(reader.uint16("pulse_rate"), "pulse_rate")
        if pulse_rate <= 0:
            raise DeviceValueError("pulse_rate", f"{pulse_rate} beats per minute is not a pulse")
    user_id = reader.uint8("user_id") if flags & _USER_ID else None
    status: tuple[str, ...] = ()
    if flags & _STATUS:
        status = _status_codes(reader.uint16("measurement_status"))
    reader.finish()
    return BloodPressureReading(unit=unit, systolic=systolic, diastolic=diastolic,
                                mean_arterial=mean_arterial, timestamp=timestamp,
                                pulse_rate=pulse_rate, user_id=user_id, status=status)


def _status_codes(bits: int) -> tuple[str, ...]:
    """The status codes a Measurement Status sets, in bit order; bits 6-15 are ignored (RFU)."""
    pulse_range = (bits >> _PULSE_RANGE_SHIFT) & 0x3
    if pulse_range == 3:
        raise DeviceValueError("measurement_status",
                               "pulse rate range 3 is reserved; the status cannot be read")
    found = {code for code, mask in _STATUS_BITS.items() if bits & mask}
    if pulse_range:
        found.add(_PULSE_RANGE[pulse_range])
    return tuple(code for code in BP_STATUS_CODES if code in found)


def encode_blood_pressure(reading: BloodPressureReading, exponent: int = 0,
                          status_present: bool | None = None) -> bytes:
    """The value a cuff would send for ``reading`` (for the simulator and the tests)."""
    flags = _UNITS_KPA if reading.unit == "kPa" else 0
    tail = b""
    if reading.timestamp is not None:
        flags |= _TIME_STAMP
        tail += encode_date_time(reading.timestamp)
    if reading.pulse_rate is not None:
        flags |= _PULSE_RATE
        tail += struct.pack("<H", encode_sfloat(reading.pulse_rate, 0))
    if reading.user_id is not None:
        flags |= _USER_ID
        tail += bytes([reading.user_id])
    if status_present or (status_present is None and reading.status):
        flags |= _STATUS
        bits = 0
        for code in reading.status:
            if code in _STATUS_BITS:
                bits |= _STATUS_BITS[code]
            elif code == "pulse_above_range":
                bits |= 1 << _PULSE_RANGE_SHIFT
            elif code == "pulse_below_range":
                bits |= 2 << _PULSE_RANGE_SHIFT
            else:
                raise ValueError(f"unknown status code {code!r}")
        tail += struct.pack("<H", bits)
    head = struct.pack("<BHHH", flags, encode_sfloat(reading.systolic, exponent),
                       encode_sfloat(reading.diastolic, exponent),
                       encode_sfloat(reading.mean_arterial, exponent))
    return head + tail
