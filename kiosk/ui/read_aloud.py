"""The Kivy side of read-aloud: what a screen on show holds for its words, and the button.

The words themselves are ``kiosk.speech.words`` (pure); this module hands them the screen's
own state (``view``): the screen itself, plus the texts of widgets built at run time (the
booking's entries, the QR captions, the admin screens' labels).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.factory import Factory
from kivy.uix.button import Button
from kivy.uix.label import Label

from .lang import tr

if TYPE_CHECKING:  # the visit (pydantic) and speech (espeak): after the first frame (app.py)
    from ..speech.reader import ReadAloud
    from ..speech.utterance import Utterance
    from ..visit import Visit


def default_read_aloud(data_dir: Path) -> ReadAloud:
    """Read-aloud on the sound card (headphones when plugged in), with the admin's settings."""
    from ..speech.espeak import Speaker
    from ..speech.output import AplaySink
    from ..speech.reader import ReadAloud, SpeechPrefs

    prefs = SpeechPrefs.load(data_dir)
    speaker = Speaker(AplaySink, rate=lambda: prefs.rate, volume=lambda: prefs.volume)
    return ReadAloud(speaker, prefs)


class _View:
    """A screen, with extra texts read from its widgets."""

    def __init__(self, screen: Any, **extra: Any) -> None:
        self._screen = screen
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        return getattr(self._screen, name)


def _shown(widget: Any) -> bool:
    return bool(widget.opacity > 0 and widget.height > 0 and getattr(widget, "text", ""))


def _texts(box: Any, kind: type[Any]) -> list[str]:
    # Children are listed last-added first: reversed, they read top to bottom.
    return [w.text for w in reversed(box.children) if isinstance(w, kind) and _shown(w)]


def _booking_view(screen: Any) -> Any:
    """The booking's entries (labels) and the buttons built for them, top to bottom."""
    box = screen.ids.entries
    labels = [w.text for w in reversed(box.children)
              if isinstance(w, Label) and not isinstance(w, Button) and _shown(w)]
    buttons = [t for w in reversed(box.children) for t in
               ([w.text] if isinstance(w, Button) and _shown(w) else
                _texts(w, Button) if not isinstance(w, Label) else [])]
    return _View(screen, entries=labels, buttons=buttons)


def _qr_view(screen: Any) -> Any:
    """The booking's summary above the codes, and each code's caption."""
    box = screen.ids.codes
    summary = " ".join(w.text for w in reversed(box.children)
                       if isinstance(w, Label) and _shown(w))
    captions = [w.caption for w in reversed(box.children) if getattr(w, "caption", "")]
    return _View(screen, summary=summary, captions=captions)


def _question_view(screen: Any) -> Any:
    """The device panel's texts and buttons while a cuff or scale is measuring."""
    panel = getattr(getattr(screen.app, "devices", None), "panel", None)
    if panel is None or panel.parent is None:  # no device: the screen says it all
        return screen
    # Not the countdown while waiting: it changes every second, and each change would
    # start the reading again.
    device = [panel.instruction, "" if panel.state == "waiting" else panel.status_text,
              panel.advice_text]
    buttons = [w.text for w in (panel.ids.use_reading, panel.ids.measure_again,
                                panel.ids.type_instead) if _shown(w) and not w.disabled]
    return _View(screen, device=device, device_buttons=buttons)


def _admin_view(screen: Any) -> Any:
    """An admin screen's labels, as they stand on it."""
    labels = [w.text for w in reversed(list(screen.walk(restrict=True)))
              if isinstance(w, Label) and not isinstance(w, Button) and _shown(w)]
    return _View(screen, labels=list(reversed(labels)))


# The screens whose words need texts read from widgets built at run time; any other screen
# is its own view.
_VIEWS: dict[str, Callable[[Any], Any]] = {
    "booking": _booking_view, "qr": _qr_view, "question": _question_view,
    **dict.fromkeys(("admin_pin", "admin", "setup", "admin_devices"), _admin_view),
}


def view_of(screen: Any) -> Any:
    """What the words of ``screen`` need of it."""
    view = _VIEWS.get(screen.name)
    return screen if view is None else view(screen)


def open_pad(screen: Any) -> str:
    """The name of the phone or email pad open over the screen ("" when none is)."""
    for name in ("phone_pad", "email_pad"):
        pad = getattr(screen, name, None)
        if pad is not None and pad.parent is not None:  # open: it stands on the window
            return name
    return ""


def screen_utterance(screen: Any, visit: Visit) -> Utterance:
    """What the speaker button says on this screen (or the pad open over it), in the
    language on show."""
    from ..speech.words import utterance  # it imports the visit: not on the start path

    name = open_pad(screen) or screen.name
    return utterance(name, visit, tr._, view_of(screen), tr.language)


def on_speaker_button(manager: Any, touch: Any) -> bool:
    """Whether a touch lands on a speaker button on show: the screen's, or that of a pad
    open over it."""
    if manager is None or manager.current_screen is None:
        return False
    screen = manager.current_screen
    roots = [getattr(screen, name) for name in ("phone_pad", "email_pad")
             if getattr(screen, name, None) is not None] + [screen]
    for root in roots:
        for widget in root.walk(restrict=True):
            if isinstance(widget, Factory.SpeakerButton) and \
                    widget.collide_point(*widget.to_widget(*touch.pos)):
                return True
    return False
