"""What the kiosk's BLE host reports, and what it remembers: plain records without bumble.

Kept apart from ``kiosk.devices.host`` so that the screens, the pairing store and the device
step can name these types without importing bumble, which costs about 0.3 s of the kiosk's
cold start and is needed only once a cuff or scale is actually used.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.devices import BloodPressureReading, DeviceInfo, WeightReading, WeightScaleFeature

__all__ = ["KINDS", "DeviceEvent", "Found", "Pairing"]

KINDS = ("blood_pressure", "weight")


@dataclass(frozen=True)
class Pairing:
    """A device this kiosk uses, remembered by address; ``user_id`` is its slot on the device."""

    kind: str  # "blood_pressure" or "weight"
    address: str
    name: str = ""
    user_id: int = 1


@dataclass(frozen=True)
class Found:
    """A cuff or scale seen advertising while admin mode scans."""

    kind: str
    address: str
    name: str


@dataclass(frozen=True)
class DeviceEvent:
    """What the host tells the kiosk: a reading, a refused value, or a link going up or down."""

    kind: str
    what: str  # "reading", "refused", "connected" or "disconnected"
    address: str
    info: DeviceInfo | None = None
    reading: BloodPressureReading | WeightReading | None = None
    feature: WeightScaleFeature | None = None
    field: str = ""
    message: str = ""
    received: float = 0.0  # time.perf_counter() when the indication arrived
