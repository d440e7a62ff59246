"""Device Information Service (0x180A): who made the device, which model, which one.

Each of Manufacturer Name String (0x2A29), Model Number String (0x2A24) and Serial Number
String (0x2A25) is a UTF-8 string with no terminator and no length byte (GATT Specification
Supplement, "utf8s"). Some devices pad with NULs anyway; those are dropped. The kiosk sends these
with every reading, so they are checked here once: valid UTF-8, printable, at most 64 characters
(the longest the server stores).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.devices.errors import DeviceValueError

__all__ = ["INFO_CHARACTERISTICS", "MAX_INFO_LENGTH", "DeviceInfo", "parse_info_string"]

MAX_INFO_LENGTH = 64
# Our field name -> the characteristic's 16-bit UUID in the Device Information Service.
INFO_CHARACTERISTICS = {"manufacturer": 0x2A29, "model": 0x2A24, "serial": 0x2A25}


@dataclass(frozen=True)
class DeviceInfo:
    """The device a reading came from, as its Device Information Service names it."""

    kind: str  # "blood_pressure" or "weight": which measurement it makes
    address: str = ""
    manufacturer: str = ""
    model: str = ""
    serial: str = ""


def parse_info_string(value: bytes, field: str) -> str:
    """A Device Information string: UTF-8, NUL padding dropped, printable, at most 64 long."""
    try:
        text = bytes(value).rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeviceValueError(field, f"is not UTF-8 (byte {exc.start})") from None
    text = text.strip()
    if any(not ch.isprintable() for ch in text):
        raise DeviceValueError(field, "contains control characters")
    if len(text) > MAX_INFO_LENGTH:
        raise DeviceValueError(field, f"is {len(text)} characters, at most {MAX_INFO_LENGTH}")
    return text
