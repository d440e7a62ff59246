"""Schemas used by every API area."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic import Strict as StrictMode

# C0 controls and DEL: never meaningful in a kiosk's text, and PostgreSQL refuses NUL in text,
# so they are refused at validation on every database alike.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# An email address as the server accepts it (a consent's, an offline sign-in's contact); the
# kiosk checks typed ones with it.
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,60}$"

class Strict(BaseModel):
    """Base for request bodies: unknown fields are errors, and types are not coerced.

    ``"yes"`` is not true and ``3.0`` is not a whole number: consent above all must be a real
    ``true``. Timestamps are the one exception (JSON has no date type; see AwareDatetime).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def may_hold_control_characters(text: bytes) -> bool:
    """Tell whether the strings of a JSON text, once parsed, may hold a control character.

    A strict JSON parser (Python's, as Flask reads a body) refuses C0 characters written raw
    inside a string, so they reach one only through an escape (``\\n``, ``\\u0000``); DEL may
    also be written raw. A text with neither a backslash nor a DEL byte holds none, in any key
    or value, in UTF-8 as in UTF-16 or UTF-32. False means: no need to walk what it parses to.
    """
    return b"\\" in text or b"\x7f" in text


def control_character_paths(data: object, path: str = "") -> Iterator[str]:
    """Yield the dotted path of every text (key or value) in data holding a control character."""
    if isinstance(data, str):
        if _CONTROL.search(data):
            yield path or "body"
    elif isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _CONTROL.search(key):
                yield path or "body"
            yield from control_character_paths(value, where)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from control_character_paths(value, f"{path}.{index}" if path else str(index))


class Out(BaseModel):
    """Base for response bodies."""

    model_config = ConfigDict(extra="ignore")


class FieldError(Out):
    """One bad field in a problem document."""

    field: str
    message: str


class Problem(Out):
    """RFC 9457 problem details, with the bad fields listed."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a timezone offset (for example 2026-11-27T09:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc


# A UUID arrives as text, which strict mode would refuse; the text itself is still checked.
UuidText = Annotated[UUID, StrictMode(False)]
def _timestamp_text(value: object) -> object:
    # Lax mode would read a bare number as Unix seconds; the API's timestamps are text only.
    if isinstance(value, bool | int | float):
        raise ValueError("must be an ISO 8601 timestamp written as text")
    return value


# Lax on purpose: a timestamp arrives as ISO 8601 text, which strict mode would refuse.
AwareDatetime = Annotated[datetime, StrictMode(False), BeforeValidator(_timestamp_text),
                          AfterValidator(_aware)]

# What a kiosk's clock can say, however wrong it is: a clock that lost its time restarts at the
# Unix epoch. Before it, a time is a bug, not a clock; and stored as sent, year 1 broke every
# dashboard page that shows it in the site's zone (it has no local time west of UTC), as would
# the last hours of year 9999 east of UTC (the zones reach 14 hours either side).
EARLIEST_KIOSK_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_KIOSK_TIME = datetime(9999, 12, 31, tzinfo=UTC)


def plausible_kiosk_time(value: datetime) -> bool:
    """Tell whether an aware time is one a kiosk's clock, right or wrong, could say."""
    return EARLIEST_KIOSK_TIME <= value <= LATEST_KIOSK_TIME


def _kiosk_time(value: datetime) -> datetime:
    if not plausible_kiosk_time(value):
        raise ValueError("is not a time a kiosk's clock can say (1970-01-01 to 9999-12-31)")
    return value


# A time read from a kiosk's clock (when an answer was taken, a crisis raised): kept as sent,
# flagged by the server when far off, refused only when no clock could say it.
KioskTime = Annotated[AwareDatetime, AfterValidator(_kiosk_time)]

IdempotencyKey = Annotated[
    str,
    # UUIDs are case-insensitive; one spelling, so a replay in capitals is still a replay.
    AfterValidator(str.lower),
    Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="A client-generated UUID; replaying it returns the first answer.",
    ),
]
JsonObject = dict[str, Any]
