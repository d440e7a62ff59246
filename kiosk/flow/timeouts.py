"""The kiosk's timers (DESIGN.md §6), with the defaults a catalog's settings override."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timeouts:
    """The kiosk's timers, in seconds (the catalog's settings override the defaults)."""

    idle: float = 90.0
    countdown: float = 20.0
    session_cap: float = 15 * 60.0
    crisis_screen: float = 5 * 60.0
    # The crisis screen's second step ("Yes, close this screen") is offered only this long
    # after the first: two taps of one hurried double-tap can never be both steps.
    crisis_confirm: float = 1.5

    @classmethod
    def from_catalog(cls, settings: Mapping[str, Any]) -> Timeouts:
        """Read the ``settings.timeouts`` object the server's catalog sends."""
        t = settings.get("timeouts", {})
        return cls(idle=float(t.get("idle_seconds", 90)),
                   countdown=float(t.get("idle_countdown_seconds", 20)),
                   session_cap=float(t.get("session_cap_seconds", 900)),
                   crisis_screen=float(t.get("crisis_screen_seconds", 300)))
