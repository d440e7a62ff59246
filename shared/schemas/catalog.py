"""Catalog: what a kiosk shows (instruments, upcoming events and slots, site settings)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from .common import Out

LocalizedText = dict[str, str]


class CatalogInstrument(Out):
    """One enabled instrument at its current version, with its full definition."""

    id: str
    version: str
    definition: dict[str, Any]


class CatalogSlot(Out):
    """A bookable slot; times are UTC, with the site's local wall-clock time alongside."""

    id: str
    start_at: datetime = Field(description="UTC, ISO 8601 with Z")
    end_at: datetime = Field(description="UTC, ISO 8601 with Z")
    start_local: str = Field(description="Site-local time, ISO 8601 with offset")
    end_local: str = Field(description="Site-local time, ISO 8601 with offset")
    capacity: int
    seats_left: int


class CatalogEvent(Out):
    """An upcoming, not cancelled event of the kiosk's site with its future slots."""

    id: str
    kind: str
    title: LocalizedText
    description: LocalizedText | None = Field(
        default=None, description="In each language the coordinator gave (en, es); a kiosk "
                                  "shows the other language when its own is missing.")
    location: str | None = None
    slots: list[CatalogSlot]

    @field_validator("description", mode="before")
    @classmethod
    def _one_language(cls, value: object) -> object:
        # A catalog cached before descriptions had languages held one English text.
        return {"en": value} if isinstance(value, str) else value


class CrisisResource(Out):
    """A phone number, text number or web address to reach help."""

    label: LocalizedText
    phone: str | None = None
    sms: str | None = None
    url: str | None = None


class CrisisInfo(Out):
    """The fixed guidance for one crisis trigger (from shared.triage)."""

    trigger: str
    severity: str
    title: LocalizedText
    text: LocalizedText
    resources: list[CrisisResource]


class Timeouts(Out):
    """Kiosk timers, in seconds."""

    idle_seconds: int
    idle_countdown_seconds: int
    session_cap_seconds: int
    crisis_screen_seconds: int
    sync_seconds: int


class Branding(Out):
    """Name and accent colour the kiosk shows."""

    name: str
    color: str


class CatalogSettings(Out):
    """Site settings a kiosk needs."""

    languages: list[str]
    units: Literal["imperial", "metric"] = Field(
        default="imperial", description="Height and weight are first asked in these units "
                                         "(US sites: feet, inches and pounds); a member may "
                                         "switch.")
    retention_days: int | None = Field(
        default=None, ge=1, description="Answers are kept onsite this many days after the "
                                        "member's advocate has them (RETENTION_DAYS); the "
                                        "kiosk's privacy notice says so. Absent from older "
                                        "servers: the notice then words it without a number.")
    timeouts: Timeouts
    branding: Branding
    local_crisis_resources: list[CrisisResource] = Field(
        default_factory=list,
        description="The site's own crisis resources, shown after the fixed 988/911 guidance "
                    "(never instead of it).")


class CatalogSite(Out):
    """The kiosk's site."""

    slug: str
    name: str
    timezone: str


class CatalogResponse(Out):
    """Everything a kiosk needs to run offline until the next poll."""

    site: CatalogSite
    instruments: list[CatalogInstrument]
    events: list[CatalogEvent]
    settings: CatalogSettings
    crisis: list[CrisisInfo]
