"""The check-up's device step without a window: countdown, reading, advice, refusals."""

from __future__ import annotations

from decimal import Decimal

from kiosk.devices.events import DeviceEvent, Pairing
from kiosk.devices.measure import WAIT_SECONDS, DeviceStep
from kiosk.devices.simulated import CUFF_ADDRESS, SCALE_ADDRESS, bp_reading, weight_reading
from shared.devices import DeviceInfo, WeightScaleFeature

CUFF = Pairing("blood_pressure", CUFF_ADDRESS, user_id=1)
SCALE = Pairing("weight", SCALE_ADDRESS)
CUFF_INFO = DeviceInfo("blood_pressure", CUFF_ADDRESS, "Acme", "BP-1", "123")
SCALE_INFO = DeviceInfo("weight", SCALE_ADDRESS, "Acme", "WS-1", "456")


def _bp(**kwargs: object) -> DeviceEvent:
    return DeviceEvent("blood_pressure", "reading", CUFF_ADDRESS, CUFF_INFO,
                       reading=bp_reading(**kwargs))  # type: ignore[arg-type]


def test_countdown_then_expired() -> None:
    step = DeviceStep("blood_pressure", CUFF, units="metric", started=100.0)
    assert step.seconds_left(100.0) == WAIT_SECONDS["blood_pressure"]
    assert step.seconds_left(100.5) == WAIT_SECONDS["blood_pressure"]  # rounds up
    step.tick(100.0 + WAIT_SECONDS["blood_pressure"] - 1)
    assert step.state == "waiting"
    step.tick(100.0 + WAIT_SECONDS["blood_pressure"])
    assert step.state == "expired" and step.seconds_left(1e9) == 0


def test_a_reading_is_shown_with_its_answers_and_origin() -> None:
    step = DeviceStep("blood_pressure", CUFF, units="metric", started=0.0)
    assert step.offer(_bp(systolic=128, diastolic=82, pulse=70))
    assert step.state == "shown" and step.shown is not None
    assert step.shown.answers == {"systolic": 128, "diastolic": 82}
    assert step.shown.pulse == 70 and step.shown.advice("en") == []
    assert step.device() == {"kind": "blood_pressure", "manufacturer": "Acme", "model": "BP-1",
                             "serial": "123"}


def test_status_bits_bring_advice_in_the_members_language() -> None:
    step = DeviceStep("blood_pressure", CUFF, units="metric", started=0.0)
    step.offer(_bp(systolic=128, diastolic=82, status=("cuff_too_loose",)))
    assert step.shown is not None
    assert step.shown.advice("es")[1].startswith("El brazalete está demasiado flojo")
    assert step.shown.advice("en")[1].startswith("The cuff is too loose")


def test_kpa_is_shown_in_mmhg() -> None:
    step = DeviceStep("blood_pressure", CUFF, units="metric", started=0.0)
    step.offer(_bp(systolic="16.0", diastolic="10.7", unit="kPa"))
    assert step.shown is not None and step.shown.answers == {"systolic": 120, "diastolic": 80}


def test_wrong_user_is_refused_and_never_shown() -> None:
    step = DeviceStep("blood_pressure", CUFF, units="metric", started=0.0)
    assert step.offer(_bp(systolic=150, diastolic=95, user_id=2))
    assert step.state == "refused" and step.shown is None
    assert step.refusal_args == {"user": "2", "ours": "1"}
    step.again(5.0)
    assert step.state == "waiting"
    assert step.offer(_bp(systolic=150, diastolic=95, user_id=0xFF))  # "unknown user" is fine
    assert step.state == "shown"


def test_garbled_is_refused_naming_the_field() -> None:
    step = DeviceStep("blood_pressure", CUFF, units="metric", started=0.0)
    assert step.offer(DeviceEvent("blood_pressure", "refused", CUFF_ADDRESS, CUFF_INFO,
                                  field="systolic", message="NaN"))
    assert step.state == "refused" and step.refusal_args == {"field": "systolic"}


def test_other_devices_and_a_second_reading_are_ignored() -> None:
    step = DeviceStep("blood_pressure", CUFF, units="metric", started=0.0)
    other = DeviceEvent("blood_pressure", "reading", "AA:BB:CC:DD:EE:FF", CUFF_INFO,
                        reading=bp_reading(200, 130))
    assert not step.offer(other) and step.state == "waiting"
    step.offer(_bp(systolic=128, diastolic=82))
    assert not step.offer(_bp(systolic=180, diastolic=110))
    assert step.shown is not None and step.shown.answers["systolic"] == 128


def test_scale_in_each_unit_system_to_its_resolution() -> None:
    feature = WeightScaleFeature(weight_resolution=3, height_resolution=2)
    event = DeviceEvent("weight", "reading", SCALE_ADDRESS, SCALE_INFO,
                        reading=weight_reading("81.63", "1.781"), feature=feature)
    metric = DeviceStep("weight", SCALE, units="metric", started=0.0)
    metric.offer(event)
    assert metric.shown is not None
    # 0.1 kg steps: 81.6; 0.005 m steps: 1.780 m = 178 cm.
    assert metric.shown.answers == {"weight_kg": 81.6, "height_cm": 178}
    imperial = DeviceStep("weight", SCALE, units="imperial", started=0.0)
    imperial.offer(event)
    assert imperial.shown is not None
    # 81.6 kg / 0.45359237 = 179.9 lb; 178.0 cm / 2.54 = 70.1 in.
    assert imperial.shown.answers == {"weight_lb": 179.9, "height_in": 70.1}
    assert Decimal(str(imperial.shown.answers["weight_lb"])) == Decimal("179.9")
