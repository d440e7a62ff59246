"""The kiosk catalog: enabled instruments, upcoming events with seats, and site settings.

A kiosk polls this every sync interval, so the expensive part (instrument definitions, the
bulk of the body) is serialised once per process and spliced into the body as text. A poll
costs the auth query, one events+slots query, a small JSON dump and one SHA-256 of the body.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.assessments import load_definition
from shared.triage import CRISIS_TRIGGERS, crisis_guidance

from ..models import Event, Site, Slot, utcnow
from .instruments import offered_instruments
from .sites import TIMEOUTS, effective

if TYPE_CHECKING:
    from ..settings import Settings


@dataclass(frozen=True)
class Catalog:
    """A rendered catalog: canonical JSON bytes and their strong ETag."""

    body: bytes
    etag: str


def _dumps(value: Any) -> str:
    # Canonical form: sorted keys, no whitespace, so equal content always hashes equally.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=8)
def instruments_json(instrument_ids: tuple[str, ...]) -> str:
    """Return the canonical JSON list of enabled instruments (cached per process)."""
    items = []
    for iid in instrument_ids:
        definition = load_definition(iid)
        items.append({"id": iid, "version": definition["version"], "definition": definition})
    return _dumps(items)


@functools.lru_cache(maxsize=1)
def crisis_json() -> str:
    """Return the crisis guidance of every hard-wired trigger, from shared.triage."""
    return _dumps([crisis_guidance(t.trigger).as_dict() for t in CRISIS_TRIGGERS])


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # A bad zone name must not take every kiosk down; UTC is still a correct instant.
        return ZoneInfo("UTC")


def upcoming_events(session: Session, site: Site,
                    now: datetime | None = None) -> list[dict[str, Any]]:
    """Return the site's not cancelled events with their future, not cancelled slots."""
    now = now or utcnow()
    zone = _zone(site.timezone)
    rows = session.execute(
        select(Event, Slot)
        .join(Slot, Slot.event_id == Event.id)
        .where(Event.site_id == site.id, Event.cancelled.is_(False),
               Slot.cancelled.is_(False), Slot.start_at > now)
        .order_by(Slot.start_at, Event.id, Slot.id)
    ).all()
    events: dict[int, dict[str, Any]] = {}
    for event, slot in rows:
        entry = events.get(event.id)
        if entry is None:
            entry = events[event.id] = {
                "id": event.public_id,
                "kind": event.kind,
                "title": {"en": event.title, "es": event.title_es or event.title},
                # Each language where the coordinator gave one; the kiosk falls back to the
                # other language when its own is missing.
                "description": {lang: text for lang, text in (
                    ("en", event.description), ("es", event.description_es)) if text} or None,
                "location": event.location,
                "slots": [],
            }
        entry["slots"].append({
            "id": slot.public_id,
            "start_at": _utc(slot.start_at),
            "end_at": _utc(slot.end_at),
            "start_local": slot.start_at.astimezone(zone).isoformat(),
            "end_local": slot.end_at.astimezone(zone).isoformat(),
            "capacity": slot.capacity,
            "seats_left": slot.seats_left,
        })
    return list(events.values())


def site_settings(site: Site, settings: Settings) -> dict[str, Any]:
    """Return languages, timeouts and branding; a site's own settings override the config."""
    own = site.settings or {}
    # A site's settings (set on the admin page, checked there) override the server's: the
    # same overlay the admin page shows (sites.effective).
    values = effective(site, settings)
    return {
        "languages": list(own.get("languages") or settings.languages),
        "units": str(own.get("units") or settings.kiosk_units),
        # What the privacy notice promises is what retention does (services/retention.py).
        "retention_days": settings.retention_days,
        "timeouts": {key: int(values[key]) for key in TIMEOUTS},
        # Shown after the fixed 988/911 guidance, never instead of it.
        "local_crisis_resources": [
            {"label": {"en": r["label"], "es": r["label"]}, "phone": r.get("phone"),
             "url": r.get("url")}
            for r in values["local_crisis_resources"] or []],
        "branding": {
            "name": str(values["branding_name"]),
            "color": str(values["branding_color"]),
        },
    }


def build_catalog(session: Session, site: Site, settings: Settings,
                  now: datetime | None = None) -> Catalog:
    """Render the catalog for site as canonical JSON with a strong ETag over the bytes."""
    enabled = offered_instruments(site, settings)
    parts = {
        "crisis": crisis_json(),
        "events": _dumps(upcoming_events(session, site, now)),
        "instruments": instruments_json(tuple(enabled)),
        "settings": _dumps(site_settings(site, settings)),
        "site": _dumps({"slug": site.slug, "name": site.name, "timezone": site.timezone}),
    }
    text = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in sorted(parts.items())) + "}"
    body = text.encode("utf-8")
    return Catalog(body=body, etag='"' + hashlib.sha256(body).hexdigest() + '"')
