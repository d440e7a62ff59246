"""A session's triage, worked out once per distinct set of findings in the process.

Triage (``shared.triage.triage``) is a pure function of the shipped rules and, for each of
the session's instruments, the result's instrument, version, total, band and flags, plus
whether the member is identified and which questions were skipped. Sessions repeat those few
facts endlessly (a PHQ-9 alone has 28 totals), while evaluating the rules took about an
eighth of a single submission's own work (docs/BENCHMARKS.md, issue 20 P1, session 10). So
the proposals are kept, keyed by those facts and by the rules object itself (a reload of the
rules starts afresh), up to ``MAX_ENTRIES``. A proposal is frozen, so sharing it is safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared import triage as triage_mod
from shared.assessments import ScoreResult
from shared.triage.rules import default_rules

MAX_ENTRIES = 4096

# What triage is computed from.
TriageKey = tuple[tuple[tuple[str, str, str, Any, str, frozenset[str]], ...], bool,
                  tuple[tuple[str, tuple[str, ...]], ...]]

_CACHE: dict[tuple[int, TriageKey], tuple[triage_mod.TriageRules, triage_mod.ReferralProposal]] \
    = {}


def triage_key(results: Mapping[str, ScoreResult], identified: bool,
               skipped: Mapping[str, Sequence[str]]) -> TriageKey:
    """Return the facts a session's triage depends on, in a hashable form."""
    return (tuple((iid, r.instrument, r.version, r.total, r.band, r.flags)
                  for iid, r in results.items()),
            identified, tuple((iid, tuple(links)) for iid, links in skipped.items()))


def triage_session(results: Mapping[str, ScoreResult], *, identified: bool,
                   skipped: Mapping[str, Sequence[str]]) -> triage_mod.ReferralProposal:
    """Return ``shared.triage.triage`` of a session, from the cache when it was seen before."""
    rules = default_rules()
    key = (id(rules), triage_key(results, identified, skipped))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is rules:
        return hit[1]
    view = triage_mod.triage(results, identified=identified, skipped=skipped, rules=rules)
    if len(_CACHE) >= MAX_ENTRIES:
        _CACHE.clear()  # rare: a bound on memory, not an eviction policy
    _CACHE[key] = (rules, view)
    return view
