"""Admin mode: pairing with a server, the admin PIN, and the sync status."""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.core.window import Window
from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from shared.schemas.pairing import PairingQr

from ..base import KioskScreen


class SetupScreen(KioskScreen):
    """First start, or admin: pair with a server (URL and code) and set the admin PIN.

    Three cases: not paired (address, code and PIN); paired from the command line but with no
    PIN yet (the PIN only: the code was used already); staff pairing again (empty fields).
    """

    kv_name = "setup"
    message = StringProperty("")
    paired = BooleanProperty(False)
    pin_only = BooleanProperty(False)
    _scan = ""  # what the keyboard (or a USB scanner, which types like one) typed since Enter
    _pin_next = False  # paired by a scan just now: the PIN is chosen next, even when one exists

    def on_pre_enter(self, *args: Any) -> None:
        """Start with no code and no PIN: a used code or an old PIN is never shown again."""
        self.ids.code.text = ""
        self.ids.pin.text = ""
        self._scan, self._pin_next = "", False
        Window.bind(on_textinput=self._typed, on_key_down=self._key)
        super().on_pre_enter(*args)

    def on_leave(self, *_args: Any) -> None:
        """Stop listening for a scanner."""
        Window.unbind(on_textinput=self._typed, on_key_down=self._key)

    def refresh(self) -> None:
        """Which of the three cases this is."""
        status = self.app.backend_status()
        self.paired = bool(status is not None and status.paired)
        self.pin_only = self.paired and (self._pin_next or not self.app.admin.is_set())
        self.message = ""

    def _typed(self, _window: Any, text: str) -> None:
        # Whatever field has the focus (or none), the scanner's text is seen here too.
        self._scan = (self._scan + text)[-1000:]

    def _key(self, _window: Any, key: int, *_args: Any) -> bool:
        if key not in (13, 271):  # a scanner ends the QR's text with Enter (or keypad Enter)
            return False
        typed, self._scan = self._scan, ""
        found = PairingQr.read(typed[typed.rfind("{"):]) if "{" in typed else None
        if found is None or self.pin_only:
            return False
        self.scanned(found)
        return True

    def scanned(self, qr: PairingQr) -> None:
        """The dashboard's pairing QR was scanned: pair at once, then ask for the admin PIN."""
        self.ids.url.text, self.ids.code.text = qr.server_url, qr.pairing_code
        # A focused PIN field kept the QR's digits (the port): never take them for a PIN.
        self.ids.pin.text = ""
        for field in (self.ids.url, self.ids.code, self.ids.pin):
            field.focus = False
        message = self.app.pair_only(qr.server_url, qr.pairing_code)
        if message:
            self.message = message
            return
        self._pin_next = True
        self.refresh()
        # The cursor waits in the PIN field: type it on the scanner's keyboard, then Enter.
        Clock.schedule_once(lambda _dt: setattr(self.ids.pin, "focus", True), 0.1)

    def pair(self) -> None:
        """Pair with the server and set the PIN (or set the PIN only); say what went wrong."""
        pin = self.ids.pin.text.strip()
        if self.pin_only:
            self.message = self.app.set_first_pin(pin)
            return
        self.message = self.app.pair(self.ids.url.text.strip(), self.ids.code.text.strip(), pin)


class AdminPinScreen(KioskScreen):
    """The admin PIN, on a number pad; locked for a while after repeated failures."""

    kv_name = "admin_pin"
    typed = StringProperty("")
    message = StringProperty("")

    def on_pre_enter(self, *args: Any) -> None:
        """Start empty."""
        self.typed = ""
        self.message = ""
        super().on_pre_enter(*args)

    def on_typed(self, *_args: Any) -> None:
        """The screen clears the PIN (entering, after a try): so does the pad."""
        self.ids.pad.typed = self.typed

    def press(self, key: str) -> None:
        """A key of the PIN pad (as if tapped)."""
        self.ids.pad.press(key)

    def submit(self) -> None:
        """Check the PIN."""
        typed, self.typed = self.typed, ""
        self.message = self.app.check_pin(typed)


class AdminScreen(KioskScreen):
    """Pairing, sync status and outbox depth with the drain's progress, errors, language."""

    kv_name = "admin"
    paired = BooleanProperty(False)
    online = BooleanProperty(False)
    depth = NumericProperty(0)
    progress = NumericProperty(0)
    draining = BooleanProperty(False)
    last_sync = StringProperty("")
    errors = StringProperty("")
    update_required = StringProperty("")  # the version the server needs, when it refused us
    app_version = StringProperty("")

    def refresh(self) -> None:
        """Read the backend's status."""
        status = self.app.backend_status()
        if status is None:
            return
        self.paired, self.online = status.paired, status.online
        self.depth = status.outbox_depth
        self.draining = status.backlog_at_start > 0 and status.outbox_depth > 0
        self.progress = (status.sent_since_backlog / status.backlog_at_start
                         if status.backlog_at_start else 0)
        self.last_sync = status.last_sync_at or ""
        self.errors = "\n".join(status.last_errors[-5:])
        self.update_required = status.update_required or ""
        self.app_version = status.app_version
