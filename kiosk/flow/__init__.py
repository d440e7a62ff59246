"""The member's journey at the kiosk, as a transition table: screens only render it.

In the spirit of h11's ``_state.py``: everything that decides which screen comes next lives
here, in one table of ``(screen, event) -> screen`` plus a few named guards, so tests walk
every path without a window. ``Journey`` holds one member's visit (answers, results, the
crisis state, the timers) in memory only; ``wipe`` forgets all of it, and no event can lead
back into a previous member's visit.

Timeouts (DESIGN.md §6): idle 90 s, then a 20 s countdown that any tap cancels; a hard cap
of 15 minutes per visit. The crisis screen does not time out like the others: it stays until
the member closes it in two steps, or for its own extended time (5 minutes by default).

Follow-up screeners are offered, never added silently: when triage (``shared.triage``, from
assets/triage/rules.json) says a longer screener could help, the offer screen asks first. Yes
puts it next in the plan; No thanks is remembered for the rest of the visit and never asked
again. A crisis screen raised by the same answers shows first; the offer waits until it closes.

The package's modules: ``table`` (the screens, the table and its guards), ``timeouts`` (the
timers) and ``journey`` (``Journey``, which holds one visit and moves it by the table). The
names below are re-exported so callers keep importing them from ``kiosk.flow``; the
journey's on first use, as it brings scoring and triage, which the kiosk's first frame
(kiosk/ui/app.py) does without.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .table import (
    ANYWHERE,
    ATTRACT,
    BOOKING,
    CRISIS,
    DONE,
    IDENTIFIED_ONLY,
    IDENTIFY,
    MENU,
    OFFER,
    PRIVACY,
    QR,
    QUESTION,
    REFERRAL,
    RESULTS,
    SCREENS,
    TABLE,
    FlowError,
)
from .timeouts import Timeouts

if TYPE_CHECKING:
    from .journey import CHECKUP, SECONDS_PER_QUESTION, Journey, latest_version

_JOURNEY_NAMES = frozenset({"CHECKUP", "SECONDS_PER_QUESTION", "Journey", "latest_version"})


def __getattr__(name: str) -> Any:
    """Import the journey module when one of its names is first asked for (PEP 562)."""
    if name in _JOURNEY_NAMES:
        from . import journey

        return getattr(journey, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ANYWHERE", "ATTRACT", "BOOKING", "CHECKUP", "CRISIS", "DONE", "IDENTIFIED_ONLY", "IDENTIFY",
    "MENU", "OFFER", "PRIVACY", "QR", "QUESTION", "REFERRAL", "RESULTS", "SCREENS",
    "SECONDS_PER_QUESTION", "TABLE", "FlowError", "Journey", "Timeouts", "latest_version",
]
