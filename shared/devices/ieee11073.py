"""IEEE 11073-20601 SFLOAT, the 16-bit number type of the Bluetooth health profiles.

Layout (IEEE 11073-20601 Annex F.8, used as "medfloat16" by the GATT Specification
Supplement): a 4-bit two's-complement exponent in the high nibble and a 12-bit two's-complement
mantissa below it, little-endian on air; the value is ``mantissa * 10**exponent``. Five
mantissas are reserved: 0x7FF NaN, 0x800 NRes (not at this resolution), 0x7FE +INFINITY,
0x802 -INFINITY and 0x801 reserved. A device sends NaN when it has no value (Blood Pressure
Service 1.1, "if a value ... is unavailable ... NaN shall be used"); none of these is a reading.

Worked example: 120 mmHg is mantissa 120, exponent 0, 0x0078, on air ``78 00``; 16.0 kPa is
mantissa 160, exponent -1 (0xF), 0xF0A0, on air ``A0 F0``.
"""

from __future__ import annotations

from decimal import Decimal

from shared.devices.errors import DeviceValueError

__all__ = ["SPECIAL_SFLOAT", "decode_sfloat", "encode_sfloat"]

SPECIAL_SFLOAT = {
    0x07FF: "NaN (no value)",
    0x0800: "NRes (not at this resolution)",
    0x07FE: "+INFINITY",
    0x0802: "-INFINITY",
    0x0801: "a reserved value",
}


def decode_sfloat(raw: int, field: str) -> Decimal:
    """The exact decimal an SFLOAT carries, or a refusal naming ``field`` for a special value."""
    if not 0 <= raw <= 0xFFFF:
        raise DeviceValueError(field, f"not a 16-bit value: {raw}")
    mantissa = raw & 0x0FFF
    if mantissa in SPECIAL_SFLOAT:
        # Reserved whatever the exponent: a device never means 2047 x 10^n by them.
        raise DeviceValueError(field, f"the device sent {SPECIAL_SFLOAT[mantissa]}, not a number")
    exponent = raw >> 12
    if exponent >= 0x8:
        exponent -= 0x10
    if mantissa >= 0x800:
        mantissa -= 0x1000
    if exponent >= 0:
        return Decimal(mantissa * 10**exponent)  # 50, not 5E+1
    # Decimal keeps 98.6 as 98.6: a float would turn one tenth into a long tail of digits.
    return Decimal(mantissa).scaleb(exponent)


def encode_sfloat(value: Decimal | int | str, exponent: int = 0) -> int:
    """The SFLOAT for ``value`` at ``exponent`` (the simulator's side); refuses what won't fit."""
    if not -8 <= exponent <= 7:
        raise ValueError(f"exponent must be -8..7, got {exponent}")
    mantissa = Decimal(value).scaleb(-exponent)
    if mantissa != mantissa.to_integral_value():
        raise ValueError(f"{value} needs more digits than exponent {exponent} gives")
    whole = int(mantissa)
    if not -2045 <= whole <= 2045:
        raise ValueError(f"{value} does not fit a 12-bit mantissa at exponent {exponent}")
    return ((exponent & 0xF) << 12) | (whole & 0x0FFF)
