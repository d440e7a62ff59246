"""The one refusal a device value can earn: which field, and why, in plain words."""

from __future__ import annotations

__all__ = ["DeviceValueError"]


class DeviceValueError(ValueError):
    """A characteristic value that cannot be read as a measurement; names the field at fault.

    The kiosk shows ``message`` to staff and logs it; the member is asked to measure again or
    type the reading, never shown a number the device did not clearly send.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
