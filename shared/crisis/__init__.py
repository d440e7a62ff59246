"""Crisis: the one place the safety-critical rules live, between assessments and triage.

``triggers`` holds the two hard-wired triggers of DESIGN.md section 3.6 and their fixed
guidance (code on purpose: no rules file, setting or edit can remove them); ``raw`` the
generous reading of a raw, possibly malformed, item; ``partial`` the crisis a partly answered
instrument shows, and ``score_item``, the per-item rule the kiosk and the server both apply.
It builds on ``shared.assessments`` and is used by ``shared.triage``, never the other way.
"""

from __future__ import annotations

from shared.crisis.partial import crisis_flags, crisis_in_partial, score_item
from shared.crisis.raw import read_number, triggers_in_raw
from shared.crisis.triggers import (
    CRISIS_TRIGGERS,
    CrisisGuidance,
    CrisisTrigger,
    Notice,
    crisis_guidance,
    skipped_item_notice,
)

__all__ = [
    "CRISIS_TRIGGERS",
    "CrisisGuidance",
    "CrisisTrigger",
    "Notice",
    "crisis_flags",
    "crisis_guidance",
    "crisis_in_partial",
    "read_number",
    "score_item",
    "skipped_item_notice",
    "triggers_in_raw",
]
