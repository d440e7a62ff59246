"""Weight Measurement (0x2A9D) and Weight Scale Feature (0x2A9E) against Weight Scale Service 1.0.

The layout (shared/devices/weight.py's table): Flags (u8; bit 0 imperial, bit 1 Time Stamp,
bit 2 User ID, bit 3 BMI and Height), Weight (u16: 0.005 kg or 0.01 lb; 0xFFFF "Measurement
Unsuccessful"), then Time Stamp (7), User ID (1), BMI (u16, 0.1) and Height (u16: 0.001 m or
0.1 in). Each example is worked out byte by byte in its comment.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from shared.devices import (
    DeviceValueError,
    WeightReading,
    WeightScaleFeature,
    encode_weight,
    encode_weight_feature,
    parse_weight,
    parse_weight_feature,
)

# 70.0 kg = 14000 x 0.005 = 0x36B0 -> B0 36; BMI 22.9 = 229 = 0x00E5 -> E5 00;
# height 1.750 m = 1750 x 0.001 = 0x06D6 -> D6 06. Flags 0x08: SI, BMI and height.
SI_WITH_HEIGHT = bytes.fromhex("08 B036 E500 D606")


def test_si_reading_with_bmi_and_height() -> None:
    reading = parse_weight(SI_WITH_HEIGHT)
    assert reading == WeightReading(unit="kg", weight=Decimal("70.000"), bmi=Decimal("22.9"),
                                    height=Decimal("1.750"))
    assert reading.height_unit == "m"
    assert reading.weight_in("kg") == Decimal("70.000")
    assert reading.height_in("cm") == Decimal("175")
    assert reading.height_in("in") == Decimal("68.9")  # 175 / 2.54 = 68.897...


def test_imperial_reading_with_time_and_user() -> None:
    # Flags 0x07: imperial, time stamp, user id. 154.30 lb = 15430 x 0.01 = 0x3C46 -> 46 3C;
    # 2026-12-06 07:05:09 -> EA 07 0C 06 07 05 09; user 2.
    reading = parse_weight(bytes.fromhex("07 463C EA070C06070509 02"))
    assert reading.unit == "lb" and reading.weight == Decimal("154.30")
    assert reading.timestamp == datetime(2026, 12, 6, 7, 5, 9)
    assert reading.user_id == 2 and reading.bmi is None and reading.height is None
    assert reading.weight_in("lb") == Decimal("154.30")
    assert reading.weight_in("kg") == Decimal("70.0")  # 154.30 x 0.45359237 = 69.989


def test_imperial_height_is_in_tenths_of_an_inch() -> None:
    # Flags 0x09: imperial, BMI and height. 180.00 lb = 18000 = 0x4650 -> 50 46;
    # BMI 27.4 = 274 = 0x0112 -> 12 01; 68.5 in = 685 = 0x02AD -> AD 02.
    reading = parse_weight(bytes.fromhex("09 5046 1201 AD02"))
    assert reading.height == Decimal("68.5") and reading.height_unit == "in"
    assert reading.height_in("in") == Decimal("68.5")
    assert reading.height_in("cm") == Decimal("174")  # 68.5 x 2.54 = 173.99 -> 174.0


@pytest.mark.parametrize(("code", "kg", "lb"), [
    (0, "70.115", "154.59"),  # not specified: the field's own 0.005 kg / 0.01 lb
    (1, "70.0", "155"), (2, "70.2", "154.5"), (3, "70.1", "154.6"), (4, "70.10", "154.6"),
    (5, "70.12", "154.60"), (6, "70.12", "154.60"), (7, "70.115", "154.59"),
])
def test_each_weight_resolution(code: int, kg: str, lb: str) -> None:
    # 70.115 kg = 14023 x 0.005; 154.59 lb = 15459 x 0.01. Each resolution rounds to its step
    # (0.5 kg / 1 lb, 0.2 / 0.5, 0.1 / 0.2, 0.05 / 0.1, 0.02 / 0.05, 0.01 / 0.02, 0.005 / 0.01),
    # ties to even: 70.115 / 0.01 = 7011.5 -> 7012; 154.59 / 0.02 = 7729.5 -> 7730.
    feature = WeightScaleFeature(weight_resolution=code)
    si = parse_weight(bytes.fromhex("00") + (14023).to_bytes(2, "little"))
    imperial = parse_weight(bytes.fromhex("01") + (15459).to_bytes(2, "little"))
    assert si.weight_in("kg", feature) == Decimal(kg)
    assert imperial.weight_in("lb", feature) == Decimal(lb)


@pytest.mark.parametrize(("code", "metres", "inches"), [
    (0, "1.753", "69.2"), (1, "1.75", "69"), (2, "1.755", "69.0"), (3, "1.753", "69.2"),
])
def test_each_height_resolution(code: int, metres: str, inches: str) -> None:
    feature = WeightScaleFeature(height_resolution=code)
    si = parse_weight(bytes.fromhex("08 B036 E500") + (1753).to_bytes(2, "little"))
    imperial = parse_weight(bytes.fromhex("09 5046 1201") + (692).to_bytes(2, "little"))
    assert str(feature.height_step("m")) in {"0.001", "0.01", "0.005"}
    assert si.height_in("cm", feature) == Decimal(metres) * 100
    assert imperial.height_in("in", feature) == Decimal(inches)


def test_feature_bits() -> None:
    # 0x0000009F: time stamp (bit 0), multiple users (1), BMI (2), weight resolution 3 (bits
    # 3-6 = 0011 -> 0x18), height resolution 1 (bits 7-9 = 001 -> 0x80).
    feature = parse_weight_feature(bytes.fromhex("9F000000"))
    assert feature == WeightScaleFeature(time_stamp=True, multiple_users=True, bmi=True,
                                         weight_resolution=3, height_resolution=1)
    assert encode_weight_feature(feature) == bytes.fromhex("9F000000")


@pytest.mark.parametrize(("value", "field", "words"), [
    (bytes.fromhex("00 FFFF"), "weight", "unsuccessful"),
    (bytes.fromhex("00 0000"), "weight", "weight of 0"),
    (bytes.fromhex("00 B0"), "weight", "ended after 2 bytes"),
    (bytes.fromhex("08 B036 E500"), "height", "needs 2 more"),
    (bytes.fromhex("00 B036 00"), "flags", "1 bytes more"),
    (bytes.fromhex("10 B036"), "flags", "bits 4-7"),
    (bytes.fromhex("08 B036 0000 D606"), "bmi", "BMI of 0"),
    (bytes.fromhex("02 B036 EA070C06190000"), "time_stamp", "not a date"),  # hour 25
])
def test_garbled_values_are_refused_naming_the_field(value: bytes, field: str,
                                                     words: str) -> None:
    with pytest.raises(DeviceValueError) as caught:
        parse_weight(value)
    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize("value", [
    b"\x00\x00\x00",             # 3 bytes, not the uint32
    bytes.fromhex("40000000"),  # weight resolution 8 (bits 3-6 = 1000): reserved
    bytes.fromhex("00020000"),  # height resolution 4 (bits 7-9 = 100): reserved
])
def test_garbled_features_are_refused(value: bytes) -> None:
    with pytest.raises(DeviceValueError) as caught:
        parse_weight_feature(value)
    assert caught.value.field == "weight_scale_feature"


def test_encoder_writes_the_worked_example() -> None:
    assert encode_weight(parse_weight(SI_WITH_HEIGHT)) == SI_WITH_HEIGHT
