"""Events and slots: building a day's slots in the site's local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..models import Event, Slot


class SlotTimeError(ValueError):
    """A local start time that does not exist at the site (skipped by a DST change)."""


def make_slots(event: Event, day: date, start: time, count: int, minutes: int,
               capacity: int, zone: ZoneInfo) -> list[Slot]:
    """Build count consecutive slots starting at local day+start, stored in UTC.

    Steps are taken in UTC so that slots stay back to back across a DST change; a local start
    time that does not exist (skipped by spring-forward) is refused rather than guessed.
    """
    local = datetime.combine(day, start, tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise SlotTimeError(f"{day} {start:%H:%M} does not exist in {zone.key} (clocks skip it)")
    first = local.astimezone(UTC)
    out = []
    for i in range(count):
        begin = first + timedelta(minutes=minutes * i)
        out.append(Slot(event_id=event.id, start_at=begin,
                        end_at=begin + timedelta(minutes=minutes), capacity=capacity))
    return out
