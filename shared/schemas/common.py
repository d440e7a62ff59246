"""Schemas used by every API area."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base for request bodies: unknown fields are errors, so typos are reported, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
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
