"""KioskApp: builds the screen manager and receives its collaborators from outside."""

from __future__ import annotations

import os

from .session import KioskSession
from .settings import KioskSettings


def _configure_window(settings: KioskSettings) -> None:
    from kivy.config import Config

    Config.set("graphics", "width", str(settings.width))
    Config.set("graphics", "height", str(settings.height))
    Config.set("graphics", "fullscreen", "auto" if settings.fullscreen else "0")
    Config.set("kivy", "exit_on_escape", "0")


def build_app(settings: KioskSettings | None = None, session: KioskSession | None = None):  # type: ignore[no-untyped-def]
    """Create the KioskApp with its settings and session (Kivy imported here, not at import)."""
    resolved = settings or KioskSettings.from_env()
    _configure_window(resolved)
    from kivy.app import App
    from kivy.uix.screenmanager import NoTransition, ScreenManager

    from .screens.welcome import WelcomeScreen

    class KioskApp(App):  # type: ignore[misc]
        """The touchscreen kiosk."""

        title = "Onsite Wellness kiosk"

        def __init__(self) -> None:
            super().__init__()
            self.settings = resolved
            self.session = session or KioskSession(language=resolved.language)

        def build(self) -> ScreenManager:
            manager = ScreenManager(transition=NoTransition())
            manager.add_widget(WelcomeScreen(name="welcome", session=self.session))
            return manager

    return KioskApp()


def main() -> None:
    """Console entry point: `onsite-kiosk`."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    build_app().run()


if __name__ == "__main__":
    main()
