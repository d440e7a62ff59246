"""The visit's way in: the attract screen, the privacy notice and the sign-in."""

from __future__ import annotations

import time
from typing import Any

from kivy.core.window import Window
from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from ..base import KioskScreen
from ..keypad import BACK

# Taps in the attract screen's top-left corner that open admin mode (with the PIN after).
ADMIN_TAPS = 5
ADMIN_TAP_WINDOW = 4.0
# The sign-in keypad: digits, or letters for ids such as E1001 (ABC and 123 swap them).
ID_DIGIT_KEYS = (*"123456789", "ABC", "0", BACK)
ID_LETTER_KEYS = (*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "-", "123", BACK)
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
ID_MAX, DOB_DIGITS = 32, 8


def _mask(text: str) -> str:
    return "\u2022 " * len(text) if text else ""


class AttractScreen(KioskScreen):
    """Branding, a big Start, the language choice; a hidden corner opens admin mode."""

    kv_name = "attract"
    site_name = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._taps: list[float] = []

    def refresh(self) -> None:
        """Show the site's name (from the cached file until the backend is built)."""
        self.site_name = self.app.site_name()

    def corner_tap(self) -> None:
        """Count taps on the hidden corner; enough, quickly enough, ask for the admin PIN."""
        now = time.monotonic()
        self._taps = [t for t in self._taps if now - t < ADMIN_TAP_WINDOW] + [now]
        if len(self._taps) >= ADMIN_TAPS:
            self._taps = []
            self.app.open_admin()


class PrivacyScreen(KioskScreen):
    """A short, plain privacy notice and consent."""

    kv_name = "privacy"
    retention_days = NumericProperty(0)  # 0: the site did not say (the wording has no number)

    def refresh(self) -> None:
        """The site's own retention, from its catalog."""
        self.retention_days = self.visit.retention_days() or 0


class IdentifyScreen(KioskScreen):
    """Employee or badge number and date of birth, both masked; or continue anonymously."""

    kv_name = "identify"
    typed_id = StringProperty("")
    typed_dob = StringProperty("")
    field = StringProperty("id")  # which field the keypad types into
    letters = BooleanProperty(False)
    message = StringProperty("")
    show_id = BooleanProperty(False)  # the "Show" toggles: dots by default, for the queue behind
    show_dob = BooleanProperty(False)

    def on_pre_enter(self, *args: Any) -> None:
        """Start empty, and listen to a badge scanner (it types like a keyboard)."""
        self.typed_id = self.typed_dob = ""
        self.show_id = self.show_dob = False
        self.field = "id"
        self.letters = False
        self._set_pad()
        Window.bind(on_textinput=self._scanned, on_key_down=self._key)
        super().on_pre_enter(*args)

    def on_leave(self, *_args: Any) -> None:
        """Forget what was typed and stop listening to the keyboard."""
        Window.unbind(on_textinput=self._scanned, on_key_down=self._key)
        self.typed_id = self.typed_dob = ""
        self.show_id = self.show_dob = False
        self.ids.keypad.clear()

    def refresh(self) -> None:
        """Show the visit's message (why the last try did not work)."""
        self.message = self.visit.message

    def on_field(self, *_args: Any) -> None:
        """A birth date is digits only; the keypad now types into the other field."""
        if self.field == "dob":
            self.letters = False
        self._set_pad()

    def _set_pad(self) -> None:
        # What the field takes: an id of letters, digits and dashes (typed in capitals), or
        # the eight digits of a birth date.
        pad = self.ids.keypad
        if self.field == "id":
            pad.allowed, pad.max_length, pad.upper = ID_CHARS, ID_MAX, True
            pad.typed = self.typed_id
        else:
            pad.allowed, pad.max_length, pad.upper = "0123456789", DOB_DIGITS, False
            pad.typed = self.typed_dob

    def typed_from_pad(self, typed: str) -> None:
        """The keypad typed into the field it is on."""
        if self.field == "id":
            self.typed_id = typed
        else:
            self.typed_dob = typed

    def _scanned(self, _window: Any, text: str) -> None:
        for ch in text:
            self.press(ch)

    def _key(self, _window: Any, key: int, *_args: Any) -> bool:
        if key in (13, 271):  # Enter, as a scanner ends its badge; keypad Enter too
            self.press("enter")
            return True
        if key == 8:
            self.press("back")
            return True
        return False

    def press(self, key: str) -> None:
        """One keypad key (or a scanner's character)."""
        self.app.visit.touch()
        if key == "enter":
            if self.field == "id" and self.typed_id:
                self.field = "dob"
            elif self.typed_id and self.typed_dob:
                self.submit()
            return
        if key == "clear":
            self.ids.keypad.clear()
            return
        self.ids.keypad.press(key)

    def submit(self) -> None:
        """Sign in with what was typed; when that did not work, keep the id to try again.

        Only the birth date is cleared (it was impossible, or did not match with this id):
        the member retypes it without typing the id again.
        """
        self.app.do(self.visit.signin.identify, self.typed_id, self.typed_dob)
        if self.manager is not None and self.manager.current == self.name:
            self.typed_dob = ""
            self.field = "dob"

    def toggle_show(self, field: str) -> None:
        """Show or hide what was typed in one field."""
        self.app.visit.touch()
        if field == "id":
            self.show_id = not self.show_id
        else:
            self.show_dob = not self.show_dob

    def on_typed_id(self, *_args: Any) -> None:
        """Show dots for the id (or the id, when shown)."""
        if self.field == "id":
            self.ids.keypad.typed = self.typed_id
        self.ids.id_field.text = self.typed_id if self.show_id else _mask(self.typed_id)

    on_show_id = on_typed_id

    def on_typed_dob(self, *_args: Any) -> None:
        """Show dots (or the digits, when shown) and where the slashes go for the birth date."""
        if self.field == "dob":
            self.ids.keypad.typed = self.typed_dob
        typed = self.typed_dob
        shown = typed if self.show_dob else "".join("\u2022" for _ in typed)
        self.ids.dob_field.text = "/".join(p for p in (shown[:2], shown[2:4], shown[4:]) if p)

    on_show_dob = on_typed_dob
