"""shared.i18n: the languages, picking from data's text maps, compiled gettext catalogs."""

from __future__ import annotations

import pytest

from shared.i18n import LANGUAGES, NATIVE_NAMES, check_language, pick, translations


def test_the_kiosk_speaks_english_and_spanish() -> None:
    assert LANGUAGES == ("en", "es")
    assert set(NATIVE_NAMES) == set(LANGUAGES)


def test_an_unknown_language_is_refused_by_field_name() -> None:
    with pytest.raises(ValueError, match="language"):
        check_language("fr")


def test_pick_falls_back_to_english_then_anything() -> None:
    assert pick({"en": "Yes", "es": "Sí"}, "es") == "Sí"
    assert pick({"en": "Yes"}, "es") == "Yes"
    assert pick({"es": "Sí"}, "en") == "Sí"
    assert pick("plain", "es") == "plain"
    assert pick(None, "en") == ""


def test_catalogs_compile_from_their_po_sources() -> None:
    assert translations("es").gettext("Start") == "Comenzar"
    assert translations("en").gettext("Start") == "Start"
    # An id no catalog knows comes back as itself, as gettext does.
    assert translations("es").gettext("no such text") == "no such text"
