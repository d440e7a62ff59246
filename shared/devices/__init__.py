"""Readings from standard Bluetooth LE health devices, parsed without any Bluetooth stack.

Pure parsing (issue 19): the kiosk's BLE host (kiosk/devices, on bumble) hands the bytes of an
indication here; the same functions encode values for the simulated cuff and scale.
"""

from __future__ import annotations

from shared.devices.advice import status_advice
from shared.devices.blood_pressure import (
    BP_STATUS_CODES,
    UNKNOWN_USER,
    BloodPressureReading,
    encode_blood_pressure,
    parse_blood_pressure,
)
from shared.devices.errors import DeviceValueError
from shared.devices.ieee11073 import decode_sfloat, encode_sfloat
from shared.devices.info import DeviceInfo, parse_info_string
from shared.devices.weight import (
    WeightReading,
    WeightScaleFeature,
    encode_weight,
    encode_weight_feature,
    parse_weight,
    parse_weight_feature,
)

__all__ = [
    "BP_STATUS_CODES",
    "UNKNOWN_USER",
    "BloodPressureReading",
    "DeviceInfo",
    "DeviceValueError",
    "WeightReading",
    "WeightScaleFeature",
    "decode_sfloat",
    "encode_blood_pressure",
    "encode_sfloat",
    "encode_weight",
    "encode_weight_feature",
    "parse_blood_pressure",
    "parse_info_string",
    "parse_weight",
    "parse_weight_feature",
    "status_advice",
]
