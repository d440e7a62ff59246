"""IEEE 11073-20601 SFLOAT, against the layout in Annex F.8 (4-bit exponent, 12-bit mantissa)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.devices import DeviceValueError, decode_sfloat, encode_sfloat


@pytest.mark.parametrize(("raw", "expected"), [
    (0x0078, Decimal("120")),     # 120 mmHg: mantissa 120 (0x078), exponent 0
    (0xF0A0, Decimal("16.0")),    # 16.0 kPa: mantissa 160 (0x0A0), exponent -1 (0xF)
    (0xE3E8, Decimal("10.00")),   # mantissa 1000, exponent -2
    (0x1005, Decimal("50")),      # mantissa 5, exponent +1
    (0x0FFF, Decimal("-1")),      # mantissa -1 (0xFFF two's complement), exponent 0
    (0x0803, Decimal("-2045")),   # the most negative ordinary mantissa
    (0x07FD, Decimal("2045")),    # the largest ordinary mantissa
    (0x8001, Decimal("1E-8")),    # the smallest exponent, -8 (0x8)
])
def test_decodes_the_worked_examples(raw: int, expected: Decimal) -> None:
    value = decode_sfloat(raw, "systolic")
    assert value == expected
    assert str(value) == str(expected)  # exact decimals, no binary-float tails


@pytest.mark.parametrize(("raw", "name"), [
    (0x07FF, "NaN"), (0x0800, "NRes"), (0x07FE, "+INFINITY"), (0x0802, "-INFINITY"),
    (0x0801, "reserved"), (0x27FF, "NaN"),  # NaN's mantissa with another exponent too
])
def test_special_values_are_refused_by_name(raw: int, name: str) -> None:
    with pytest.raises(DeviceValueError) as caught:
        decode_sfloat(raw, "diastolic")
    assert caught.value.field == "diastolic"
    assert name in str(caught.value)


@pytest.mark.parametrize(("value", "exponent"), [("120", 0), ("16.0", -1), ("98.6", -1),
                                                 ("-3", 0), ("2045", 0), ("0.005", -3)])
def test_encoding_round_trips(value: str, exponent: int) -> None:
    assert decode_sfloat(encode_sfloat(value, exponent), "x") == Decimal(value)


def test_encoding_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="mantissa"):
        encode_sfloat(2046)  # +INFINITY's mantissa: never a number
    with pytest.raises(ValueError, match="digits"):
        encode_sfloat("16.25", -1)
