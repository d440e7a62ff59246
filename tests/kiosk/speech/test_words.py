"""What each screen says (kiosk.speech.words), without a window: the question and its answers,
or the message, in the visit's language; the crisis screen's 988 and 911; never what was typed.

The crisis path is PHQ-9 item 9 >= 1 (DESIGN.md 3.6), as in tests/kiosk/test_visit.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from kiosk.flow import CRISIS, DONE, MENU, OFFER, QUESTION, RESULTS
from kiosk.speech import words
from kiosk.speech.utterance import VOICES, Utterance
from kiosk.visit import Visit
from shared.i18n import translations
from tests.kiosk.test_visit import _signed_in, _visit

KV = Path(words.__file__).resolve().parents[1] / "ui" / "kv"


def _say(screen: str, visit: Visit, **view: object) -> Utterance:
    return words.utterance(screen, visit, translations(visit.language).gettext,
                           SimpleNamespace(**view))


def _crisis_visit(language: str = "en") -> Visit:
    visit, _ = _signed_in()
    visit.journey.language = language
    visit.single("phq9")
    while visit.journey.question != "9":
        visit.answer(0)
    visit.answer(1)
    visit.answer(0)
    assert visit.screen == CRISIS
    return visit


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_question_is_read_with_its_answers_in_the_visits_language(language: str) -> None:
    visit, _ = _signed_in()
    visit.journey.language = language
    visit.single("gad7")
    assert visit.screen == QUESTION
    said = _say("question", visit)
    assert said.language == language and said.voice == VOICES[language]
    assert visit.question_text() in said.sentences
    for _value, text in visit.options():
        assert text in said.sentences
    if language == "es":
        assert "Puede tocar:" in said.sentences and "Prefiero no responder" in said.sentences
        assert not any(s in said.sentences for s in ("Not at all", "You can tap:"))
    else:
        assert "Not at all" in said.sentences and "Prefer not to answer" in said.sentences


def test_a_number_question_says_its_range_and_how_to_answer_it_never_the_typed_value() -> None:
    visit, _ = _signed_in()
    visit.single("blood_pressure")
    said = _say("question", visit, range_text="From 60 to 260", typed="152")
    assert "From 60 to 260" in said.sentences
    assert "Type the number, then tap OK." in said.sentences
    assert "152" not in said.text


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_crisis_screen_reads_its_guidance_988_and_911(language: str) -> None:
    visit = _crisis_visit(language)
    said = _say("crisis", visit)
    guidance = visit.crisis()[0]
    assert guidance["title"] in said.sentences and guidance["text"] in said.sentences
    assert "988" in said.text and "911" in said.text
    # The site's own line after the fixed guidance (fakes.py: Riverside Crisis Center).
    assert said.text.index("Riverside Crisis Center") > said.text.index("988")
    # Given to espeak-ng: 988 is there, to be said digit by digit.
    assert '<say-as interpret-as="characters">988</say-as>' in said.ssml()
    assert '<say-as interpret-as="characters">911</say-as>' in said.ssml()
    staff = "Staff on site can help you now." if language == "en" else "ayudarle"
    assert staff in said.text


def test_results_read_each_finding_and_done_repeats_988_after_a_crisis() -> None:
    visit = _crisis_visit()
    visit.close_crisis(confirm=False)
    visit.journey.crisis_confirm_ready(visit.clock() + 10)
    while visit.screen == CRISIS:
        visit.close_crisis(confirm=True)
    assert visit.screen == RESULTS
    said = _say("results", visit)
    finding = visit.findings()[0]
    assert finding.said in said.sentences
    assert any(finding.title in s for s in said.sentences)
    assert "988" in said.text
    visit.after_results()
    visit.decline_contact()
    assert visit.screen == MENU
    visit.fire("finish")
    assert visit.screen == DONE
    assert "988" in _say("done", visit).text


def test_the_sign_in_screen_never_says_what_was_typed() -> None:
    visit, _ = _visit()
    visit.identify("E9999", "03141985")
    said = _say("identify", visit, typed_id="E9999", typed_dob="03141985")
    assert "could not find you" in said.text  # why the last try did not work
    assert "E9999" not in said.text and "1985" not in said.text


def test_the_offer_and_the_menu_say_their_choices() -> None:
    visit, _ = _signed_in()
    said = _say("menu", visit, picking=True, signed_in="Signed in as Ana")
    assert "Signed in as Ana" in said.sentences and "Book an appointment" in said.sentences
    assert visit.instrument_title("who5") in said.sentences
    visit.checkup()
    visit.answer(2)
    visit.answer(2)
    assert visit.screen == OFFER
    said = _say("offer", visit, why="Your answers suggest...", details="PHQ-9")
    assert said.sentences[-3:] == ("You can tap:", "Yes, continue", "No thanks")


def test_every_member_screen_says_something_in_both_languages() -> None:
    for language in ("en", "es"):
        visit, _ = _visit()
        visit.journey.language = language
        for screen in ("attract", "privacy", "identify", "menu", "referral", "done", "qr",
                       "booking"):
            said = _say(screen, visit, heading="x", offline=True)
            assert said and said.language == language, screen


def test_the_fixed_words_are_the_ones_the_screens_show() -> None:
    # Each msgid a screen's words use (besides the speech-only ones) is on that screen: when
    # a kv file's wording changes, the spoken words must follow.
    source = Path(words.__file__).read_text(encoding="utf-8")
    kv_text = {p.stem: p.read_text(encoding="utf-8") for p in KV.glob("*.kv")}
    speech_only = {words.CHOICES, words.TYPE_NUMBER, words.TYPE_EMAIL}
    kv_of = {"phone_pad": "referral", "email_pad": "referral"}  # the pads' rules live there
    screens = "".join(p.read_text(encoding="utf-8")
                      for p in sorted((KV.parent / "screens").glob("*.py")))
    # Helpers that speak for one screen, checked against that screen's words.
    helpers = {"_retention": "privacy"}
    checked = [(name, function.__name__) for name, function in words.SCREENS.items()
               if function is not words.staff] + [(s, h) for h, s in helpers.items()]
    for name, function_name in checked:
        body = source[source.index(f"def {function_name}("):]
        body = body[:body.index("\n\n\ndef ") if "\n\n\ndef " in body else len(body)]
        ids = {m.replace('"\n          "', "").replace('"\n                            "', "")
               for m in re.findall(r'_\("((?:[^"\\]|\\.|"\s*\n\s*")*)"\)', body)}
        flat = {re.sub(r'"\s*\n\s*"', "", i) for i in ids}
        for msgid in flat - speech_only:
            assert f'"{msgid}"' in kv_text[kv_of.get(name, name)] + screens, (name, msgid)


def test_a_pad_is_read_in_the_language_on_show_and_never_what_was_typed() -> None:
    # The phone and email pads stand over the screen's footer (issue 19): their own speaker
    # reads them, in the member's language.
    for language, name, first in (("en", "phone_pad", "Your phone number, with its area code"),
                                  ("es", "email_pad", "Su correo electrónico")):
        visit, _ = _signed_in()
        visit.journey.language = language
        said = _say(name, visit)
        assert said.language == language and said.sentences[0] == first, said
        assert said.sentences[-1] in ("Cancel", "Cancelar")


def test_a_measuring_cuff_is_read_instead_of_the_number_pad() -> None:
    visit, _ = _signed_in()
    visit.single("blood_pressure")
    said = _say("question", visit, device=["Put the cuff on and press its start button.",
                                           "Waiting for the cuff: 30 s", ""],
                device_buttons=["Type it instead"])
    assert "Put the cuff on and press its start button." in said.sentences
    assert "Type the number, then tap OK." not in said.sentences
    assert said.sentences[-2:] == ("Type it instead", "Prefer not to answer")
