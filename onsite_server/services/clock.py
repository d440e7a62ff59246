"""Kiosk clocks: their timestamps are kept as sent, and flagged when far from the server's."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.schemas.common import plausible_kiosk_time

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("onsite_server.clock")


@dataclass(frozen=True)
class ClockPolicy:
    """How far a kiosk's timestamp may sit from the server's receive time before it is flagged.

    Behind is generous: a kiosk that was offline for days legitimately sends old items.
    """

    ahead: timedelta
    behind: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ClockPolicy:
        """Build the policy from KIOSK_CLOCK_AHEAD_SECONDS and KIOSK_CLOCK_BEHIND_DAYS."""
        return cls(ahead=timedelta(seconds=settings.kiosk_clock_ahead_seconds),
                   behind=timedelta(days=settings.kiosk_clock_behind_days))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClockPolicy:
        """Build the policy from KIOSK_CLOCK_AHEAD_SECONDS and KIOSK_CLOCK_BEHIND_DAYS."""
        return cls(ahead=timedelta(seconds=int(config["KIOSK_CLOCK_AHEAD_SECONDS"])),
                   behind=timedelta(days=int(config["KIOSK_CLOCK_BEHIND_DAYS"])))

    def suspect(self, sent_at: datetime, received_at: datetime) -> bool:
        """Tell whether a kiosk timestamp is too far ahead of or behind the receive time."""
        return sent_at > received_at + self.ahead or sent_at < received_at - self.behind


def note_suspect(kiosk_public_id: str, what: str, sent_at: datetime,
                 received_at: datetime) -> None:
    """Log a kiosk clock that is far off (the kiosk and the gap only, no health data)."""
    gap = (sent_at - received_at).total_seconds()
    log.warning("kiosk %s: %s timestamp is %.0f s %s the server's clock; kept as sent and "
                "flagged", kiosk_public_id, what, abs(gap), "ahead of" if gap > 0 else "behind")


def parse_aware(value: object) -> datetime | None:
    """Read a kiosk's ISO 8601 timestamp with an offset from untrusted input, in UTC, or None.

    None too for a time no kiosk clock can say (``plausible_kiosk_time``): the caller then
    uses the server's clock, as for a missing one.
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        # In UTC at once: 0001-01-01T00:00+00:09 cannot be stored or compared otherwise.
        found = parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
    return found if found is not None and plausible_kiosk_time(found) else None
