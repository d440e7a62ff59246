"""The kiosk's gettext catalogs: in step with the sources, Spanish complete, placeholders kept."""

from __future__ import annotations

import re

import pytest

from kiosk.messages import msgids, read_catalog
from shared.i18n import LANGUAGES

_FIELD = re.compile(r"\{[a-z_]*\}")


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalog_holds_exactly_the_text_the_kiosk_marks(language: str) -> None:
    in_catalog = {m.id for m in read_catalog(language) if m.id}
    wanted = msgids()
    assert wanted - in_catalog == set(), "run python -m kiosk.messages"
    assert in_catalog - wanted == set(), "run python -m kiosk.messages"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_with_the_same_placeholders(language: str) -> None:
    for message in read_catalog(language):
        if not message.id:
            continue
        assert isinstance(message.id, str) and isinstance(message.string, str)
        assert message.string.strip(), f"{language}: {message.id!r} is not translated"
        assert sorted(_FIELD.findall(message.string)) == sorted(_FIELD.findall(message.id)), \
            f"{language}: {message.id!r} changes its placeholders"


def test_the_spanish_catalog_is_spanish() -> None:
    catalog = read_catalog("es")
    same = [m.id for m in catalog if m.id and m.string == m.id]
    # Only names, codes and words spelled alike may stay as they are.
    assert set(same) <= {"ABC", "Onsite Wellness", "No"}


def test_the_scan_finds_marked_text_in_kv_and_python() -> None:
    found = msgids()
    assert "Start" in found  # kv: tr._("Start")
    assert "Please type your email address." in found  # Python: N_("...") in the visit
    assert "Question {n} of {total}" in found  # Python: tr._(...) in a screen


def _syllables(word: str) -> int:
    """A common English syllable estimate: vowel groups, a silent final e or -ed/-es dropped."""
    word = word.lower()
    if len(word) > 3:
        word = re.sub(r"(?:[^laeiouy]es|ed|[^laeiouy]e)$", "", word)
    return max(1, len(re.findall(r"[aeiouy]{1,2}", re.sub(r"^y", "", word))))


def _grade(text: str) -> float:
    """Flesch-Kincaid grade level (Kincaid et al. 1975): 0.39 words/sentence + 11.8
    syllables/word - 15.59."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", _FIELD.sub("X", text))
    sentences = max(1, len(re.findall(r"[.!?]+", text)))
    return (0.39 * len(words) / sentences
            + 11.8 * sum(_syllables(w) for w in words) / len(words) - 15.59)


def test_screen_sentences_read_at_a_plain_level() -> None:
    # Patient materials should read at grade 6-8 or below (NIH/AMA plain-language advice);
    # the formula means something for sentences only, so labels under 8 words are left out.
    # The instruments' own wording is validated as published and is not checked here.
    sentences = [m.id for m in read_catalog("en")
                 if isinstance(m.id, str) and len(m.id.split()) >= 8]
    assert len(sentences) >= 20
    too_hard = {text: round(_grade(text), 1) for text in sentences if _grade(text) > 8}
    assert too_hard == {}
    hard_words = "Individuals utilize comprehensive evaluations to facilitate determination."
    assert _grade(hard_words) > 8, "the measure must be able to fail"
