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
    assert "Not scored" in found  # Python: N_("Not scored")
    assert "Question {n} of {total}" in found  # Python: tr._(...) in a screen
