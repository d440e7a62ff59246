"""The kiosk session state machine: which screen is next and what the member has chosen."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from shared.paths import assets_dir


def _load_texts() -> dict[str, dict[str, str]]:
    """Read the kiosk's interface text (translations are data, in assets/locale)."""
    data = json.loads((assets_dir() / "locale" / "kiosk.json").read_text(encoding="utf-8"))
    return {lang: texts for lang, texts in data.items() if not lang.startswith("_")}


WELCOME_TEXT = _load_texts()


@dataclass
class KioskSession:
    """One member's visit; everything here is wiped when the session ends."""

    language: str = "en"
    screen: str = "welcome"
    answers: dict[str, dict[str, object]] = field(default_factory=dict)
    home_language: str = field(init=False, default="en")  # what a wipe returns to

    def __post_init__(self) -> None:
        if self.language not in WELCOME_TEXT:
            raise ValueError(f"language: must be one of {', '.join(WELCOME_TEXT)}, "
                             f"got {self.language!r}")
        self.home_language = self.language

    def text(self, key: str) -> str:
        """Return the welcome text for key in the session's language."""
        return WELCOME_TEXT[self.language][key]

    def toggle_language(self) -> str:
        """Switch between English and Spanish and return the new language."""
        self.language = "es" if self.language == "en" else "en"
        return self.language

    def wipe(self) -> None:
        """Forget everything about the member and return to the welcome screen."""
        self.answers.clear()
        self.language = self.home_language
        self.screen = "welcome"
