"""KioskScreen: the one base class of the kiosk's screens (after Electrum's CScreen).

A screen knows its kv file and loads it once, before its first instance is built; entering
it (or ``refresh`` from the app after every action) re-reads what it shows from the visit.
Screens hold no member data of their own beyond what is on the glass right now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from kivy.app import App
from kivy.lang import Builder
from kivy.uix.screenmanager import Screen

KV_DIR = Path(__file__).resolve().parent / "kv"
_loaded: set[str] = set()


def load_kv(path: Path) -> None:
    """Load a kv file once per process (a second load would apply its rules twice)."""
    key = str(path)
    if key not in _loaded:
        Builder.load_file(key)
        _loaded.add(key)


class KioskScreen(Screen):  # type: ignore[misc]
    """A journey screen: a kv file of its own, refreshed from the visit on entering."""

    kv_name: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        load_kv(KV_DIR / f"{self.kv_name or kwargs.get('name', '')}.kv")
        super().__init__(**kwargs)

    @property
    def app(self) -> Any:
        """The running KioskApp."""
        return App.get_running_app()

    @property
    def visit(self) -> Any:
        """The member's visit (kiosk.visit.Visit)."""
        return self.app.visit

    def on_pre_enter(self, *_args: Any) -> None:
        """Show the visit's current state as the screen appears."""
        self.refresh()

    def refresh(self) -> None:
        """Re-read what the screen shows from the visit (override where something changes)."""
