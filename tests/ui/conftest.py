"""A real Kivy window (SDL offscreen on Mesa's software GL), driven by synthetic touches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


class Driver:
    """Pumps frames and taps widgets in the running app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def pump(self, frames: int = 3) -> None:
        """Render a few frames."""
        from kivy.base import EventLoop

        for _ in range(frames):
            EventLoop.idle()

    def tap(self, widget: Any) -> None:
        """Touch down and up on the widget's centre, as a finger would."""
        self.tap_at(*widget.to_window(*widget.center))

    def tap_at(self, x: float, y: float) -> None:
        """Touch down and up at window coordinates."""
        from kivy.tests.common import UnitTestTouch

        touch = UnitTestTouch(x, y)
        touch.touch_down()
        self.pump(2)
        touch.touch_up()
        self.pump(3)

    def screenshot(self, path: str) -> str:
        """Save the window to PNG; Kivy appends a counter, so return the real file name."""
        from kivy.core.window import Window

        written: str = Window.screenshot(name=path)
        return written


@pytest.fixture(scope="session")
def kivy_window() -> Iterator[None]:
    """Configure Kivy once per session: portrait kiosk size, synthetic input only."""
    from kivy.config import Config

    Config.set("graphics", "width", "540")
    Config.set("graphics", "height", "960")
    for name, _ in list(Config.items("input")):
        Config.remove_option("input", name)
    yield


@pytest.fixture
def kiosk_driver(kivy_window: None) -> Iterator[Driver]:
    """Build the kiosk app in the real window without entering the blocking main loop."""
    from kiosk.app import build_app
    from kiosk.settings import KioskSettings

    app = build_app(KioskSettings(width=540, height=960))
    app._run_prepare()
    driver = Driver(app)
    driver.pump(5)
    yield driver
    from kivy.core.window import Window

    for child in list(Window.children):
        Window.remove_widget(child)
    app.stop()
