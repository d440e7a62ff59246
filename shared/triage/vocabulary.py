"""The words triage speaks: programs, priorities, languages, and the checks on bilingual text."""

from __future__ import annotations

from collections.abc import Iterable

# The languages and the bilingual-text check live with the rest of the text (shared.i18n);
# triage's callers keep reading them here.
from shared.i18n import LANGUAGES as LANGUAGES
from shared.i18n import bilingual_text as bilingual_text

PROGRAMS: tuple[str, ...] = (
    "behavioral_health",
    "lifestyle_management",
    "case_management",
    "disease_management",
    "health_coaching",
    "eap",
)
PRIORITIES: tuple[str, ...] = ("routine", "soon", "urgent", "crisis")
DOMAINS: tuple[str, ...] = ("behavioral", "physical")
# "crisis" is reserved for the hard-wired triggers (shared.crisis), so a rules file
# cannot mint crisis referrals that come without crisis guidance.
RULE_PRIORITIES: tuple[str, ...] = ("routine", "soon", "urgent")


def priority_rank(priority: str) -> int:
    """Return the position of priority in PRIORITIES (higher is more pressing)."""
    try:
        return PRIORITIES.index(priority)
    except ValueError:
        raise ValueError(f"unknown priority {priority!r}") from None


def max_priority(priorities: Iterable[str]) -> str:
    """Return the most pressing of priorities ("routine" when there are none)."""
    return max(priorities, key=priority_rank, default="routine")


def sorted_programs(programs: Iterable[str]) -> tuple[str, ...]:
    """Return the distinct programs in PROGRAMS order, or raise ValueError on an unknown one."""
    unique = set(programs)
    unknown = unique.difference(PROGRAMS)
    if unknown:
        raise ValueError(f"unknown program(s): {', '.join(sorted(unknown))}")
    return tuple(p for p in PROGRAMS if p in unique)


def str_tuple(value: object, what: str) -> tuple[str, ...]:
    """Return value as a tuple of strings, or raise ValueError naming what."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(value)
