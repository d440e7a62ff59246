"""Identify: a member signs in at a kiosk with an employee or badge id plus birth date."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic import Strict as StrictMode

from .common import Out, Strict

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


def _parse_birth_date(value: object) -> date:
    # Only the exact YYYY-MM-DD text is accepted: lax parsing (timestamps, datetimes) would let
    # two different inputs mean the same date and makes the kiosk's keypad contract ambiguous.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise ValueError("must be a date written as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("is not a real calendar date") from exc


def _plausible_birth_date(value: date) -> date:
    # One day of slack: the kiosk's local date may be ahead of the server's.
    if value < EARLIEST_BIRTH_DATE or value > date.today() + timedelta(days=1):
        raise ValueError("must be between 1900-01-01 and today")
    return value


BirthDate = Annotated[date, StrictMode(False), BeforeValidator(_parse_birth_date),
                      AfterValidator(_plausible_birth_date)]


class IdentifyRequest(Strict):
    """An id the member types or scans (employee id OR badge id) and their birth date."""

    id: str = Field(
        min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The member's employee id or badge id; matched as sent or upper-cased.",
    )
    birth_date: BirthDate = Field(description="YYYY-MM-DD")


class IdentifyResponse(Out):
    """Who matched: an opaque, kiosk-bound reference and what the kiosk may show."""

    member_ref: str = Field(description="Signed reference; send it back, never parse it.")
    first_name: str
    language: str
