"""What the simulated cuff and scale are and send, without bumble: their addresses and readings.

Kept apart from ``kiosk.devices.simulator`` (which re-exports them) so that tests and tools that
only name a simulated device or build a reading do not import bumble (about 0.55 s for each
test worker's collection; docs/BENCHMARKS.md, "Session 11: the tests' CPU").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from shared.devices import BloodPressureReading, WeightReading

__all__ = ["CENTRAL_ADDRESS", "CUFF_ADDRESS", "SCALE_ADDRESS", "bp_reading", "weight_reading"]

CUFF_ADDRESS = "C0:FF:EE:00:00:01"
SCALE_ADDRESS = "C0:FF:EE:00:00:02"
CENTRAL_ADDRESS = "C0:FF:EE:00:00:FE"


def bp_reading(systolic: int | str, diastolic: int | str, pulse: int | None = 72, *,
               unit: str = "mmHg", status: tuple[str, ...] = (), user_id: int | None = 1,
               when: datetime | None = None) -> BloodPressureReading:
    """A cuff reading; MAP is the usual diastolic + (systolic - diastolic) / 3, rounded."""
    sys_, dia = Decimal(str(systolic)), Decimal(str(diastolic))
    step = Decimal("0.1") if unit == "kPa" else Decimal(1)
    mean = (dia + (sys_ - dia) / 3).quantize(step)
    return BloodPressureReading(unit=unit, systolic=sys_, diastolic=dia, mean_arterial=mean,
                                timestamp=when, pulse_rate=None if pulse is None
                                else Decimal(pulse), user_id=user_id, status=status)


def weight_reading(weight: str | int, height: str | None = None, *, unit: str = "kg",
                   user_id: int | None = None) -> WeightReading:
    """A scale reading; with a height the scale also sends the BMI it computed."""
    value = Decimal(str(weight))
    tall = Decimal(height) if height is not None else None
    bmi = None
    if tall is not None:
        kg = value if unit == "kg" else value * Decimal("0.45359237")
        metres = tall if unit == "kg" else tall * Decimal("0.0254")
        bmi = (kg / (metres * metres)).quantize(Decimal("0.1"))
    return WeightReading(unit=unit, weight=value, user_id=user_id, bmi=bmi, height=tall)
