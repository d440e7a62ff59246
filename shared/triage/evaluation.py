"""Evaluating the rules against one session's results, and merging proposals over visits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.assessments.types import ScoreResult
from shared.crisis.triggers import CRISIS_TRIGGERS, crisis_guidance, skipped_item_notice
from shared.triage.proposal import CrisisGuidance, Notice, Reason, ReferralProposal
from shared.triage.rules import Rule, RulesError, TriageRules, default_rules, parse_rules
from shared.triage.vocabulary import max_priority, priority_rank, sorted_programs

_NO_MATCH: tuple[bool, frozenset[str]] = (False, frozenset())


@dataclass
class _Facts:
    results: Mapping[str, ScoreResult]
    conditions: Mapping[str, Mapping[str, Any]]
    # (program set, domain, priority, instruments) of each matched single-instrument rule
    matched: list[tuple[tuple[str, ...], str, str, frozenset[str]]] = field(default_factory=list)


def _evaluate(node: Mapping[str, Any], facts: _Facts) -> tuple[bool, frozenset[str]]:
    """Return (matched, instruments that made it match); one evaluator per kind of condition."""
    for keys, evaluate in _EVALUATORS:
        if any(key in node for key in keys):
            return evaluate(node, facts)
    raise RulesError(f"unrecognised condition {dict(node)!r}")


def _instrument(node: Mapping[str, Any], facts: _Facts) -> tuple[bool, frozenset[str]]:
    instrument = node["instrument"]
    result = facts.results.get(instrument)
    if result is None or any(t in facts.results for t in node.get("unless_taken", ())):
        return _NO_MATCH
    if "bands" in node and result.band not in node["bands"]:
        return _NO_MATCH
    if "flags" in node and not result.flags.intersection(node["flags"]):
        return _NO_MATCH
    return True, frozenset({instrument})


def _ref(node: Mapping[str, Any], facts: _Facts) -> tuple[bool, frozenset[str]]:
    return _evaluate(facts.conditions[node["ref"]], facts)


def _at_least(node: Mapping[str, Any], facts: _Facts) -> tuple[bool, frozenset[str]]:
    """``any`` (at least one) or ``at_least`` n ``of`` the children."""
    children = node["any"] if "any" in node else node["of"]
    needed = 1 if "any" in node else int(node["at_least"])
    hits = [_evaluate(child, facts) for child in children]
    matched = [instruments for ok, instruments in hits if ok]
    if len(matched) < needed:
        return _NO_MATCH
    return True, frozenset().union(*matched)


def _all(node: Mapping[str, Any], facts: _Facts) -> tuple[bool, frozenset[str]]:
    found: set[str] = set()
    for child in node["all"]:
        ok, instruments = _evaluate(child, facts)
        if not ok:
            return _NO_MATCH
        found |= instruments
    return True, frozenset(found)


def _min_programs(node: Mapping[str, Any], facts: _Facts) -> tuple[bool, frozenset[str]]:
    programs = {p for progs, _, _, _ in facts.matched for p in progs}
    if len(programs) < int(node["min_programs"]):
        return _NO_MATCH
    return True, frozenset().union(*(inst for _, _, _, inst in facts.matched))


def _domain(node: Mapping[str, Any], facts: _Facts) -> tuple[bool, frozenset[str]]:
    floor = priority_rank(node.get("min_priority", "routine"))
    hits_d = [
        inst
        for _, domain, priority, inst in facts.matched
        if domain == node["domain"] and priority_rank(priority) >= floor
    ]
    if not hits_d:
        return _NO_MATCH
    return True, frozenset().union(*hits_d)


# Tried in this order: the first kind whose key a node has decides how it is read.
_EVALUATORS: tuple[tuple[tuple[str, ...],
                         Callable[[Mapping[str, Any], _Facts], tuple[bool, frozenset[str]]]],
                   ...] = (
    (("instrument",), _instrument),
    (("ref",), _ref),
    (("any", "at_least"), _at_least),
    (("all",), _all),
    (("min_programs",), _min_programs),
    (("domain",), _domain),
)


def triage(
    results: Mapping[str, ScoreResult],
    *,
    identified: bool = True,
    skipped: Mapping[str, Iterable[str]] | None = None,
    rules: TriageRules | Mapping[str, Any] | None = None,
) -> ReferralProposal:
    """Turn one session's results (keyed by instrument id) into one referral proposal."""
    if rules is None:
        rules = default_rules()
    elif not isinstance(rules, TriageRules):
        rules = parse_rules(rules)
    skipped = skipped or {}
    facts = _Facts(results=results, conditions=rules.conditions)
    # Crisis first and outside the rules data: nothing in rules.json can suppress it.
    crisis, reasons = _crisis_findings(results, facts)

    for rule in rules.rules:
        ok, instruments = _evaluate(rule.when, facts)
        if ok:
            facts.matched.append((rule.programs, rule.domain, rule.priority, instruments))
            reasons.append(_reason(rule, instruments))

    # Combinations see only single-instrument findings, so their order in the file is irrelevant.
    for rule in rules.combinations:
        ok, instruments = _evaluate(rule.when, facts)
        if ok:
            reasons.append(_reason(rule, instruments))

    programs = sorted_programs(p for r in reasons for p in r.programs)
    priority = max_priority(r.priority for r in reasons)

    offers = _offers(rules, facts, attempted=set(results) | set(skipped))
    notices = _notices(skipped)

    return ReferralProposal(
        programs=programs,
        priority=priority,
        reasons=_ordered(reasons),
        next_screeners=tuple(offers),
        crisis=tuple(crisis),
        needs_referral=identified and bool(programs),
        identified=identified,
        notices=tuple(notices),
        screened=tuple(sorted(results)),
        not_scored=tuple(sorted(set(skipped) - set(results))),
        rules_version=rules.version,
    )


def _crisis_findings(results: Mapping[str, ScoreResult], facts: _Facts
                     ) -> tuple[list[CrisisGuidance], list[Reason]]:
    """Return the crisis guidance and reasons of the hard-wired triggers the results raise."""
    crisis: list[CrisisGuidance] = []
    reasons: list[Reason] = []
    for trig in CRISIS_TRIGGERS:
        result = results.get(trig.instrument)
        if result is not None and trig.flag in result.flags:
            crisis.append(crisis_guidance(trig.trigger))
            instruments = frozenset({trig.instrument})
            facts.matched.append(((trig.program,), trig.domain, "crisis", instruments))
            reasons.append(
                Reason(
                    code=f"crisis_{trig.trigger}",
                    text=trig.reason,
                    instruments=tuple(instruments),
                    priority="crisis",
                    programs=(trig.program,),
                )
            )
    return crisis, reasons


def _offers(rules: TriageRules, facts: _Facts, attempted: set[str]) -> list[str]:
    """Return the follow-up screeners whose conditions match, in the rules' order."""
    offers: list[str] = []
    for screener in rules.next_screeners:
        # Never re-offer a screener already answered (or deliberately skipped) this session.
        if screener.offer in attempted or screener.offer in offers:
            continue
        if _evaluate(screener.when, facts)[0]:
            offers.append(screener.offer)
    return offers


def _notices(skipped: Mapping[str, Iterable[str]]) -> list[Notice]:
    """Return the gentle notices owed for the skipped items, once each."""
    notices: list[Notice] = []
    for instrument_id in sorted(skipped):
        for link_id in sorted(skipped[instrument_id]):
            notice = skipped_item_notice(instrument_id, link_id)
            if notice is not None and notice not in notices:
                notices.append(notice)
    return notices


def _reason(rule: Rule, instruments: frozenset[str]) -> Reason:
    return Reason(
        code=rule.id,
        text=rule.reason,
        instruments=tuple(instruments),
        priority=rule.priority,
        programs=rule.programs,
    )


def _ordered(reasons: Sequence[Reason]) -> tuple[Reason, ...]:
    """Most pressing first, so the advocate reads the crisis before anything else."""
    return tuple(sorted(reasons, key=lambda r: -priority_rank(r.priority)))


def merge(existing: ReferralProposal, new: ReferralProposal) -> ReferralProposal:
    """Fold a new proposal into an existing one: union of findings, priority never lowers."""
    if existing.identified != new.identified:
        raise ValueError("cannot merge an anonymous proposal with an identified one")
    by_code: dict[str, Reason] = {}
    for reason in (*existing.reasons, *new.reasons):
        old = by_code.get(reason.code)
        if old is None:
            by_code[reason.code] = reason
        else:
            by_code[reason.code] = Reason(
                code=reason.code,
                text=reason.text,
                instruments=old.instruments + reason.instruments,
                priority=max_priority((old.priority, reason.priority)),
                programs=old.programs + reason.programs,
            )
    crisis: dict[str, CrisisGuidance] = {}
    for guidance in (*existing.crisis, *new.crisis):
        crisis.setdefault(guidance.trigger, guidance)
    notices: dict[str, Notice] = {}
    for notice in (*existing.notices, *new.notices):
        notices.setdefault(notice.code, notice)
    screened = tuple(sorted(set(existing.screened) | set(new.screened)))
    offered = (*existing.next_screeners, *new.next_screeners)
    next_screeners = tuple(dict.fromkeys(s for s in offered if s not in screened))
    programs = sorted_programs((*existing.programs, *new.programs))
    return ReferralProposal(
        programs=programs,
        priority=max_priority((existing.priority, new.priority)),
        reasons=_ordered(list(by_code.values())),
        next_screeners=next_screeners,
        crisis=tuple(crisis.values()),
        needs_referral=existing.identified and bool(programs),
        identified=existing.identified,
        notices=tuple(notices.values()),
        screened=screened,
        not_scored=tuple(sorted((set(existing.not_scored) | set(new.not_scored)) - set(screened))),
        rules_version=new.rules_version or existing.rules_version,
    )
