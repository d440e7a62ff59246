"""Weight Measurement (0x2A9D) and Weight Scale Feature (0x2A9E) of the Weight Scale Service
(0x181D).

Weight Measurement layout (Weight Scale Service 1.0, Bluetooth SIG; GATT Specification
Supplement, "Weight Measurement"), little-endian:

======  ===========================  ===================================================
bytes   field                        present when
======  ===========================  ===================================================
1       Flags                        always. bit 0: units (0 SI: kg and m; 1 imperial: lb
                                     and in); bit 1: Time Stamp; bit 2: User ID; bit 3:
                                     BMI and Height. Bits 4-7 are reserved.
2       Weight (uint16)              always. 0.005 kg steps (SI) or 0.01 lb (imperial);
                                     0xFFFF means "Measurement Unsuccessful".
7       Time Stamp (Date Time)       flags bit 1
1       User ID (0xFF = unknown)     flags bit 2
2       BMI (uint16, 0.1 kg/m2)      flags bit 3
2       Height (uint16)              flags bit 3. 0.001 m steps (SI) or 0.1 in (imperial)
======  ===========================  ===================================================

Weight Scale Feature (uint32): bit 0 time stamp, bit 1 multiple users, bit 2 BMI supported;
bits 3-6 the weight resolution the scale really has (1: 0.5 kg / 1 lb, 2: 0.2 kg / 0.5 lb,
3: 0.1 kg / 0.2 lb, 4: 0.05 kg / 0.1 lb, 5: 0.02 kg / 0.05 lb, 6: 0.01 kg / 0.02 lb,
7: 0.005 kg / 0.01 lb; 0 not specified); bits 7-9 the height resolution (1: 0.01 m / 1 in,
2: 0.005 m / 0.5 in, 3: 0.001 m / 0.1 in; 0 not specified). The Weight field always counts in
0.005 kg, so a scale that weighs to 0.1 kg sends 70.1 kg as 14020, and the reading is shown to
the scale's own resolution, not to a precision it does not have.

Worked example: 70.0 kg with height 1.750 m and BMI 22.9 is flags 0x08 then ``B0 36  E5 00
D6 06`` (14000 x 0.005 kg; 229 x 0.1; 1750 x 0.001 m).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from shared.devices._fields import Reader, decode_date_time, encode_date_time
from shared.devices.errors import DeviceValueError

__all__ = [
    "KG_PER_LB",
    "CM_PER_IN",
    "WeightReading",
    "WeightScaleFeature",
    "encode_weight",
    "encode_weight_feature",
    "parse_weight",
    "parse_weight_feature",
]

KG_PER_LB = Decimal("0.45359237")  # the international avoirdupois pound (exact, 1959)
CM_PER_IN = Decimal("2.54")  # the international inch (exact, 1959)
UNSUCCESSFUL = 0xFFFF

_IMPERIAL = 0x01
_TIME_STAMP = 0x02
_USER_ID = 0x04
_BMI_HEIGHT = 0x08
_DEFINED_FLAGS = 0x0F

_WEIGHT_STEP = {"kg": Decimal("0.005"), "lb": Decimal("0.01")}
_HEIGHT_STEP = {"m": Decimal("0.001"), "in": Decimal("0.1")}
_BMI_STEP = Decimal("0.1")
_WEIGHT_RESOLUTION = {
    1: {"kg": Decimal("0.5"), "lb": Decimal("1")},
    2: {"kg": Decimal("0.2"), "lb": Decimal("0.5")},
    3: {"kg": Decimal("0.1"), "lb": Decimal("0.2")},
    4: {"kg": Decimal("0.05"), "lb": Decimal("0.1")},
    5: {"kg": Decimal("0.02"), "lb": Decimal("0.05")},
    6: {"kg": Decimal("0.01"), "lb": Decimal("0.02")},
    7: {"kg": Decimal("0.005"), "lb": Decimal("0.01")},
}
_HEIGHT_RESOLUTION = {
    1: {"m": Decimal("0.01"), "in": Decimal("1")},
    2: {"m": Decimal("0.005"), "in": Decimal("0.5")},
    3: {"m": Decimal("0.001"), "in": Decimal("0.1")},
}


@dataclass(frozen=True)
class WeightScaleFeature:
    """What a scale says it can do, and how finely it really weighs and measures."""

    time_stamp: bool = False
    multiple_users: bool = False
    bmi: bool = False
    weight_resolution: int = 0  # 0 not specified, else 1..7 of the table above
    height_resolution: int = 0  # 0 not specified, else 1..3

    def weight_step(self, unit: str) -> Decimal:
        """The scale's weight step in ``unit`` ("kg" or "lb"); the field's own if not said."""
        table = _WEIGHT_RESOLUTION.get(self.weight_resolution)
        return table[unit] if table else _WEIGHT_STEP[unit]

    def height_step(self, unit: str) -> Decimal:
        """The scale's height step in ``unit`` ("m" or "in"); the field's own if not said."""
        table = _HEIGHT_RESOLUTION.get(self.height_resolution)
        return table[unit] if table else _HEIGHT_STEP[unit]


@dataclass(frozen=True)
class WeightReading:
    """One scale measurement as the scale sent it: weight in ``unit``, height in its unit."""

    unit: str  # "kg" or "lb"
    weight: Decimal
    timestamp: datetime | None = None
    user_id: int | None = None
    bmi: Decimal | None = None
    height: Decimal | None = None  # metres with kg, inches with lb

    @property
    def height_unit(self) -> str:
        """The height's unit, which follows the weight's (SI or imperial)."""
        return "m" if self.unit == "kg" else "in"

    def weight_in(self, unit: str, feature: WeightScaleFeature | None = None) -> Decimal:
        """The weight in ``unit`` ("kg" or "lb"), to the scale's resolution where it says one."""
        step = (feature or WeightScaleFeature()).weight_step(self.unit)
        weight = _to_step(self.weight, step)
        if unit == self.unit:
            return weight
        converted = weight * KG_PER_LB if unit == "kg" else weight / KG_PER_LB
        # A converted reading keeps one decimal: the conversion adds no precision.
        return converted.quantize(Decimal("0.1"), ROUND_HALF_EVEN)

    def height_in(self, unit: str, feature: WeightScaleFeature | None = None) -> Decimal | None:
        """The height in ``unit`` ("cm" or "in"), to the scale's resolution; None if not sent."""
        if self.height is None:
            return None
        height = _to_step(self.height, (feature or WeightScaleFeature()).height_step(
            self.height_unit))
        centimetres = height * 100 if self.height_unit == "m" else height * CM_PER_IN
        if unit == "cm":
            return centimetres.quantize(Decimal("0.1"), ROUND_HALF_EVEN).normalize()
        if self.height_unit == "in":
            return height
        return (centimetres / CM_PER_IN).quantize(Decimal("0.1"), ROUND_HALF_EVEN)


def _to_step(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded to a multiple of ``step``, written with the step's decimals."""
    return ((value / step).quantize(Decimal(1), ROUND_HALF_EVEN) * step).quantize(step)


def parse_weight(value: bytes) -> WeightReading:
    """Read a Weight Measurement value; refuse anything garbled, naming the field."""
    reader = Reader(value, "the weight measurement")
    flags = reader.uint8("flags")
    if flags & ~_DEFINED_FLAGS:
        raise DeviceValueError(
            "flags", f"0x{flags:02X} sets bits 4-7, which Weight Scale Service 1.0 reserves; "
            "the fields after them cannot be placed")
    unit = "lb" if flags & _IMPERIAL else "kg"
    raw_weight = reader.uint16("weight")
    timestamp = (decode_date_time(reader.take(7, "time_stamp"), "time_stamp")
                 if flags & _TIME_STAMP else None)
    user_id = reader.uint8("user_id") if flags & _USER_ID else None
    bmi = height = None
    if flags & _BMI_HEIGHT:
        raw_bmi = reader.uint16("bmi")
        raw_height = reader.uint16("height")
        if raw_bmi == 0:
            raise DeviceValueError("bmi", "the scale sent a BMI of 0")
        if raw_height == 0:
            raise DeviceValueError("height", "the scale sent a height of 0")
        bmi = raw_bmi * _BMI_STEP
        height = raw_height * _HEIGHT_STEP["m" if unit == "kg" else "in"]
    reader.finish()
    if raw_weight == UNSUCCESSFUL:
        # Checked after the layout: a short or long value is garbled whatever its weight says.
        raise DeviceValueError("weight", "the scale reports the measurement was unsuccessful")
    if raw_weight == 0:
        raise DeviceValueError("weight", "the scale sent a weight of 0")
    return WeightReading(unit=unit, weight=raw_weight * _WEIGHT_STEP[unit], timestamp=timestamp,
                         user_id=user_id, bmi=bmi, height=height)


def parse_weight_feature(value: bytes) -> WeightScaleFeature:
    """Read a Weight Scale Feature value (uint32)."""
    if len(value) != 4:
        raise DeviceValueError("weight_scale_feature",
                               f"is 4 bytes, the scale sent {len(value)}")
    bits: int = struct.unpack("<I", value)[0]
    weight_resolution = (bits >> 3) & 0xF
    height_resolution = (bits >> 7) & 0x7
    if weight_resolution > 7:
        raise DeviceValueError("weight_scale_feature",
                               f"weight resolution {weight_resolution} is reserved")
    if height_resolution > 3:
        raise DeviceValueError("weight_scale_feature",
                               f"height resolution {height_resolution} is reserved")
    return WeightScaleFeature(time_stamp=bool(bits & 1), multiple_users=bool(bits & 2),
                              bmi=bool(bits & 4), weight_resolution=weight_resolution,
                              height_resolution=height_resolution)


def encode_weight_feature(feature: WeightScaleFeature) -> bytes:
    """The Weight Scale Feature value for ``feature`` (the simulator's side)."""
    bits = (int(feature.time_stamp) | int(feature.multiple_users) << 1 | int(feature.bmi) << 2
            | feature.weight_resolution << 3 | feature.height_resolution << 7)
    return struct.pack("<I", bits)


def encode_weight(reading: WeightReading) -> bytes:
    """The value a scale would send for ``reading`` (the simulator's side)."""
    flags = _IMPERIAL if reading.unit == "lb" else 0
    tail = b""
    if reading.timestamp is not None:
        flags |= _TIME_STAMP
        tail += encode_date_time(reading.timestamp)
    if reading.user_id is not None:
        flags |= _USER_ID
        tail += bytes([reading.user_id])
    if reading.bmi is not None and reading.height is not None:
        flags |= _BMI_HEIGHT
        tail += struct.pack("<HH", _steps(reading.bmi, _BMI_STEP),
                            _steps(reading.height, _HEIGHT_STEP[reading.height_unit]))
    return struct.pack("<BH", flags, _steps(reading.weight, _WEIGHT_STEP[reading.unit])) + tail


def _steps(value: Decimal, step: Decimal) -> int:
    """How many ``step``s make ``value`` (refusing what the field cannot carry)."""
    count = int((Decimal(value) / step).quantize(Decimal(1), ROUND_HALF_EVEN))
    if not 0 <= count < 0xFFFF:
        raise ValueError(f"{value} does not fit a uint16 of {step} steps")
    return count
