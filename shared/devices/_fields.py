"""A cursor over a characteristic value that names the field it was reading when bytes ran out."""

from __future__ import annotations

import struct
from datetime import datetime

from shared.devices.errors import DeviceValueError

__all__ = ["Reader", "decode_date_time", "encode_date_time"]


class Reader:
    """Reads little-endian fields in order; every short read is refused with the field's name."""

    def __init__(self, value: bytes, what: str) -> None:
        self._value = bytes(value)
        self._at = 0
        self._what = what

    def take(self, size: int, field: str) -> bytes:
        """The next ``size`` bytes, or a refusal naming ``field`` if the value is too short."""
        end = self._at + size
        if end > len(self._value):
            raise DeviceValueError(
                field, f"{self._what} ended after {len(self._value)} bytes; "
                f"{field} needs {size} more from byte {self._at}")
        chunk = self._value[self._at:end]
        self._at = end
        return chunk

    def uint8(self, field: str) -> int:
        """An unsigned byte."""
        return self.take(1, field)[0]

    def uint16(self, field: str) -> int:
        """An unsigned little-endian 16-bit integer."""
        value: int = struct.unpack("<H", self.take(2, field))[0]
        return value

    def finish(self) -> None:
        """Refuse bytes left over: a value longer than its flags say was garbled on the way."""
        if self._at != len(self._value):
            raise DeviceValueError(
                "flags", f"{self._what} has {len(self._value) - self._at} bytes more than its "
                f"flags announce ({len(self._value)} bytes, fields end at {self._at})")


def decode_date_time(raw: bytes, field: str) -> datetime | None:
    """A Date Time (0x2A08): year u16, month, day, hours, minutes, seconds; None if not known.

    The GATT Specification Supplement's Date Time lets a device say "not known" with a zero
    year, month or day; a clock that was never set does that. Other impossible dates refuse.
    """
    year, month, day, hours, minutes, seconds = struct.unpack("<HBBBBB", raw)
    if year == 0 or month == 0 or day == 0:
        return None
    if not 1582 <= year <= 9999:
        raise DeviceValueError(field, f"year {year} is outside 1582..9999")
    try:
        # Naive on purpose: the Date Time characteristic carries no time zone; it is the
        # device's own wall clock.
        return datetime(year, month, day, hours, minutes, seconds)
    except ValueError as exc:
        raise DeviceValueError(
            field, f"{year:04d}-{month:02d}-{day:02d} {hours:02d}:{minutes:02d}:{seconds:02d} "
            f"is not a date and time ({exc})") from None


def encode_date_time(when: datetime | None) -> bytes:
    """The 7 bytes of a Date Time; all zeros for "not known"."""
    if when is None:
        return bytes(7)
    return struct.pack("<HBBBBB", when.year, when.month, when.day, when.hour, when.minute,
                       when.second)
