"""KioskScreen: the one base class of the kiosk's screens (after Electrum's CScreen).

A screen knows its kv file and loads it once, before its first instance is built; entering
it (or ``refresh`` from the app after every action) re-reads what it shows from the visit.
Screens hold no member data of their own beyond what is on the glass right now.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, Protocol, cast

from kivy.app import App
from kivy.lang import Builder
from kivy.uix.screenmanager import Screen

from ..admin import AdminLock
from ..backend import SyncStatus

if TYPE_CHECKING:  # the visit imports pydantic: after the first frame (kiosk/ui/app.py)
    from ..visit import Visit

P = ParamSpec("P")

KV_DIR = Path(__file__).resolve().parent / "kv"
_loaded: set[str] = set()


def load_kv(path: Path) -> None:
    """Load a kv file once per process (a second load would apply its rules twice)."""
    key = str(path)
    if key not in _loaded:
        Builder.load_file(key)
        _loaded.add(key)


class KioskHandle(Protocol):
    """What the screens use of KioskApp (tests/kiosk/ui/test_handle.py checks that it fits).

    A protocol rather than KioskApp itself: kiosk.ui.app imports the screens, and the
    layer test forbids the circle even for type-only imports.
    """

    visit: Visit
    admin: AdminLock
    devices: Any  # kiosk.ui.devices.DeviceBridge, or None
    manager: Any
    scale: float

    def do(self, action: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Do an area model's typed move for a button, then show where the visit is."""

    def sync(self) -> None:
        """Show the screen the visit is on (the admin screens while in admin mode)."""

    def hold_input(self) -> None:
        """What is on the glass just changed: ignore taps for a moment."""

    def site_name(self) -> str:
        """The site's name on the attract screen ("" before pairing)."""

    def backend_status(self) -> SyncStatus | None:
        """The backend's sync status (None when it cannot say)."""

    def open_admin(self) -> None:
        """The hidden gesture was made: ask for the PIN."""

    def check_pin(self, pin: str) -> str:
        """Open the admin screen for the right PIN; return the words for a wrong one."""

    def pair(self, url: str, code: str, pin: str) -> str:
        """Pair with a server and set the admin PIN; return what went wrong, or ''."""

    def pair_only(self, url: str, code: str) -> str:
        """Pair with a server, the PIN to be chosen next; return what went wrong."""

    def set_first_pin(self, pin: str) -> str:
        """Set the admin PIN of a kiosk paired from the command line; return what went wrong."""


class KioskScreen(Screen):  # type: ignore[misc]
    """A journey screen: a kv file of its own, refreshed from the visit on entering."""

    kv_name: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        load_kv(KV_DIR / f"{self.kv_name or kwargs.get('name', '')}.kv")
        super().__init__(**kwargs)

    @property
    def app(self) -> KioskHandle:
        """The running KioskApp."""
        return cast(KioskHandle, App.get_running_app())

    @property
    def visit(self) -> Visit:
        """The member's visit; typed so mypy follows every ``self.visit.<area>.<method>(...)``."""
        return self.app.visit

    def on_pre_enter(self, *_args: Any) -> None:
        """Show the visit's current state as the screen appears."""
        self.refresh()

    def refresh(self) -> None:
        """Re-read what the screen shows from the visit (override where something changes)."""
