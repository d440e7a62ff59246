"""One wait for a device reading in a check-up step: countdown, reading, advice, confirm.

Plain Python, driven by the question screen and tested without a window. The member can type
the reading instead at any time; a reading is kept only when the member confirms it, and a
reading that is refused (garbled, or saved for another user of the cuff) is explained and
never shown as a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kiosk.devices.events import DeviceEvent, Pairing
from shared.devices import (
    UNKNOWN_USER,
    BloodPressureReading,
    DeviceInfo,
    WeightReading,
    status_advice,
)
from shared.i18n import N_

__all__ = ["WAIT_SECONDS", "DeviceStep", "Shown"]

# How long the screen waits for the cuff before offering typing alone: an automatic upper-arm
# cuff inflates, measures and deflates in well under a minute; the member also needs time to
# put it on. (The member can type at any time; this only ends the countdown.)
WAIT_SECONDS = {"blood_pressure": 120.0, "weight": 60.0}


@dataclass(frozen=True)
class Shown:
    """A reading ready for the member to confirm: the answers it gives and how to say them."""

    answers: dict[str, int | float]
    info: DeviceInfo
    pulse: int | None = None
    status: tuple[str, ...] = ()  # the cuff's measurement status codes

    def advice(self, language: str) -> list[str]:
        """Plain advice for the status bits, in ``language`` (nothing for a clean reading)."""
        return status_advice(self.status, language)


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


class DeviceStep:
    """The state of one device wait: "waiting", "shown", "refused" or "expired"."""

    def __init__(self, kind: str, pairing: Pairing, *, units: str, started: float) -> None:
        self.kind = kind
        self.pairing = pairing
        self.units = units  # "metric" or "imperial": the answers' units
        self.started = started
        self.state = "waiting"
        self.shown: Shown | None = None
        self.refusal = ""  # an English msgid with {args}, translated by the screen
        self.refusal_args: dict[str, str] = {}
        self.connected = False

    def seconds_left(self, now: float) -> int:
        """Whole seconds of the countdown left (0 once it ran out)."""
        return max(0, int(WAIT_SECONDS[self.kind] - (now - self.started) + 0.999))

    def tick(self, now: float) -> None:
        """End the wait when the countdown runs out (a reading still on screen stays)."""
        if self.state == "waiting" and self.seconds_left(now) == 0:
            self.state = "expired"

    def again(self, now: float) -> None:
        """"Measure again": forget what was shown and wait anew."""
        self.state, self.shown, self.refusal, self.started = "waiting", None, "", now

    def offer(self, event: DeviceEvent) -> bool:
        """Take an event from the host; True when the screen should change."""
        if event.kind != self.kind or event.address != self.pairing.address:
            return False  # another device's news, or a device not paired here
        if event.what in ("connected", "disconnected"):
            self.connected = event.what == "connected"
            return True
        if self.state == "shown":
            return False  # one reading at a time: the member is looking at one
        if event.what == "refused":
            self.state = "refused"
            self.refusal = N_("The device sent a reading that could not be read. "
                              "Please measure again, or type your numbers.")
            self.refusal_args = {"field": event.field}
            return True
        reading = event.reading
        if event.what != "reading" or reading is None or event.info is None:
            return False
        user = reading.user_id
        if user is not None and user not in (UNKNOWN_USER, self.pairing.user_id):
            self.state = "refused"
            self.refusal = N_("This reading was saved for user {user} of the device, not this "
                              "kiosk's user {ours}. Please measure again, or type your numbers.")
            self.refusal_args = {"user": str(user), "ours": str(self.pairing.user_id)}
            return True
        self.shown = self._shown(reading, event)
        self.state = "shown"
        return True

    def _shown(self, reading: BloodPressureReading | WeightReading,
               event: DeviceEvent) -> Shown:
        assert event.info is not None
        if isinstance(reading, BloodPressureReading):
            systolic, diastolic = reading.mmhg()
            return Shown({"systolic": systolic, "diastolic": diastolic}, event.info,
                         pulse=reading.pulse(), status=reading.status)
        answers: dict[str, int | float] = {}
        if self.units == "metric":
            answers["weight_kg"] = _number(reading.weight_in("kg", event.feature))
            height = reading.height_in("cm", event.feature)
            if height is not None:
                answers["height_cm"] = _number(height)
        else:
            answers["weight_lb"] = _number(reading.weight_in("lb", event.feature))
            height = reading.height_in("in", event.feature)
            if height is not None:
                answers["height_in"] = _number(height)
        return Shown(answers, event.info)

    def device(self) -> dict[str, str]:
        """The device a shown reading came from, as a submission item carries it."""
        assert self.shown is not None
        info = self.shown.info
        return {"kind": info.kind, "manufacturer": info.manufacturer, "model": info.model,
                "serial": info.serial}
