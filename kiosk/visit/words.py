"""What a visit says and reads: asset words, the result shapes, and the typed-input checks.

Plain data and pure functions, shared by the per-area models of ``kiosk.visit``: the results'
and offers' words (assets/kiosk/*.json, with their sources there), the instruments' titles,
and the checks of what a member types (email, birth date) before anything is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from shared.i18n import N_
from shared.paths import assets_dir
from shared.schemas.common import EMAIL_PATTERN

# Screeners a member can take one at a time from the menu (all have a kiosk-friendly form).
SINGLE_SCREENERS = ("phq9", "gad7", "blood_pressure", "bmi", "ada_risk", "audit_c", "who5")
CONTACT_METHODS = ("phone", "text", "email")
CONTACT_TIMES = ("morning", "afternoon", "evening", "any")
# The server's own rule for ConsentRequest.email: what it would refuse is refused here, at once.
_EMAIL = re.compile(EMAIL_PATTERN)
EMAIL_MAX = 254


@lru_cache(maxsize=1)
def _result_levels() -> Mapping[str, Mapping[str, str]]:
    data = json.loads((assets_dir() / "kiosk" / "result_levels.json").read_text("utf-8"))
    levels: Mapping[str, Mapping[str, str]] = data["levels"]
    return levels


@lru_cache(maxsize=1)
def _result_words() -> Mapping[str, Any]:
    data: Mapping[str, Any] = json.loads(
        (assets_dir() / "kiosk" / "result_words.json").read_text("utf-8"))
    return data


def _number(value: object, language: str) -> str:
    """A member's number as people read it in their language (152, 27.7, 27,7)."""
    from babel.numbers import format_decimal

    if not isinstance(value, int | float):
        return ""
    return str(format_decimal(round(float(value), 1), format="#,##0.#", locale=language))


@lru_cache(maxsize=1)
def _offer_words() -> Mapping[str, Mapping[str, Any]]:
    data = json.loads((assets_dir() / "kiosk" / "follow_ups.json").read_text("utf-8"))
    offers: Mapping[str, Mapping[str, Any]] = data["offers"]
    return offers


@lru_cache(maxsize=1)
def _question_hints() -> Mapping[str, Mapping[str, str]]:
    data = json.loads((assets_dir() / "kiosk" / "question_hints.json").read_text("utf-8"))
    hints: Mapping[str, Mapping[str, str]] = data["hints"]
    return hints


@lru_cache(maxsize=64)
def _texts(instrument_id: str, version: str | None = None) -> Mapping[str, Any]:
    """An instrument's title, preamble and band labels (read once: a definition is a deep copy
    per call, too slow to make on every question)."""
    from shared.assessments import load_definition

    definition = load_definition(instrument_id, version)
    return {"title": definition.get("title"), "preamble": definition.get("preamble"),
            "bands": {b["id"]: b.get("label") for b in
                      definition.get("scoring", {}).get("bands", [])}}


@dataclass(frozen=True)
class Finding:
    """One result in plain words: the member's number, what it means, one next step."""

    instrument: str
    title: str
    level: str  # ok | watch | act | not_scored
    level_words: str  # the level said in words (never colour alone)
    said: str  # "Your blood pressure: 152/96. That is high (stage 2)."
    step: str  # one next step
    crisis: bool  # this instrument raised a crisis this visit


@dataclass(frozen=True)
class CrisisSummary:
    """What the results open with when the visit raised a crisis."""

    heading: str
    seen: list[str]  # what was seen, one line per crisis
    staff: str  # staff were told, or please tell them
    lines: str  # 988 and 911


@dataclass(frozen=True)
class FollowUpOffer:
    """What the offer screen says about a follow-up screener, in the visit's language."""

    instrument: str
    title: str
    topic: str  # what its questions are about ("mood"); empty when the assets do not say
    questions: int
    minutes: int | None


@dataclass(frozen=True)
class QrCode:
    """One QR code and what scanning it does (caption is an English msgid)."""

    kind: str  # advocate | vcard | ticket
    content: str
    caption: str


def email_problem(typed: str) -> str | None:
    """Why an email address would be refused (the server's pattern), or None when it is fine."""
    if not typed:
        return N_("Please type your email address.")
    if len(typed) > EMAIL_MAX or not _EMAIL.fullmatch(typed):
        return N_("That email address does not look complete. "
                  "Please check it, for example name@example.com.")
    return None


def mask_email(typed: str) -> str:
    """Show an email address being typed with its name part hidden: only the last key shows.

    The part after the @ stays readable: it is where typing mistakes hide, and it says little
    about who the member is.
    """
    name, at, domain = typed.partition("@")
    if at:
        return "\u2022" * len(name) + at + domain
    return "\u2022" * (len(name) - 1) + name[-1:]


def parse_birth_date(typed: str) -> str | None:
    """Read eight keypad digits (month, day, year) as an ISO date, or None when not a real date."""
    digits = "".join(ch for ch in typed if ch.isdigit())
    if len(digits) != 8:
        return None
    try:
        born = date(int(digits[4:]), int(digits[:2]), int(digits[2:4]))
    except ValueError:
        return None
    if born.year < 1900 or born > date.today():
        return None
    return born.isoformat()


def question_unit(spec: Mapping[str, Any]) -> str:
    """The unit to show beside a number entry (UCUM codes read as people write them)."""
    unit = str(spec.get("unit", ""))
    return {"mm[Hg]": "mmHg", "[in_i]": "in", "[lb_av]": "lb", "a": ""}.get(unit, unit)
