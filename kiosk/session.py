"""The kiosk session state machine: which screen is next and what the member has chosen."""

from __future__ import annotations

from dataclasses import dataclass, field

WELCOME_TEXT = {
    "en": {
        "title": "Wellness check-up",
        "subtitle": "Two to five minutes. Private. Nothing stays on this screen.",
        "start": "Start",
        "language": "Español",
        "not_ready": "This kiosk is not paired with the onsite server yet. "
                     "Please ask the wellness coordinator.",
    },
    "es": {
        "title": "Chequeo de bienestar",
        "subtitle": "De dos a cinco minutos. Privado. Nada queda en esta pantalla.",
        "start": "Comenzar",
        "language": "English",
        "not_ready": "Este quiosco aún no está conectado al servidor del sitio. "
                     "Pregunte al coordinador de bienestar.",
    },
}


@dataclass
class KioskSession:
    """One member's visit; everything here is wiped when the session ends."""

    language: str = "en"
    screen: str = "welcome"
    answers: dict[str, dict[str, object]] = field(default_factory=dict)

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
        self.language = "en"
        self.screen = "welcome"
