"""Keypad: the kiosk's one on-screen keypad (sign-in, numbers, admin PIN, phone, email).

After Electrum's one reusable keyboard control (``SeedKeyboard.qml``): a screen says which
keys it shows and in what order (``layout``), which characters may be typed (``allowed``),
how many (``max_length``) and whether what is typed shows as dots (``masked``); the keypad
builds the keys, keeps ``typed`` and ``shown``, and tells the screen about the rest through
events. Before it, five pads each repeated this (the phone pad once per key in kv).

Key names in ``layout``: one or more characters type themselves ("7", ".com"); ``back``
deletes the last character; ``enter`` dispatches ``on_enter``; ``""`` leaves a gap; any
other name in ``commands`` (such as "ABC") dispatches ``on_command`` for the screen.
A screen with a rule of its own (one decimal point; Delete that steps back from inches to
feet) binds ``on_key`` and returns True for a key it has taken.
"""

from __future__ import annotations

from typing import Any

from kivy.factory import Factory
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from shared.i18n import N_

BACK, ENTER, GAP = "back", "enter", ""
# The words of the keys that are not typed: msgids, translated by the key's own kv rule.
# ("123" reads the same in every language and is not one.)
KEY_WORDS = {BACK: N_("Delete"), ENTER: N_("OK"), "ABC": N_("ABC")}
DOT = "\u2022"
# The keys a screen or a test reaches by id, as when they were written out in kv.
KEY_IDS = {BACK: "delete", ENTER: "ok"}


class Keypad(GridLayout):  # type: ignore[misc]
    """Keys in a grid; types the allowed keys into ``typed``, up to ``max_length``."""

    layout = ListProperty([])
    allowed = StringProperty("")  # the characters that may be typed; "" allows every key
    max_length = NumericProperty(0)  # 0: no limit
    upper = BooleanProperty(False)  # letters are typed in capitals (a badge's "e1001")
    masked = BooleanProperty(False)
    commands = ListProperty(["ABC", "123"])
    key_fs = NumericProperty(48)  # the design font size of a character key
    typed = StringProperty("")
    shown = StringProperty("")  # what is typed, or a dot for each character when masked

    __events__ = ("on_key", "on_enter", "on_command")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fbind("layout", self._build)
        self.fbind("typed", self._show)
        self.fbind("masked", self._show)
        self._build()

    def _build(self, *_args: Any) -> None:
        self.clear_widgets()
        for name in KEY_IDS.values():
            self.ids.pop(name, None)
        for key in self.layout:
            if key == GAP:
                self.add_widget(Widget())
                continue
            button = Factory.PadKey()
            # Set after building: a kv class's own properties are not __init__ arguments.
            button.key, button.msgid = key, KEY_WORDS.get(key, "")
            if key in (BACK, ENTER):
                button.fs = 34
            elif len(key) > 1:
                button.fs = min(self.key_fs, 36)
            else:
                button.fs = self.key_fs
            button.bind(on_release=lambda _b, k=key: self.press(k))
            if key in KEY_IDS:
                self.ids[KEY_IDS[key]] = button
            self.add_widget(button)

    def _show(self, *_args: Any) -> None:
        self.shown = DOT * len(self.typed) if self.masked else self.typed

    def press(self, key: str) -> None:
        """One key (tapped, or a character from a badge scanner or keyboard)."""
        if self.dispatch("on_key", key):
            return  # the screen's own rule took it
        if key == BACK:
            self.typed = self.typed[:-1]
        elif key == ENTER:
            self.dispatch("on_enter")
        elif key in self.commands:
            self.dispatch("on_command", key)
        else:
            self.type_text(key)

    def type_text(self, text: str) -> bool:
        """Type the text if every character is allowed and it fits; say whether it was typed."""
        if self.upper:
            text = text.upper()
        if not text or (self.allowed and any(ch not in self.allowed for ch in text)):
            return False
        if self.max_length and len(self.typed) + len(text) > self.max_length:
            return False
        self.typed += text
        return True

    def clear(self) -> None:
        """Forget what was typed."""
        self.typed = ""

    def on_key(self, key: str) -> bool:
        """Before the keypad's own handling: a screen's handler returns True to take a key."""
        return False

    def on_enter(self) -> None:
        """The enter key (bound by the screen)."""

    def on_command(self, key: str) -> None:
        """A command key such as "ABC" (bound by the screen)."""


Factory.register("Keypad", cls=Keypad)
