"""Drive the kiosk in a real window without its blocking loop: frames, taps, screenshots.

Used by the tour (``onsite-kiosk --tour``), the UI tests and the benchmarks. Taps are real
touch events through the window (``Touch``), so they land only where a finger would. Nothing
here imports from a test package (``kivy.tests`` needs pytest, which the ``kiosk`` extra does
not install): the tour runs on a machine with only the kiosk installed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not at run time: headless_environment must run before Kivy is imported
    from .app import KioskApp


# Kivy's default pace (graphics.maxfps = 60), which the frame counts of wait_for stand for.
_FRAME_SECONDS = 1 / 60
# The shortest pass of wait_for's loop: a condition is seen within about this long.
_POLL_SECONDS = 0.004


def headless_environment(kivy_home: str) -> None:
    """Set Kivy's environment for a window with no display, before Kivy is first imported."""
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ["KIVY_NO_ARGS"] = "1"
    os.environ["KIVY_NO_CONSOLELOG"] = "1"
    os.environ["KIVY_NO_FILELOG"] = "1"
    os.environ["KIVY_USE_DEFAULTCONFIG"] = "1"
    os.environ["KIVY_HOME"] = kivy_home


def configure_window(width: int, height: int, *, synthetic_input_only: bool,
                     fullscreen: bool = False) -> None:
    """Set the window's size (and drop real input providers for driven runs)."""
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("kivy", "exit_on_escape", "0")
    if synthetic_input_only:
        for name, _ in list(Config.items("input")):
            Config.remove_option("input", name)


@cache
def _touch_class() -> Any:
    # Built on first use: Kivy may be imported only after headless_environment has run.
    from kivy.base import EventLoop
    from kivy.input.motionevent import MotionEvent

    class Touch(MotionEvent):  # type: ignore[misc]
        """One finger: down, then up (its position a fraction of the window, as providers give)."""

        def __init__(self, x: float, y: float) -> None:
            win = EventLoop.window
            super().__init__("driver", 99, {"x": x / (win.width - 1.0),
                                            "y": y / (win.height - 1.0)},
                             is_touch=True, type_id="touch")
            self.profile = ["pos"]

        def depack(self, args: Any) -> None:
            self.sx, self.sy = args["x"], args["y"]
            super().depack(args)

        def touch_down(self) -> None:
            EventLoop.post_dispatch_input("begin", self)

        def touch_up(self) -> None:
            EventLoop.post_dispatch_input("end", self)

    return Touch


def _skip_drawing(*_args: Any) -> bool:
    """Stand in for the window's drawing of a frame (see Driver.draw_between_shots)."""
    return True


def touch(x: float, y: float) -> Any:
    """A touch at window coordinates, posted through the event loop as a finger's would be."""
    return _touch_class()(x, y)


class Driver:
    """Pumps frames and taps widgets in the running app.

    ``draw_between_shots=False`` draws the window only for a screenshot. Each frame still runs
    the clock, input, layout and the flip, so screens, taps and the tap guard behave as they
    do on the glass; only the pixels nobody looks at go undrawn. On Mesa's llvmpipe (no GPU)
    drawing was most of a walk's CPU: the portrait layout walk took 23.6 s of CPU drawing
    every frame and 6.7 s drawing for its 38 screenshots, whose every pixel came out the same
    (docs/BENCHMARKS.md, "Session 10: the tests' CPU"). What measures frames (the latency
    benchmarks) or tests the guard against real drawing keeps the default.
    """

    draw_between_shots: bool = True  # the default for drivers started from now on

    def __init__(self, app: KioskApp, *, draw_between_shots: bool | None = None) -> None:
        self.app = app
        if draw_between_shots is not None:
            self.draw_between_shots = draw_between_shots
        self._drawing_held = False

    @classmethod
    def start(cls, app: KioskApp, *, draw_between_shots: bool | None = None) -> Driver:
        """Build the app in the window without entering the blocking loop."""
        app._run_prepare()
        driver = cls(app, draw_between_shots=draw_between_shots)
        driver.pump(4)
        return driver

    def pump(self, frames: int = 2) -> None:
        """Run a few frames (each runs the clock, so scheduled work happens), drawn or not."""
        from kivy.base import EventLoop

        if not self.draw_between_shots:
            self._hold_drawing(True)
        for _ in range(frames):
            EventLoop.idle()

    def _hold_drawing(self, hold: bool) -> None:
        """Skip (or draw again) the window's canvas on each frame; the flip goes on."""
        from kivy.core.window import Window

        if hold != self._drawing_held:
            # A handler that returns True stops the event before the window's own on_draw.
            (Window.fbind if hold else Window.funbind)("on_draw", _skip_drawing)
            self._drawing_held = hold

    def screen(self) -> Any:
        """The screen on show."""
        assert self.app.manager is not None, "the app is not built yet: use Driver.start"
        return self.app.manager.current_screen

    def tap(self, widget: Any) -> None:
        """Touch down and up on the widget's centre, as a finger would."""
        from kivy.uix.scrollview import ScrollView

        if widget.disabled:
            raise AssertionError(f"tapped a disabled widget: {widget!r}")
        # Where the widget is once taps act again: the frames waited out lay out a screen
        # that was just built (read before them, a new question's answers were still at 0, 0).
        self.settle()
        self.tap_at(*widget.to_window(*widget.center))
        parent = widget.parent
        while parent is not None and parent is not parent.parent:
            if isinstance(parent, ScrollView):
                # A scroll view hands the release on 0.2 s later (it waits to tell a tap from
                # a swipe): wait that out, in real time, as a finger would.
                deadline = time.monotonic() + 0.3
                while time.monotonic() < deadline:
                    self.pump(1)
                    time.sleep(0.01)
                break
            parent = parent.parent

    def tap_id(self, name: str) -> None:
        """Tap the current screen's widget with this kv id."""
        self.tap(self._find(self.screen(), name))

    def _find(self, root: Any, name: str) -> Any:
        found = root.ids.get(name)
        if found is not None:
            return found
        for child in root.walk(restrict=True):
            if name in getattr(child, "ids", {}):
                return child.ids[name]
        raise KeyError(f"no widget {name!r} on the {self.screen().name} screen")

    def find(self, name: str) -> Any:
        """The current screen's widget with this kv id."""
        return self._find(self.screen(), name)

    def tap_text(self, text: str, *, within: Any = None) -> None:
        """Tap the first button whose text starts with ``text`` (dynamic widgets)."""
        from kivy.uix.button import Button

        root = within if within is not None else self.screen()
        for child in root.walk(restrict=True):
            if isinstance(child, Button) and child.text.startswith(text) and \
                    not child.disabled and child.opacity > 0:
                self.tap(child)
                return
        raise KeyError(f"no button {text!r} on the {self.screen().name} screen")

    def tap_key(self, text: str, *, within: Any = None) -> None:
        """Tap the button whose text is exactly ``text`` ("." is not ".com")."""
        from kivy.uix.button import Button

        root = within if within is not None else self.screen()
        for child in root.walk(restrict=True):
            if isinstance(child, Button) and child.text == text and not child.disabled:
                self.tap(child)
                return
        raise KeyError(f"no key {text!r} on the {self.screen().name} screen")

    def tap_at(self, x: float, y: float) -> None:
        """Touch down and up at window coordinates."""
        self.settle()
        finger = touch(x, y)
        finger.touch_down()
        self.pump(1)
        finger.touch_up()
        self.pump(2)

    def settle(self) -> None:
        """Wait, in real time, until the app takes taps again (it ignores them for a moment
        after every change of screen or question), as a person reading the screen would."""
        held = getattr(self.app, "input_held", None)
        while held is not None and held() > 0:
            time.sleep(min(held(), 0.05))
            self.pump(1)

    def wait_for(self, predicate: Callable[[], bool], frames: int = 400) -> None:
        """Pump until the predicate holds, for as long as ``frames`` frames take at 60 fps."""
        # Bounded in real time, not in frames: what a walk waits for is a timer or another
        # thread, and a walk may run Kivy's frames unpaced (graphics.maxfps = 0), hundreds a
        # second. Then each pass sleeps a little, so that waiting does not spin a core.
        deadline = time.monotonic() + frames * _FRAME_SECONDS
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("the condition never held")
            started = time.monotonic()
            self.pump(1)
            time.sleep(max(0.0, _POLL_SECONDS - (time.monotonic() - started)))

    def screenshot(self, path: Path) -> Path:
        """Save the window to ``path`` as a PNG (``save_gl_rgb``: quicker than Kivy's own)."""
        from kivy.base import EventLoop
        from kivy.core.window import Window
        from kivy.graphics.opengl import GL_RGB, GL_UNSIGNED_BYTE, glReadPixels

        self._hold_drawing(False)  # the next pump holds it again
        Window.canvas.ask_update()
        for _ in range(2):
            EventLoop.idle()
        width, height = (int(v) for v in Window.size)
        save_gl_rgb(path, width, height, glReadPixels(0, 0, width, height, GL_RGB,
                                                      GL_UNSIGNED_BYTE))
        return path


def save_gl_rgb(path: Path, width: int, height: int, pixels: bytes) -> None:
    """Write RGB rows as OpenGL reads them (bottom row first, packed) as an upright PNG.

    Kivy's own ``Window.screenshot`` hands the pixels to SDL_image, whose libpng took 58-63 ms
    of CPU for one 1080x1920 screenshot here (a quarter of a layout walk's CPU); Pillow (the QR
    codes' library) at zlib level 1 takes about 30 ms, for a file 1.6 times as large: pictures
    to look at, kept for a run (docs/BENCHMARKS.md, "Session 15").
    """
    from PIL import Image  # loaded only when a walk or the tour takes its first screenshot

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.frombuffer("RGB", (width, height), pixels, "raw", "RGB", 0, -1)
    image.save(path, "PNG", compress_level=1)
