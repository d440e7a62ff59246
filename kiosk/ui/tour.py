"""The tour: every screen, with demo answers, in English then Spanish, saved as screenshots.

``onsite-kiosk --tour DIR`` runs this in an offscreen window. It taps real buttons through
the window, as a member would: it signs in as the first demo member (E1001), takes the quick
check-up with answers that raise the offer of the PHQ-9 (accepted), then results, the referral
offer (by email, typed on the email pad), booking and the QR codes. A second, anonymous visit
takes the PHQ-9 alone with item 9 answered "Several days": the crisis screen, then the results
of a visit that raised a crisis. With no server it takes the offline journey (the sign-in waits
for the server; booking and the codes say they need the connection). The crisis visit is never
sent: the tour's backend drops everything of it, and every crisis item and alert.
Screenshots are ``<lang>-<nn>-<screen>.png``, nn counting from 01 within each language; a
second look at a screen has a name of its own (``referral_email``, ``crisis_results``).
With ``--simulated-devices`` the blood pressure and weight come from the simulated Bluetooth
cuff and scale (``device_cuff_wait``, ``device_cuff_advice`` for a "cuff too loose" reading,
``device_cuff_reading``, ``device_scale_wait``, ``device_scale_reading``), and admin mode's
``admin_devices`` screen forgets, finds and pairs the cuff again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from ..backend import Backend, Identity, SyncStatus
from .devices import DEVICE_QUESTIONS
from .driver import Driver
from .lang import tr

DEMO_MEMBER = "E1001"
DEMO_BIRTH_DATE = "03141985"  # onsite_server/demo.py: 1985-03-14, typed month, day, year
ADMIN_PIN = "2468"
# Keys of the email pad, one by one; example.com is set aside for documentation (RFC 2606).
DEMO_EMAIL_KEYS = (*"ana.demo@example", ".com")

# Demo answers by instrument and question; None means "Prefer not to answer".
PHQ9 = {"9": 0, "10": 1}  # mild; no self-harm answer in the member's own visit
CRISIS_PHQ9 = {"9": 1}  # the anonymous crisis visit: item 9 "Several days"
GAD2 = 0
# Height in US units is typed as feet, then inches: 5 ft 6 in.
NUMBERS = {"systolic": "152", "diastolic": "96", "height_in": "5", "weight_lb": "180",
           "age": "47"}
CHOICES = {"sex": "male"}


class NoCrisisBackend:
    """The tour's backend: everything passes through except a crisis, which is dropped."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.dropped = 0
        self.drop_all = False  # set for the crisis visit: nothing of it is sent

    def submit(self, identity: Identity | None, items: Sequence[Mapping[str, Any]],
               *, crisis: bool) -> None:
        """Queue the items, unless they carry a crisis (a demo must not alarm anyone)."""
        if crisis or self.drop_all:
            self.dropped += len(items)
            return
        self.inner.submit(identity, items, crisis=crisis)

    def crisis_alert(self, trigger: Literal["phq9_item9", "hypertensive_crisis"]) -> None:
        """Dropped: no alert reaches the dashboard from a demo."""
        self.dropped += 1

    def status(self) -> SyncStatus:
        """The inner status, with what was dropped still counted as unsent: the results of a
        crisis visit must not say that staff were told when nothing reached them."""
        status: SyncStatus = self.inner.status()
        return replace(status, outbox_depth=status.outbox_depth + self.dropped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Tour:
    """Walks the screens and names the screenshots."""

    def __init__(self, driver: Driver, out: Path, *, online: bool,
                 log: Callable[[str], None] = print, quiet: NoCrisisBackend | None = None,
                 devices: Any = None, read_aloud: bool = False) -> None:
        self.d = driver
        self.devices = devices  # a DeviceBridge over the simulated cuff and scale, or None
        self.read_aloud = read_aloud  # also save what the speaker button says (issue 19)
        self.spoken: list[Path] = []
        self.quiet = quiet
        self.crisis_visit = False
        self.out = out
        self.online = online
        self.log = log
        self.taken: list[Path] = []
        self.language = "en"
        self.count = 0
        self.shown: set[str] = set()

    def shot(self, name: str | None = None) -> None:
        """Save the screen on show as the next screenshot of this language.

        One screenshot per screen and language (the pinned contract): a screen met again in
        the same language (a second question, the booking's confirmation) is not saved again,
        unless it is a different look at it with a name of its own.
        """
        name = name or self.d.screen().name
        if name in self.shown:
            return
        self.shown.add(name)
        self.count += 1
        path = self.out / f"{self.language}-{self.count:02d}-{name}.png"
        self.d.screenshot(path)
        self.taken.append(path)
        if self.read_aloud:
            self.spoken.append(self.d.app.write_speech(path.with_suffix(".wav")))

    def expect(self, screen: str) -> None:
        """Check the tour is where it should be."""
        self.d.pump(2)
        if self.d.screen().name != screen:
            raise RuntimeError(f"the tour expected the {screen} screen, "
                               f"found {self.d.screen().name}")

    def run(self) -> list[Path]:
        """Both languages; return the screenshots written."""
        for language in ("en", "es"):
            self.language = language
            self.count = 0
            self.shown = set()
            self.visit()
            self.crisis()
            self.admin()
        return self.taken

    def visit(self) -> None:
        """One member's visit in the current language."""
        d = self.d
        self.expect("attract")
        if self.language != d.app.visit.language:
            d.tap_id("language")
        self.shot()
        d.tap_id("start")
        self.expect("privacy")
        self.shot()
        d.tap_id("accept")
        self.expect("identify")
        self.sign_in()
        self.expect("menu")
        self.shot()
        d.tap_id("checkup")
        self.questions()
        self.expect("results")
        self.shot()
        d.tap_id("next")
        if d.screen().name == "referral":
            self.shot()  # the offer itself, before anything is chosen
            d.tap_id("email")
            d.tap_id("evening")
            d.tap_id("agree")
            pad = d.screen().email_pad
            for key in DEMO_EMAIL_KEYS:
                d.tap_key(key, within=pad.ids.keyboard)
            self.shot("referral_email")
            d.tap(pad.ids.save)
            d.tap_id("next")
        self.expect("menu")
        if not d.app.visit.identified:
            d.tap_id("finish")
        else:
            self.booking()
            self.expect("qr")
            self.shot()
            d.tap_id("done")
        self.expect("done")
        self.shot()
        d.tap_id("end")
        self.expect("attract")

    def crisis(self) -> None:
        """An anonymous visit: the PHQ-9 alone, item 9 "Several days"; crisis, then results.

        Nothing of this visit is sent (the backend drops it all), so no one is alarmed.
        """
        d = self.d
        self.crisis_visit = True
        if self.quiet is not None:
            self.quiet.drop_all = True
        try:
            self.expect("attract")
            # The last visit ended in the home language: the crisis visit takes the tour's.
            if self.language != d.app.visit.language:
                d.tap_id("language")
            if d.app.visit.language != self.language:
                raise RuntimeError(f"the crisis visit is in {d.app.visit.language}, "
                                   f"not {self.language}")
            d.tap_id("start")
            self.expect("privacy")
            d.tap_id("accept")
            self.expect("identify")
            d.tap_id("anonymous")
            self.expect("menu")
            d.tap_id("single")
            d.tap_text(d.app.visit.instrument_title("phq9"), within=d.screen().ids.screeners)
            self.questions()
            self.expect("results")
            self.shot("crisis_results")
            d.tap_id("next")
            self.expect("menu")
            d.tap_id("finish")
            self.expect("done")
            d.tap_id("end")
            self.expect("attract")
        finally:
            self.crisis_visit = False
            if self.quiet is not None:
                self.quiet.drop_all = False

    def sign_in(self) -> None:
        """Type the demo member's id and birth date on the keypad, masked."""
        d = self.d
        screen = d.screen()
        for ch in DEMO_MEMBER:
            if ch.isalpha() != screen.letters:
                d.tap_text(tr._("ABC") if ch.isalpha() else "123", within=screen.ids.keypad)
            d.tap_text(ch, within=screen.ids.keypad)
        d.tap_id("dob_field")
        for ch in DEMO_BIRTH_DATE:
            d.tap_text(ch, within=screen.ids.keypad)
        self.shot()
        d.tap_id("submit")
        if d.screen().name == "identify":
            self.log("tour: the sign-in did not go through; continuing without signing in")
            d.tap_id("anonymous")

    def questions(self) -> None:
        """Answer the check-up; screenshot the first question, a number, and the crisis."""
        d = self.d
        shot_question = False
        for _step in range(200):  # bounded: a check-up has far fewer questions than this
            if d.screen().name not in ("question", "crisis", "offer"):
                return
            screen = d.screen()
            if screen.name == "offer":
                self.shot()
                d.tap_id("accept")
                continue
            if screen.name == "crisis":
                self.shot()
                self.close_crisis()
                continue
            journey = d.app.visit.journey
            link = journey.question
            spec = journey.question_spec()
            if self.devices is not None and link in DEVICE_QUESTIONS and \
                    self.devices.step is not None:
                self.from_device(DEVICE_QUESTIONS[link])
                continue
            if spec.get("type") in ("integer", "decimal"):
                if link.startswith(("height", "weight")) and journey.units != "imperial":
                    d.tap_id("imperial")
                    continue
                for ch in NUMBERS.get(link, str(spec.get("min", 1))):
                    d.tap_text(ch, within=screen.ids.numpad)
                if link == "height_in":
                    d.tap_id("enter")  # the feet; then the inches
                    d.tap_text("6", within=screen.ids.numpad)
                    self.shot("question_height")
                d.tap_id("enter")
                continue
            if not shot_question:
                self.shot()
                shot_question = True
            buttons = screen.answer_buttons
            values = [value for value, _text in d.app.visit.options()]
            wanted = self.choice(journey.instrument, link, values)
            d.tap(buttons[values.index(wanted)])
        raise RuntimeError("the tour's check-up never ended")

    def from_device(self, kind: str) -> None:
        """The simulated cuff or scale measures; its screens are saved; the reading is used.

        The cuff's first reading comes with the "cuff too loose" bit (its advice shows), then
        the member measures again and uses the clean reading (the check-up's 152/96).
        """
        from kiosk.devices.simulator import bp_reading, weight_reading
        from shared.devices import encode_blood_pressure, encode_weight

        d, bridge = self.d, self.devices
        simulator = bridge.host.simulator
        bridge.host.call(simulator.wait_subscribed(kind)).result(30)
        panel = bridge.panel
        name = "device_cuff" if kind == "blood_pressure" else "device_scale"
        if kind == "weight" and d.app.visit.journey.units != "imperial":
            d.tap_id("type_instead")  # not reached: the tour switched to US units before
            return
        self.shot(f"{name}_wait")
        sim = simulator.device(kind)
        if kind == "blood_pressure":
            sim.queue.append(encode_blood_pressure(bp_reading(
                int(NUMBERS["systolic"]) + 4, int(NUMBERS["diastolic"]) + 2, 80,
                status=("cuff_too_loose",))))
            bridge.host.call(sim.press_start()).result(30)
            d.wait_for(lambda: panel.state == "shown", frames=2000)
            self.shot(f"{name}_advice")
            d.tap_id("measure_again")
            sim.queue.append(encode_blood_pressure(bp_reading(
                int(NUMBERS["systolic"]), int(NUMBERS["diastolic"]), 78)))
        else:
            # 180 lb = 81.647 kg: the scale weighs in kg; the kiosk shows pounds.
            sim.queue.append(encode_weight(weight_reading("81.65")))
        bridge.host.call(sim.press_start()).result(30)
        d.wait_for(lambda: panel.state == "shown", frames=2000)
        self.shot(f"{name}_reading")
        d.tap_id("use_reading")

    def close_crisis(self) -> None:
        """Close the crisis screen in its two steps (the second shows at the top, a moment
        after the first: issue 15)."""
        d = self.d
        d.tap_id("close")
        d.wait_for(lambda: not d.find("confirm").disabled, frames=2000)
        d.tap_id("confirm")

    def choice(self, instrument: str, link: str, values: list[object]) -> object:
        """The demo answer: PHQ-2 positive, PHQ-9 mild (item 9 only in the crisis visit)."""
        if instrument == "phq2":
            return 2
        if instrument == "phq9":
            return (CRISIS_PHQ9 if self.crisis_visit else PHQ9).get(link, 1)
        if instrument == "gad2":
            return GAD2
        if link in CHOICES:
            return CHOICES[link]
        if True in values:
            return link in ("family_history",)
        return values[0]

    def booking(self) -> None:
        """Events, then a slot; offline, booking says it needs the connection."""
        d = self.d
        d.tap_id("booking")
        self.expect("booking")
        screen = d.screen()
        self.shot()
        if screen.offline:
            d.tap_id("follow_up")
            d.tap_id("back")
            self.expect("menu")
            d.tap_id("advocate")
            return
        events = d.app.visit.events()
        if not events:
            d.tap_id("back")
            d.tap_id("advocate")
            return
        # A different event per language: the server takes one booking per member and event.
        event = events[min(len(events) - 1, 0 if self.language == "en" else 1)]
        d.tap_text(d.app.visit.event_title(event), within=screen.ids.entries)
        slots = d.app.visit.slots()
        if not slots:
            d.tap_id("back")
            d.tap_id("advocate")
            return
        self._tap_slot(slots[0])
        self.shot("booking_confirm")  # what, when, where, and a plain yes or no
        d.tap(d.screen().confirm_button)
        if d.screen().name == "booking":
            d.tap_id("back")
            self.expect("menu")
            d.tap_id("advocate")

    def _tap_slot(self, slot: Any) -> None:
        for child in self.d.screen().ids.entries.children:
            if getattr(child, "slot_id", None) == slot.id:
                self.d.tap(child)
                return
        raise RuntimeError("the slot's button is not on the booking screen")

    def admin_devices(self) -> None:
        """The cuffs and scales screen: the cuff is forgotten (a connected device does not
        advertise), found by a search and paired again, as staff would; back to admin."""
        d = self.d
        d.tap_id("devices")
        self.expect("admin_devices")
        screen = d.screen()
        d.tap_id("forget_cuff")
        simulator = self.devices.host.simulator
        deadline = time.monotonic() + 30
        while simulator.cuff.device.connections and time.monotonic() < deadline:
            d.pump(1)
            time.sleep(0.02)
        d.tap_id("scan")
        deadline = time.monotonic() + 30
        while (screen.scanning or not screen.ids.found.children) and \
                time.monotonic() < deadline:
            d.pump(1)
            time.sleep(0.02)
        self.shot()
        d.tap(screen.ids.found.children[-1])  # the first found: the cuff
        d.wait_for(lambda: self.devices.pairing("blood_pressure") is not None)
        d.tap_id("back_to_admin")
        self.expect("admin")

    def admin(self) -> None:
        """The hidden gesture, the PIN, the admin and pairing screens; then the attract screen."""
        d = self.d
        for _ in range(5):
            d.tap_id("corner")
        self.expect("admin_pin")
        self.shot()
        for ch in ADMIN_PIN:
            d.tap_text(ch, within=d.screen().ids.pad)
        d.tap_id("ok")
        self.expect("admin")
        self.shot()
        if self.devices is not None:
            self.admin_devices()
        d.tap_id("pairing")  # the pairing screen, as staff would open it; left unchanged
        self.expect("setup")
        self.shot()
        d.tap_id("leave")
        self.expect("attract")
