"""KioskApp: one ScreenManager over the visit, the idle countdown, admin mode (admin_mode.py).

The app receives its collaborators (settings, backend, admin lock, clock) from outside. Every
button calls ``do`` with an area model's typed method (``app.do(app.visit.booking.confirm)``),
which moves the ``Visit``, and then ``sync`` shows the screen the visit is on; a timer
checks the visit's timeouts and shows the countdown that a tap cancels.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.factory import Factory
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from shared.i18n import LANGUAGES, NATIVE_NAMES

from ..admin import AdminLock
from ..backend import Backend, DeferredBackend
from ..flow import ATTRACT, DONE, Timeouts
from . import page as _page  # noqa: F401 - registers Page for the kv files
from . import screens
from .admin_mode import AdminMode
from .base import load_kv
from .lang import tr
from .read_aloud import on_speaker_button, screen_utterance
from .themes import THEMES

if TYPE_CHECKING:  # pydantic's schemas come with these: after the first frame (_load)
    from ..speech.reader import ReadAloud
    from ..visit import Visit

P = ParamSpec("P")

# The design height a landscape window's height stands for (see _rescale). Every touch
# target is at least 110 design pixels (the admin's text fields; keys, fields and the
# footer are 120-130), so 1080 px standing for 1180 keeps each at least 100 px on the
# glass; the pages then stand in two columns (kiosk/ui/page.py) to fit. At 1700 (one
# centred column) the footer and the keys came out at 76-83 px.
LANDSCAPE_DESIGN_HEIGHT = 1180

# Each screen's class in kiosk.ui.screens (the device panel's in kiosk.ui.devices), imported
# when the screen is first built: the first frame needs the attract screen's module alone.
SCREEN_CLASSES = {
    "attract": "AttractScreen", "privacy": "PrivacyScreen", "identify": "IdentifyScreen",
    "menu": "MenuScreen", "question": "QuestionScreen", "offer": "OfferScreen",
    "results": "ResultsScreen", "crisis": "CrisisScreen", "referral": "ReferralScreen",
    "booking": "BookingScreen", "qr": "QrScreen", "done": "DoneScreen", "setup": "SetupScreen",
    "admin_pin": "AdminPinScreen", "admin": "AdminScreen", "admin_devices": "DevicesScreen",
}
ADMIN_SCREENS = ("setup", "admin_pin", "admin", "admin_devices")
DONE_SECONDS = 8.0  # the thank-you shows this long, then the attract screen
# After anything on the glass changes (a new screen, the next question, the booking's
# confirmation), taps are ignored this long: the second tap of a hurried double-tap must not
# act on whatever now sits under the finger (issue 15). KioskSettings.tap_guard_ms sets it.
TAP_GUARD_SECONDS = 0.4
TICK_SECONDS = 0.25

class KioskApp(AdminMode, App):  # type: ignore[misc]
    """The touchscreen kiosk."""

    title = "Onsite Wellness kiosk"
    scale = NumericProperty(0.5)
    text_scale = NumericProperty(1.0)
    page_width = NumericProperty(1080)  # the pages' width: the window's
    landscape = BooleanProperty(False)  # wider than tall: pages in two columns (page.py)
    high_contrast = BooleanProperty(False)
    can_leave_setup = BooleanProperty(False)
    home_language_name = StringProperty("English")
    bg = ListProperty(THEMES["normal"]["bg"])
    fg = ListProperty(THEMES["normal"]["fg"])
    muted = ListProperty(THEMES["normal"]["muted"])
    primary = ListProperty(THEMES["normal"]["primary"])
    text_on_primary = ListProperty(THEMES["normal"]["text_on_primary"])
    secondary = ListProperty(THEMES["normal"]["secondary"])
    text_on_secondary = ListProperty(THEMES["normal"]["text_on_secondary"])
    pressed = ListProperty(THEMES["normal"]["pressed"])
    danger = ListProperty(THEMES["normal"]["danger"])
    text_on_danger = ListProperty(THEMES["normal"]["text_on_danger"])
    warn = ListProperty(THEMES["normal"]["warn"])
    good = ListProperty(THEMES["normal"]["good"])
    field = ListProperty(THEMES["normal"]["field"])
    outline = ListProperty(THEMES["normal"]["outline"])
    countdown = ObjectProperty(None, allownone=True)
    speaking = BooleanProperty(False)  # read-aloud is speaking (the speaker button's look)
    speech_rate = NumericProperty(0)
    speech_volume = NumericProperty(0)

    def __init__(self, *, backend: Backend | DeferredBackend, admin: AdminLock,
                 language: str = "en",
                 clock: Callable[[], float] | None = None, timeouts: Timeouts | None = None,
                 on_pair: Callable[[str, str], None] | None = None,
                 require_setup: bool = True, tap_guard: float = TAP_GUARD_SECONDS,
                 layout_file: Path | None = None, devices: Any = None,
                 read_aloud: ReadAloud | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.devices = devices  # kiosk.ui.devices.DeviceBridge, or None: no cuff or scale
        self._read_aloud_given = read_aloud  # or the sound card's, made with the visit (_load)
        self.tap_guard = tap_guard
        self.layout_file = layout_file
        self._held_until = 0.0
        self._hold_from_flip = False
        # When the last three frames started (see input_held).
        self._frames: deque[float] = deque([time.monotonic()] * 3, maxlen=3)
        self._held_touches: set[int] = set()
        self.require_setup = require_setup
        self.admin = admin
        self.on_pair = on_pair
        self._language = admin.default_language() or language
        self.home_language_name = NATIVE_NAMES[self._language]
        self.admin_mode = False
        self._admin_seen = 0.0
        self.manager: ScreenManager | None = None
        # A DeferredBackend is built after the first frame (so the attract screen draws
        # without pydantic), or at a tap that comes sooner; a backend given built, at once.
        self._deferred = backend if isinstance(backend, DeferredBackend) else None
        self._backend: Backend | None = None if isinstance(backend, DeferredBackend) else backend
        self._timeouts = timeouts
        self._clock_given = clock
        self._visit: Visit | None = None
        if self._deferred is None:
            self._load()

    @property
    def backend(self) -> Backend:
        """The backend (a deferred one is built now, if it was not yet)."""
        self._load()
        assert self._backend is not None
        return self._backend

    @property
    def visit(self) -> Visit:
        """The member's visit, made with the backend on first use: after the first frame
        (``_finish_start``), or at a tap that comes sooner (``_on_touch`` asks for it before
        the tap reaches any button, which then acts as on a kiosk done starting)."""
        return self._visit if self._visit is not None else self._load()

    def _load(self) -> Visit:
        """Build the backend (when deferred), read its catalog and make the visit (once)."""
        if self._visit is not None:
            return self._visit
        from ..visit import Visit
        from .read_aloud import default_read_aloud

        self.read_aloud = self._read_aloud_given or default_read_aloud(self.admin.path.parent)
        self.speech_rate = self.read_aloud.prefs.rate
        self.speech_volume = self.read_aloud.prefs.volume
        if self._backend is None:
            assert self._deferred is not None
            self._backend = self._deferred.build()
        # A catalog that does not validate raises here, as it did in __init__ before.
        catalog = self._backend.catalog()
        timeouts = self._timeouts
        if timeouts is None and catalog is not None:
            timeouts = Timeouts.from_catalog(catalog.settings.model_dump())
        extra = {"clock": self._clock_given} if self._clock_given is not None else {}
        self._visit = Visit(self._backend, timeouts=timeouts, language=self._language, **extra)
        if self.manager is not None and not self.admin_mode:
            # build() showed the attract screen on what the files said; now the backend says.
            if not self._ready():
                self.open_setup()
            elif self.manager.current == ATTRACT:
                self.manager.current_screen.refresh()
        return self._visit

    def site_name(self) -> str:
        """The site's name on the attract screen ("" before pairing)."""
        if self._visit is None and self._deferred is not None:
            return self._deferred.branding()  # before the backend is built: the file's word
        catalog = self.visit.catalog()
        return catalog.settings.branding.name if catalog is not None else ""

    # ------------------------------------------------------------------ building

    def build(self) -> FloatLayout:
        """Load the shared looks, build every screen once, start the timer."""
        # The window's clear colour is the page background (the pages draw none of their own):
        # one full-screen fill less per frame.
        Window.clearcolor = tuple(self.bg)
        self.bind(bg=lambda _app, bg: setattr(Window, "clearcolor", tuple(bg)))
        self._rescale()
        Window.bind(size=lambda *_a: self._rescale())
        load_kv(Path(__file__).resolve().parent / "kv" / "speaker.kv")
        load_kv(Path(__file__).resolve().parent / "widgets.kv")
        tr.switch(self._language)
        root = FloatLayout()
        self.manager = ScreenManager(transition=NoTransition())
        root.add_widget(self.manager)
        Window.bind(on_touch_down=self._on_touch, on_touch_move=self._on_touch_move,
                    on_touch_up=self._on_touch_up, on_flip=self._on_flip)
        Clock.schedule_interval(lambda _dt: self.tick(), TICK_SECONDS)
        Clock.schedule_interval(lambda _dt: self._frames.append(time.monotonic()), 0)
        if self.layout_file is not None:
            from .probe import write_layout

            layout_file = self.layout_file
            Clock.schedule_interval(lambda _dt: write_layout(self, layout_file), 0.1)
        deferred = self._deferred
        if self._visit is None and deferred is not None and (not self.require_setup or (
                self.admin.is_set() and deferred.looks_paired())):
            # The attract screen alone for the first frame; the backend, the visit and the
            # other screens right after it (_finish_start). _load checks what this assumed.
            self.hold_input()
            self.show(ATTRACT)
            Window.bind(on_flip=self._first_frame_drawn)
        elif not self._ready():
            self.open_setup()
        else:
            self.sync()
        return root

    def _first_frame_drawn(self, *_args: Any) -> None:
        Window.unbind(on_flip=self._first_frame_drawn)
        Clock.schedule_once(lambda _dt: self._finish_start(), 0)

    def _finish_start(self) -> None:
        """After the first frame: build the backend and the visit, import the other screens."""
        self._load()
        screens.load_all()

    def _rescale(self) -> None:
        # Design pixels are those of a 1080x1920 portrait screen; any other window scales so
        # that the whole design fits (landscape 1920x1080 by its height).
        width, height = Window.size
        if width > height:
            # Landscape (1920x1080): fitting the portrait design by its height made buttons
            # 83 px and keys 76 px. The design stands larger instead, and the pages put
            # their parts side by side (kiosk/ui/page.py).
            self.scale = height / LANDSCAPE_DESIGN_HEIGHT
            self.landscape = True
        else:
            self.scale = min(width / 1080, height / 1920)
            self.landscape = False
        self.page_width = width

    # ------------------------------------------------------------------ moving

    def do(self, action: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Do an area model's typed move for a button (``app.do(app.visit.booking.confirm)``),
        then show where the visit is."""
        action(*args, **kwargs)
        self.sync()

    def sync(self) -> None:
        """Show the screen the visit is on (the admin screens while in admin mode)."""
        if self.manager is None or self.admin_mode:
            return
        self.hold_input()
        if tr.language != self.visit.language:
            tr.switch(self.visit.language)
        target = self.visit.screen
        if target == ATTRACT and self.manager.current != ATTRACT:
            self._close_end_confirm()  # the visit ended on its own (idle): nothing to ask
            self.text_scale = 1.0
            self._set_theme(False)
        if self.manager.current != target:
            self.show(target)
        else:
            self.manager.current_screen.refresh()
        self.read_screen()

    def show(self, name: str) -> None:
        """Switch to a screen, building it (and loading its kv file) on first use.

        Built on demand so the attract screen draws without waiting for the other thirteen;
        once built, a screen is kept and only refreshed.
        """
        assert self.manager is not None
        if not self.manager.has_screen(name):
            screen_class: Any
            if name == "admin_devices":
                from .devices import DevicesScreen as screen_class
            else:
                screen_class = getattr(screens, SCREEN_CLASSES[name])
            self.manager.add_widget(screen_class(name=name))
        self.manager.current = name

    def back(self) -> None:
        """The footer's Back."""
        self.do(self.visit.back)

    end_confirm: Any = None  # "End your session?" while it shows

    def end_session(self) -> None:
        """The footer's End session: mid-visit it asks first (a stray tap must not wipe a
        visit); on the thank-you screen the visit is over already."""
        if self.visit.screen in (ATTRACT, DONE):
            self.do(self.visit.end)
            return
        self.visit.touch()
        self.end_confirm = Factory.EndConfirm()
        self.end_confirm.open(animation=False)

    def confirm_end(self, end: bool) -> None:
        """The answer to "End your session?"."""
        self._close_end_confirm()
        if end:
            self.do(self.visit.end)

    def _close_end_confirm(self) -> None:
        if self.end_confirm is not None:
            self.end_confirm.dismiss(animation=False)
            self.end_confirm = None

    def toggle_language(self) -> None:
        """English <-> Spanish for this visit (every label follows through tr)."""
        journey = self.visit.journey
        journey.language = LANGUAGES[(LANGUAGES.index(journey.language) + 1) % len(LANGUAGES)]
        self.visit.touch()
        self.sync()

    def toggle_text_size(self) -> None:
        """Large text on or off."""
        self.text_scale = 1.3 if self.text_scale == 1.0 else 1.0
        self.sync()

    def toggle_contrast(self) -> None:
        """High-contrast theme on or off."""
        self._set_theme(not self.high_contrast)

    def _set_theme(self, high: bool) -> None:
        self.high_contrast = high
        for key, value in THEMES["high_contrast" if high else "normal"].items():
            setattr(self, key, value)

    # ------------------------------------------------------------------ time

    def hold_input(self) -> None:
        """What is on the glass just changed: ignore taps until ``tap_guard`` seconds after
        the change is drawn.

        Counted from the frame that shows it, not from now: when the loop is slow (a busy
        machine, a heavy screen), the second tap of a double-tap may be read only after it,
        and it was still made before anyone could see the new screen.
        """
        if self.tap_guard > 0:
            self._held_until = math.inf
            self._hold_from_flip = True
            Window.canvas.ask_update()  # a frame is drawn even when nothing looks different

    def _on_flip(self, *_args: Any) -> None:
        if self._hold_from_flip:
            self._hold_from_flip = False
            self._held_until = time.monotonic() + self.tap_guard

    def input_held(self) -> float:
        """Seconds until taps act again (0 when they act now).

        A tap read in this frame was made after the frame before last started (it was not
        among the events read then), and no sooner can be proven: on a loop slowed down by
        a busy machine, the last frames may have taken far longer than a sixtieth.
        """
        return max(0.0, self._held_until - self._frames[0])

    def _on_touch(self, _window: Any, touch: Any) -> bool:
        """Any tap restarts the idle timer and, but on the speaker button, stops speech; a
        tap on the countdown only cancels it; a tap just after a change is swallowed (its
        move and release with it)."""
        self.visit.touch()
        if self.input_held() > 0:
            # Swallowed, it acts on nothing: the second tap of a double-tap must not stop
            # the reading of the screen the first one opened.
            self._held_touches.add(touch.uid)
            return True
        if self.speaking or self.read_aloud.speaking:
            if not on_speaker_button(self.manager, touch):
                self.read_aloud.interrupt()
                self.speaking = False
        if self.countdown is not None:
            self._hide_countdown()
            return True
        return False

    def _on_touch_move(self, _window: Any, touch: Any) -> bool:
        """The move of a swallowed tap is swallowed too."""
        return touch.uid in self._held_touches

    def _on_touch_up(self, _window: Any, touch: Any) -> bool:
        """The release of a swallowed tap is swallowed too (and that tap is over)."""
        if touch.uid not in self._held_touches:
            return False
        self._held_touches.discard(touch.uid)
        return True

    def tick(self) -> None:
        """Check the visit's timers; show, update or hide the countdown."""
        if self.manager is None or self._visit is None:
            return  # nothing to time before the visit is made (_finish_start)
        self.speaking = self.read_aloud.speaking  # the speaker button's look follows
        if self.speaking and not self.admin_mode:
            # Listening is not being idle: the privacy notice takes 90 s to read at 130 words
            # a minute, as long as the idle timeout.
            self.visit.touch()
        if self.admin_mode:
            # The admin screen follows the backlog as it drains (its progress bar).
            now = self.visit.clock()
            if self.manager.current == "admin" and now - self._admin_seen >= 1.0:
                self._admin_seen = now
                self.manager.current_screen.refresh()
            return
        before = self.visit.screen
        if before == DONE and self.visit.clock() - self.visit.journey.screen_since >= \
                DONE_SECONDS:
            self.visit.fire("timeout")
        state = self.visit.tick()
        if state == "countdown":
            self._show_countdown(self.visit.journey.countdown_left(self.visit.clock()))
        else:
            self._hide_countdown()
        if self.visit.screen != before:
            self.sync()

    def _show_countdown(self, seconds: float) -> None:
        if self.countdown is None:
            self.countdown = Factory.Countdown(size_hint=(None, None), size=Window.size)
            # On the window, not the root: above an open number or email pad as well.
            Window.add_widget(self.countdown)
        self.countdown.seconds = max(0, int(seconds + 0.999))

    def _hide_countdown(self) -> None:
        if self.countdown is not None:
            Window.remove_widget(self.countdown)
            self.countdown = None

    # ------------------------------------------------------------------ read-aloud

    def utterance(self) -> Any:
        """What the speaker button says on the screen on show (kiosk.speech.words)."""
        assert self.manager is not None
        return screen_utterance(self.manager.current_screen, self.visit)

    def speaker_pressed(self) -> None:
        """The speaker button: read this screen (and the next ones, for this visit), or stop.

        The button's look changes ("Listen" to "Stop"): like any change on the glass it holds
        taps for a moment, so the second tap of a hurried double-tap neither stops the
        reading the first one started nor acts on anything else (issue 19). Timing the two
        presses cannot tell: the first one's work can delay the second one's release, read
        450 ms after it on a busy machine where xdotool sent it 80 ms after.
        """
        if self.manager is None:
            return
        self.visit.touch()
        self.read_aloud.button(self.visit, self.utterance())
        self.speaking = self.read_aloud.speaking
        self.hold_input()

    def read_screen(self) -> None:
        """Read the screen again if what it says changed and read-aloud is on (a screen
        change, the next question, a device's reading arriving)."""
        # Only while read-aloud is on or still speaking: the words of a screen cost a little,
        # and a member who never taps the speaker should not pay for them on every tap.
        if self.manager is None:
            return
        if self.visit.read_aloud or self.read_aloud.speaking:
            self.read_aloud.shown(self.visit, self.utterance())
        else:
            self.read_aloud.forget()
        self.speaking = self.read_aloud.speaking

    def write_speech(self, path: Path) -> Path:
        """Save what the speaker button says on this screen as a WAV file (the tour)."""
        return self.read_aloud.write_wav(self.utterance(), path)

    def next_speech_rate(self) -> None:
        """Admin: the next reading speed; a sample sentence says how it sounds."""
        self.speech_rate = self.read_aloud.prefs.next_rate()
        self._speech_sample()

    def next_speech_volume(self) -> None:
        """Admin: the next volume; a sample sentence says how loud it is."""
        self.speech_volume = self.read_aloud.prefs.next_volume()
        self._speech_sample()

    def _speech_sample(self) -> None:
        from ..speech.utterance import Utterance

        self.read_aloud.speaker.say(Utterance(self.visit.language, (
            tr._("This is how the kiosk reads aloud."),)))
        self.speaking = self.read_aloud.speaking
