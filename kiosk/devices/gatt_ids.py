"""The Bluetooth SIG's 16-bit UUIDs the kiosk's devices speak (Assigned Numbers, section 3.4)."""

from __future__ import annotations

from bumble.core import UUID

from kiosk.devices.events import KINDS

__all__ = ["BLOOD_PRESSURE_MEASUREMENT", "BLOOD_PRESSURE_SERVICE", "DEVICE_INFORMATION_SERVICE",
           "INFO_UUIDS", "KINDS", "MEASUREMENT_OF", "SERVICE_OF", "WEIGHT_MEASUREMENT",
           "WEIGHT_SCALE_FEATURE", "WEIGHT_SCALE_SERVICE"]

BLOOD_PRESSURE_SERVICE = UUID.from_16_bits(0x1810, "Blood Pressure")
BLOOD_PRESSURE_MEASUREMENT = UUID.from_16_bits(0x2A35, "Blood Pressure Measurement")
WEIGHT_SCALE_SERVICE = UUID.from_16_bits(0x181D, "Weight Scale")
WEIGHT_MEASUREMENT = UUID.from_16_bits(0x2A9D, "Weight Measurement")
WEIGHT_SCALE_FEATURE = UUID.from_16_bits(0x2A9E, "Weight Scale Feature")
DEVICE_INFORMATION_SERVICE = UUID.from_16_bits(0x180A, "Device Information")
INFO_UUIDS = {"manufacturer": UUID.from_16_bits(0x2A29), "model": UUID.from_16_bits(0x2A24),
              "serial": UUID.from_16_bits(0x2A25)}

SERVICE_OF = {"blood_pressure": BLOOD_PRESSURE_SERVICE, "weight": WEIGHT_SCALE_SERVICE}
MEASUREMENT_OF = {"blood_pressure": BLOOD_PRESSURE_MEASUREMENT, "weight": WEIGHT_MEASUREMENT}
