"""The welcome screen: start a check-up, or switch language."""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import ObjectProperty, StringProperty
from kivy.uix.screenmanager import Screen

from ..session import KioskSession

Builder.load_file(str(Path(__file__).with_suffix(".kv")))


class WelcomeScreen(Screen):  # type: ignore[misc]
    """First screen a member sees."""

    session: KioskSession = ObjectProperty(None)
    title_text = StringProperty("")
    subtitle_text = StringProperty("")
    start_text = StringProperty("")
    language_text = StringProperty("")
    status_text = StringProperty("")

    def on_session(self, *_args: object) -> None:
        """Render the texts when the session is attached."""
        self.refresh()

    def refresh(self) -> None:
        """Show the texts in the session's language."""
        s = self.session
        self.title_text = s.text("title")
        self.subtitle_text = s.text("subtitle")
        self.start_text = s.text("start")
        self.language_text = s.text("language")
        if self.status_text:
            self.status_text = s.text("not_ready")

    def toggle_language(self) -> None:
        """Switch English/Spanish."""
        self.session.toggle_language()
        self.refresh()

    def start(self) -> None:
        """Begin a check-up (needs a paired server; until then, say so plainly)."""
        self.status_text = self.session.text("not_ready")
