"""Cuffs and scales on the kiosk's screens: the bridge from the BLE host to Kivy, the panel
the blood-pressure and weight questions show, and the admin screen that pairs devices.

The question screen asks ``show_device_panel`` whether its question is a device's (systolic:
the cuff; weight: the scale) and a device of that kind is paired here; if so the panel stands
where the number pad would: a picture, "Put the cuff on and press its start button", a
countdown, then the reading for the member to confirm, with advice for any status bit. "Type
it instead" is there all along and brings the number pad back for that question.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.app import App
from kivy.clock import Clock
from kivy.factory import Factory
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.devices.events import DeviceEvent, Found, Pairing
from kiosk.devices.measure import DeviceStep
from kiosk.devices.pairings import PairingStore
from shared.i18n import N_
from shared.paths import assets_dir

from .base import KV_DIR, KioskScreen, load_kv
from .lang import tr

if TYPE_CHECKING:
    from kiosk.devices.host import DeviceHost

__all__ = ["DEVICE_QUESTIONS", "DeviceBridge", "DevicePanel", "DevicesScreen",
           "show_device_panel"]

# The question a device answers, and which device: the cuff gives systolic and diastolic
# together; the scale gives the weight (the height was typed before it).
DEVICE_QUESTIONS = {"systolic": "blood_pressure", "weight_kg": "weight", "weight_lb": "weight"}
KIND_NAMES = {"blood_pressure": N_("Blood pressure cuff"), "weight": N_("Scale")}
SCAN_SECONDS = 4.0


class DeviceBridge:
    """The kiosk's BLE host and its pairings, seen from Kivy's thread.

    Events from the host's thread are handed to Kivy's (``Clock.schedule_once``); the step on
    screen takes them, and the panel is redrawn. ``drawn`` (when set) is told, at the frame that
    shows a reading, the ``perf_counter`` of the indication behind it (the bench's figure).
    """

    def __init__(self, host_factory: Callable[[Callable[[DeviceEvent], None]], DeviceHost],
                 store: PairingStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host_factory(self._from_host)
        self.store = store
        self.clock = clock
        self.step: DeviceStep | None = None
        self.asked: tuple[str, ...] | None = None
        self.typing: set[tuple[str, ...]] = set()  # questions the member chose to type
        self.panel: DevicePanel | None = None
        self.drawn: Callable[[float], None] | None = None
        # The demo's simulated devices "measure" by themselves this many seconds into a wait.
        self.auto_press: float | None = None
        self._ticker: Any = None
        self.connected: set[str] = set()  # addresses whose link is up now (admin mode shows it)

    @classmethod
    def simulated(cls, store: PairingStore) -> DeviceBridge:
        """A bridge over the simulated cuff and scale (the tour, the tests, the demo)."""
        from kiosk.devices.host import DeviceHost  # bumble: only when devices are used

        return cls(lambda on_event: DeviceHost(on_event, simulated=True), store)

    @classmethod
    def usb(cls, transport: str, store: PairingStore) -> DeviceBridge:
        """A bridge over a real controller (``usb:0``, ``hci-socket:0``, ...)."""
        from kiosk.devices.host import DeviceHost  # bumble: only when devices are used

        return cls(lambda on_event: DeviceHost(on_event, transport=transport), store)

    def start(self) -> None:
        """Start the host and keep every remembered device connected."""
        self.host.start()
        for pairing in self.store.load().values():
            self.host.watch(pairing)

    def stop(self) -> None:
        """Stop the host's thread."""
        self.host.stop()

    def pairing(self, kind: str) -> Pairing | None:
        """The device of ``kind`` paired with this kiosk, if any."""
        return self.store.load().get(kind)

    def pair(self, found: Found) -> None:
        """Remember ``found`` for its kind (replacing the previous one) and keep it connected."""
        previous = self.pairing(found.kind)
        if previous is not None and previous.address != found.address:
            self.host.unwatch(previous.address)
        pairing = Pairing(found.kind, found.address, found.name)
        self.store.save(pairing)
        self.host.watch(pairing)

    def forget(self, kind: str) -> None:
        """Forget this kind's device."""
        previous = self.pairing(kind)
        if previous is not None:
            self.host.unwatch(previous.address)
        self.store.forget(kind)

    # -- one wait on the question screen --------------------------------------------------

    def begin(self, kind: str, asked: tuple[str, ...], units: str) -> DeviceStep:
        """Start waiting for ``kind`` on the question ``asked``."""
        pairing = self.pairing(kind)
        assert pairing is not None
        self.step = DeviceStep(kind, pairing, units=units, started=self.clock())
        self.asked = asked
        if self._ticker is None:
            self._ticker = Clock.schedule_interval(lambda _dt: self._tick(), 0.5)
        if self.auto_press is not None and self.host.simulator is not None:
            simulator, step = self.host.simulator, self.step
            Clock.schedule_once(lambda _dt: self.step is step and self.host.call(
                simulator.device(kind).press_start()), self.auto_press)
        return self.step

    def end(self) -> None:
        """No device wait on screen any more; nothing of a reading stays on the panel."""
        self.step, self.asked = None, None
        if self.panel is not None:
            self.panel.clear()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _tick(self) -> None:
        step, panel = self.step, self.panel
        app = App.get_running_app()
        if step is None or panel is None or panel.parent is None or app is None:
            return
        if app.admin_mode or app.visit.screen != "question" or \
                (app.visit.journey.question or "") != (self.asked or ("", "", ""))[2]:
            self.end()  # the visit moved on (ended, timed out, went back): stop waiting
            return
        if step.state == "waiting":
            app.visit.touch()  # measuring is not idling: no idle countdown over the cuff
        step.tick(self.clock())
        panel.update(step)

    def _from_host(self, event: DeviceEvent) -> None:
        # The host's thread: hand over to Kivy's (what kivy.clock.mainthread does).
        Clock.schedule_once(lambda _dt: self._deliver(event))

    def _deliver(self, event: DeviceEvent) -> None:
        if event.what == "connected":
            self.connected.add(event.address)
        elif event.what == "disconnected":
            self.connected.discard(event.address)
        step, panel = self.step, self.panel
        if step is None or not step.offer(event):
            return
        if panel is not None and panel.parent is not None:
            panel.update(step)
            if event.what == "reading" and self.drawn is not None:
                drawn, received = self.drawn, event.received
                from kivy.core.window import Window

                def on_flip(*_args: Any) -> None:
                    Window.unbind(on_flip=on_flip)
                    drawn(received)
                Window.bind(on_flip=on_flip)


class DevicePanel(BoxLayout):  # type: ignore[misc]
    """What stands in the number pad's place while a device is awaited or its reading shown."""

    state = StringProperty("waiting")
    picture = StringProperty("")
    instruction = StringProperty("")
    status_text = StringProperty("")
    advice_text = StringProperty("")
    can_use = BooleanProperty(False)
    warning = BooleanProperty(False)  # the advice is about status bits, not the plain question

    def update(self, step: DeviceStep) -> None:
        """Show ``step`` in the visit's language."""
        app = App.get_running_app()
        language = app.visit.language
        cuff = step.kind == "blood_pressure"
        self.state = step.state
        self.picture = str(assets_dir() / "kiosk" / "images" /
                           ("device_cuff.png" if cuff else "device_scale.png"))
        self.instruction = "" if step.state == "shown" else (
            tr._("Put the cuff on and press its start button.") if cuff else
            tr._("Step on the scale and stand still."))
        self.can_use = step.state == "shown"
        self.advice_text = ""
        self.warning = False
        if step.state == "waiting":
            seconds = step.seconds_left(app.visit.clock())
            self.status_text = (tr._("Waiting for the cuff: {n} s") if cuff else
                                tr._("Waiting for the scale: {n} s")).format(n=seconds)
        elif step.state == "expired":
            self.status_text = tr._("No reading came from the cuff.") if cuff else \
                tr._("No reading came from the scale.")
        elif step.state == "refused":
            self.status_text = tr._(step.refusal).format(**step.refusal_args)
        elif step.shown is not None:
            shown = step.shown
            if cuff:
                words = tr._("Your reading: {systolic}/{diastolic} mmHg").format(
                    systolic=shown.answers["systolic"], diastolic=shown.answers["diastolic"])
                if shown.pulse is not None:
                    words += ", " + tr._("pulse {pulse}").format(pulse=shown.pulse)
            else:
                unit = "kg" if "weight_kg" in shown.answers else "lb"
                words = tr._("Your weight: {weight} {unit}").format(
                    weight=f"{shown.answers['weight_' + unit]:g}", unit=unit)
            self.status_text = words
            self.advice_text = "\n".join(shown.advice(language))
            self.warning = bool(self.advice_text)
            if not self.warning:
                self.advice_text = tr._("Is this right? It is kept only if you use it.")
        # Read-aloud (issue 19): a reading that arrives is news to a member listening.
        read_screen = getattr(app, "read_screen", None)
        if callable(read_screen):
            read_screen()

    def clear(self) -> None:
        """Forget what was shown (a reading is the member's: it does not outlive the wait)."""
        self.state, self.status_text, self.advice_text = "waiting", "", ""
        self.can_use = self.warning = False

    def use(self) -> None:
        """"Use this reading": answer the questions it gives, noting the device."""
        app = App.get_running_app()
        bridge: DeviceBridge = app.devices
        step = bridge.step
        if step is None or step.shown is None:
            return
        answers, device = dict(step.shown.answers), step.device()
        bridge.end()
        app.do(app.visit.questions.answer_from_device, answers, device)

    def again(self) -> None:
        """"Measure again": wait for a new reading."""
        app = App.get_running_app()
        bridge: DeviceBridge = app.devices
        if bridge.step is not None:
            bridge.step.again(bridge.clock())
            app.hold_input()
            self.update(bridge.step)

    def type_instead(self) -> None:
        """"Type it instead": the number pad for this question, no more waiting."""
        app = App.get_running_app()
        bridge: DeviceBridge = app.devices
        if bridge.asked is not None:
            bridge.typing.add(bridge.asked)
        bridge.end()
        app.sync()


def show_device_panel(screen: Any) -> bool:
    """Show the device panel on the question screen if this question is a paired device's."""
    bridge: DeviceBridge | None = getattr(screen.app, "devices", None)
    visit = screen.visit
    journey = visit.journey
    kind = DEVICE_QUESTIONS.get(journey.question or "")
    # Keyed by when the question screen was entered too: back on it from the menu, the member
    # is offered the device again.
    asked = (visit.session_id, journey.instrument or "", journey.question or "",
             str(journey.screen_since))
    if bridge is None:
        return False
    wanted = kind is not None and asked not in bridge.typing and bridge.pairing(kind) is not None
    if kind is None:
        bridge.typing.clear()  # "type it instead" holds for that question, while it is asked
    if not wanted:
        _hide_device_panel(bridge)
        return False
    assert kind is not None
    _put_device_panel(screen, bridge, kind, asked)
    return True


def _hide_device_panel(bridge: DeviceBridge) -> None:
    """No device for this question: end any wait, and take the panel off the page."""
    panel = bridge.panel
    if bridge.step is not None:
        bridge.end()
    if panel is not None and panel.parent is not None:
        panel.parent.remove_widget(panel)


def _put_device_panel(screen: Any, bridge: DeviceBridge, kind: str,
                      asked: tuple[str, str, str, str]) -> None:
    """The panel on the question screen's page, above Skip, waiting for this question."""
    panel = bridge.panel
    if panel is None:
        load_kv(KV_DIR / "device.kv")
        panel = bridge.panel = Factory.DevicePanel()
    if bridge.step is None or bridge.asked != asked:
        bridge.begin(kind, asked, screen.visit.journey.units)
    page = screen.ids.page
    if panel.parent is None:
        page.add_widget(panel, index=page.children.index(screen.ids.skip) + 1)
    assert bridge.step is not None
    panel.update(bridge.step)


class DevicesScreen(KioskScreen):
    """Admin mode: the cuff and scale paired with this kiosk; find and pair, or forget."""

    kv_name = "devices_admin"
    paired_text = StringProperty("")
    scanning = BooleanProperty(False)
    found_text = StringProperty("")

    def refresh(self) -> None:
        """List what is paired, and what the last scan found as buttons."""
        bridge: DeviceBridge | None = self.app.devices
        if bridge is None:
            self.paired_text = tr._("Bluetooth devices are off on this kiosk.")
            return
        lines = []
        for kind in ("blood_pressure", "weight"):
            pairing = bridge.pairing(kind)
            state = "" if pairing is None else ", " + (
                tr._("connected") if pairing.address in bridge.connected else
                tr._("not connected"))
            lines.append(f"{tr._(KIND_NAMES[kind])}: " + (
                f"{pairing.name or pairing.address} ({pairing.address}{state})" if pairing
                else tr._("none")))
        self.paired_text = "\n".join(lines)

    def scan(self) -> None:
        """Look for cuffs and scales for a few seconds; list them as buttons to pair."""
        bridge: DeviceBridge | None = self.app.devices
        if bridge is None or self.scanning:
            return
        self.scanning = True
        self.found_text = tr._("Looking for cuffs and scales...")
        self.ids.found.clear_widgets()
        future = bridge.host.call(bridge.host.scan(SCAN_SECONDS))
        future.add_done_callback(
            lambda done: Clock.schedule_once(lambda _dt: self._scanned(done)))

    def _scanned(self, done: Any) -> None:
        self.scanning = False
        try:
            found: list[Found] = done.result()
        except Exception as exc:  # noqa: BLE001 - a dongle gone missing is shown, not raised
            self.found_text = tr._("The search did not work: {reason}").format(reason=exc)
            return
        self.found_text = tr._("Found {n}. Tap one to pair it.").format(n=len(found)) \
            if found else tr._("No cuff or scale found. Is it on and in pairing mode?")
        box = self.ids.found
        box.clear_widgets()
        for item in found:
            button = Factory.SecondaryButton(
                text=f"{tr._(KIND_NAMES[item.kind])}: {item.name or '?'} ({item.address})")
            button.bind(on_release=lambda _b, chosen=item: self._pair(chosen))
            box.add_widget(button)

    def _pair(self, found: Found) -> None:
        self.app.devices.pair(found)
        self.found_text = tr._("Paired: {name}").format(name=found.name or found.address)
        self.refresh()

    def forget(self, kind: str) -> None:
        """Forget the cuff or the scale."""
        if self.app.devices is not None:
            self.app.devices.forget(kind)
        self.refresh()


def pairing_store(data_dir: Path) -> PairingStore:
    """The kiosk's remembered devices, in its data folder."""
    return PairingStore(data_dir / "devices.json")
