"""The SSML handed to espeak-ng: escaped, crisis lines and phone numbers said digit by digit,
a blood pressure said "over"."""

from __future__ import annotations

import pytest

from kiosk.speech.utterance import Utterance, sentences


def test_988_911_and_phone_numbers_are_spelled_and_other_numbers_are_not() -> None:
    ssml = Utterance("en", ("Call or text 988, or chat at 988lifeline.org.",
                            "Emergency services: call 911", "Riverside: +1 555 0199",
                            "It takes about 5 minutes, 90 days, in 1988.")).ssml()
    spelled = '<say-as interpret-as="characters">{}</say-as>'
    assert ssml.count(spelled.format("988")) == 2 and spelled.format("911") in ssml
    assert spelled.format("15550199") in ssml
    assert "about 5 minutes, 90 days, in 1988." in ssml
    assert "call <say-as" in ssml and "911</say-as>." in ssml  # a stop ends each sentence


@pytest.mark.parametrize(("language", "over"), [("en", "152 over 96"), ("es", "152 sobre 96")])
def test_a_blood_pressure_is_said_over(language: str, over: str) -> None:
    assert over in Utterance(language, ("152/96 mmHg",)).ssml()


def test_markup_and_xml_are_never_read_out() -> None:
    said = Utterance("en", tuple(sentences("[b]Book & go <now>[/b]\n\n  ")))
    assert said.sentences == ("Book & go <now>",)
    assert said.ssml() == "<speak>Book &amp; go &lt;now&gt;.</speak>"
    assert not Utterance("en", ("  ",))
    with pytest.raises(ValueError):
        Utterance("fr", ("Bonjour",))
