"""What the kiosk says: sentences in one language, and the SSML handed to espeak-ng.

Kept apart from Kivy and from espeak itself, so tests check the words without a window or a
sound card. Phone numbers and the short crisis lines (988, 911) are read digit by digit, as
people say them ("nine eight eight", never "nine hundred eighty-eight"); espeak-ng does this
for text inside ``<say-as interpret-as="characters">``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from shared.i18n import check_language

# espeak-ng's voices for the kiosk's languages: American English, and Latin American Spanish
# (the Spanish most members in the US hear at home; espeak-ng's "es" is Castilian).
VOICES = {"en": "en-us", "es": "es-419"}

# 988 and 911 (also in 988lifeline.org), and numbers written like phone numbers
# (+1 555 0199, 555-0100, (555) 010-0142): said one digit at a time.
_SPELLED = re.compile(r"(?<![\d.,])(?:988|911)(?!\d|[.,]\d)|\+?\(?\d[\d ().-]{5,}\d\b")
# A blood pressure as written on screen (152/96): said "152 over 96", not "slash".
_PRESSURE = re.compile(r"\b(\d{2,3})/(\d{2,3})\b")
_OVER = {"en": "over", "es": "sobre"}


@dataclass(frozen=True)
class Utterance:
    """A screen's words in one language, sentence by sentence (never what a member typed)."""

    language: str
    sentences: tuple[str, ...]

    def __post_init__(self) -> None:
        check_language(self.language)

    @property
    def voice(self) -> str:
        """The espeak-ng voice for this language."""
        return VOICES[self.language]

    @property
    def text(self) -> str:
        """The plain words, one sentence a line (what tests and people read)."""
        return "\n".join(self.sentences)

    def ssml(self) -> str:
        """The words as SSML for ``espeak-ng -m``: escaped, numbers said as people say them."""
        parts = []
        for sentence in self.sentences:
            said = _PRESSURE.sub(lambda m: f"{m[1]} {_OVER[self.language]} {m[2]}", sentence)
            pieces, last = [], 0
            for match in _SPELLED.finditer(said):
                pieces.append(escape(said[last:match.start()]))
                digits = re.sub(r"\D", "", match.group())
                pieces.append(f'<say-as interpret-as="characters">{digits}</say-as>')
                last = match.end()
            pieces.append(escape(said[last:]))
            text = "".join(pieces).strip()
            # A sentence that ends without a stop would run into the next one.
            if text and said.strip()[-1] not in ".!?:;":
                text += "."
            parts.append(text)
        return "<speak>" + "\n".join(parts) + "</speak>"

    def __bool__(self) -> bool:
        return any(s.strip() for s in self.sentences)


def sentences(*texts: str) -> list[str]:
    """Non-empty lines of the given texts (labels may hold several lines), markup removed."""
    found = []
    for text in texts:
        for line in re.sub(r"\[/?[a-z]+(?:=[^\]]*)?\]", "", text or "").splitlines():
            line = line.strip()
            if line:
                found.append(line)
    return found
