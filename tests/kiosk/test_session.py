"""The kiosk session state machine, without a window."""

from __future__ import annotations

import pytest

from kiosk.session import WELCOME_TEXT, KioskSession


def test_every_text_exists_in_both_languages() -> None:
    assert set(WELCOME_TEXT) == {"en", "es"}
    assert set(WELCOME_TEXT["en"]) == set(WELCOME_TEXT["es"])
    assert all(text.strip() for texts in WELCOME_TEXT.values() for text in texts.values())


def test_language_toggles_and_wipe_forgets_everything() -> None:
    session = KioskSession()
    assert session.text("start") == "Start"
    assert session.toggle_language() == "es"
    assert session.text("start") == "Comenzar"
    session.answers["phq2"] = {"1": 2}
    session.screen = "results"
    session.wipe()
    assert session.answers == {} and session.language == "en" and session.screen == "welcome"


def test_wipe_returns_to_the_kiosks_own_language() -> None:
    session = KioskSession(language="es")
    session.toggle_language()
    session.wipe()
    assert session.language == "es"


def test_unknown_language_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="language"):
        KioskSession(language="fr")
