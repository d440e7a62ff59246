"""Triage: fold one session's screening results into ONE referral proposal for the advocate.

The single-instrument and combination rules are data (``assets/triage/rules.json``, read by
``rules``). The two crisis triggers of DESIGN.md section 3.6 are code on purpose, in the
package below this one (``shared.crisis``): no rules file, setting or edit can remove them,
lower their priority or change their guidance.
``proposal`` holds what triage produces and ``evaluation`` the function that produces it; this
module re-exports the names callers have always imported from ``shared.triage``.
"""

from __future__ import annotations

from shared.crisis.triggers import CRISIS_TRIGGERS, crisis_guidance, skipped_item_notice
from shared.triage.evaluation import merge, triage
from shared.triage.proposal import CrisisGuidance, Notice, Reason, ReferralProposal
from shared.triage.rules import RulesError, TriageRules, load_rules, parse_rules
from shared.triage.vocabulary import LANGUAGES, PRIORITIES, PROGRAMS, priority_rank

__all__ = [
    "PROGRAMS",
    "PRIORITIES",
    "LANGUAGES",
    "CRISIS_TRIGGERS",
    "CrisisGuidance",
    "Notice",
    "Reason",
    "ReferralProposal",
    "RulesError",
    "TriageRules",
    "crisis_guidance",
    "load_rules",
    "merge",
    "parse_rules",
    "priority_rank",
    "skipped_item_notice",
    "triage",
]
