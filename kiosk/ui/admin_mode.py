"""Admin mode of the kiosk app: pairing, the admin PIN, the sync status, the home language.

A part of ``KioskApp`` (kiosk/ui/app.py), kept apart because it is its own concern: while
``admin_mode`` is on, the member's screens are not shown and the visit does not move. The
admin screens (kiosk/ui/screens/admin.py, kiosk/ui/devices.py) call these methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.i18n import LANGUAGES, NATIVE_NAMES

from ..admin import AdminLock, PinLocked
from ..backend import Backend, Offline, Refused, SyncStatus
from .lang import tr

if TYPE_CHECKING:  # the visit imports pydantic: after the first frame (kiosk/ui/app.py)
    from ..speech.reader import ReadAloud
    from ..visit import Visit


class AdminMode:
    """Admin mode and setup, over the app's backend and admin lock."""

    # What KioskApp holds (kiosk/ui/app.py); its backend and visit are built on first use.
    admin: AdminLock

    @property
    def backend(self) -> Backend:
        """The kiosk's backend (KioskApp's)."""
        raise NotImplementedError

    @property
    def visit(self) -> Visit:
        """The member's visit (KioskApp's)."""
        raise NotImplementedError

    read_aloud: ReadAloud
    manager: Any
    on_pair: Callable[[str, str], None] | None
    require_setup: bool
    admin_mode: bool
    can_leave_setup: bool
    home_language_name: str
    sync: Callable[[], None]
    show: Callable[[str], None]
    _hide_countdown: Callable[[], None]

    def backend_status(self) -> SyncStatus | None:
        """The backend's sync status (None when it cannot say)."""
        try:
            return self.backend.status()
        except (Offline, OSError):
            return None

    def open_admin(self) -> None:
        """The hidden gesture was made: ask for the PIN."""
        self.visit.end()
        self._show_admin("admin_pin")

    def open_setup(self) -> None:
        """Pairing (first start, or from the admin screen)."""
        self.can_leave_setup = self._ready()
        self._show_admin("setup")

    def _show_admin(self, name: str) -> None:
        self.admin_mode = True
        self.read_aloud.interrupt()
        self._hide_countdown()
        if self.manager is not None:
            if self.manager.current == name:
                self.manager.current_screen.refresh()
            self.show(name)

    def close_admin(self) -> None:
        """Back to the member's side (the attract screen), or setup while unpaired."""
        if not self._ready():
            self.open_setup()
            return
        self.admin_mode = False
        self.visit.end()
        self.sync()

    def check_pin(self, pin: str) -> str:
        """Open the admin screen for the right PIN; return the words for a wrong one."""
        try:
            if self.admin.check(pin):
                self._show_admin("admin")
                return ""
            wait = self.admin.locked_for()  # this failure may have been the last allowed
        except PinLocked as exc:
            wait = exc.seconds
        if wait > 0:
            return tr._("Too many wrong PINs. Try again in {n} seconds.").format(
                n=int(wait + 0.999))
        return tr._("That PIN is not right.")

    def pair(self, url: str, code: str, pin: str) -> str:
        """Pair with a server and set the admin PIN; return what went wrong, or ''."""
        if not url or not code:
            return tr._("Please type the server address and the pairing code.")
        if not (pin.isdigit() and 4 <= len(pin) <= 8):
            return tr._("The PIN must be 4 to 8 numbers.")
        refused = self.pair_only(url, code)
        if refused:
            return refused
        self.admin.set_pin(pin)
        self.admin_mode = False
        self.can_leave_setup = True
        self.sync()
        return ""

    def pair_only(self, url: str, code: str) -> str:
        """Pair with a server, the PIN to be chosen next (a scanned QR); return what went wrong."""
        try:
            if self.on_pair is not None:
                self.on_pair(url, code)
            else:
                self.backend.pair(url, code)
        except Offline:
            return tr._("The server did not answer. Check the address and the network.")
        except Refused as exc:
            return tr._("The server refused the pairing: {reason}").format(reason=exc.reason)
        return ""

    def set_first_pin(self, pin: str) -> str:
        """Set the admin PIN of a kiosk paired from the command line; return what went wrong."""
        if not (pin.isdigit() and 4 <= len(pin) <= 8):
            return tr._("The PIN must be 4 to 8 numbers.")
        self.admin.set_pin(pin)
        self.admin_mode = False
        self.can_leave_setup = True
        self.sync()
        return ""

    def sync_now(self) -> None:
        """Ask the sync worker to try at once."""
        self.backend.sync_now()
        if self.manager is not None:
            self.manager.current_screen.refresh()

    def toggle_home_language(self) -> None:
        """The language a fresh visit starts in."""
        journey = self.visit.journey
        journey.home_language = LANGUAGES[(LANGUAGES.index(journey.home_language) + 1)
                                          % len(LANGUAGES)]
        journey.language = journey.home_language
        self.admin.set_default_language(journey.home_language)
        self.home_language_name = NATIVE_NAMES[journey.home_language]
        tr.switch(journey.language)

    def _ready(self) -> bool:
        if not self.require_setup:
            return True
        status = self.backend_status()
        return bool(status is not None and status.paired and self.admin.is_set())

