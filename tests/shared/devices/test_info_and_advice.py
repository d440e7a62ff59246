"""Device Information strings (0x180A) and the plain advice for a cuff's status bits."""

from __future__ import annotations

import pytest

from shared.devices import BP_STATUS_CODES, DeviceValueError, parse_info_string, status_advice


def test_info_strings_are_utf8_without_padding() -> None:
    assert parse_info_string(b"Onsite Labs", "manufacturer") == "Onsite Labs"
    assert parse_info_string(b"BP-7000\x00\x00", "model") == "BP-7000"  # NUL padding dropped
    assert parse_info_string("Medisana Española".encode(), "manufacturer") == "Medisana Española"


@pytest.mark.parametrize(("value", "words"), [
    (b"\xff\xfe", "not UTF-8"), (b"AB\x07C", "control characters"), (b"x" * 65, "at most 64"),
])
def test_bad_info_strings_are_refused(value: bytes, words: str) -> None:
    with pytest.raises(DeviceValueError) as caught:
        parse_info_string(value, "serial")
    assert caught.value.field == "serial" and words in str(caught.value)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_status_bit_has_advice_in_each_language(lang: str) -> None:
    lines = {code: status_advice((code,), lang) for code in BP_STATUS_CODES}
    assert all(len(found) == 2 for found in lines.values())  # the heading, then the advice
    assert len({found[1] for found in lines.values()}) == len(BP_STATUS_CODES)
    assert status_advice((), lang) == []


def test_advice_is_in_the_members_language_and_in_bit_order() -> None:
    english = status_advice(("improper_position", "body_movement"), "en")
    spanish = status_advice(("improper_position", "body_movement"), "es")
    assert english[1].startswith("You moved") and english[2].startswith("Your arm")
    assert spanish[1].startswith("Se movió") and spanish[2].startswith("Su brazo")
    assert status_advice(("cuff_too_loose",), "fr") == status_advice(("cuff_too_loose",), "en")
