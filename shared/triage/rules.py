"""The triage rules data (assets/triage/rules.json): its shape, validation and loading."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.paths import assets_dir
from shared.triage.vocabulary import (
    DOMAINS,
    PRIORITIES,
    RULE_PRIORITIES,
    bilingual_text,
    sorted_programs,
    str_tuple,
)


class RulesError(ValueError):
    """The triage rules data is malformed."""


@dataclass(frozen=True)
class Rule:
    """One validated rule: when it matches, the programs, priority and reason it adds."""

    id: str
    when: Mapping[str, Any]
    programs: tuple[str, ...]
    priority: str
    reason: Mapping[str, str]
    domain: str = ""  # "behavioral" or "physical"; empty on combination rules
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class NextScreener:
    """A follow-up screener to offer when its condition matches."""

    when: Mapping[str, Any]
    offer: str


@dataclass(frozen=True)
class TriageRules:
    """Validated triage rules, ready to evaluate."""

    version: str
    conditions: Mapping[str, Mapping[str, Any]]
    rules: tuple[Rule, ...]
    combinations: tuple[Rule, ...]
    next_screeners: tuple[NextScreener, ...]
    sources: Mapping[str, Any] = field(default_factory=dict)


_ATOM_KEYS = frozenset({"instrument", "bands", "flags", "unless_taken"})


def _check_condition(node: object, where: str, names: frozenset[str], derived: bool) -> None:
    """Raise RulesError unless node is a well-formed condition (one checker per kind)."""
    if not isinstance(node, Mapping):
        raise RulesError(f"{where}: a condition must be an object")
    kind = _condition_kind(node, derived)
    if kind is None:
        raise RulesError(f"{where}: not a recognised condition")
    _CONDITION_CHECKS[kind](node, where, names, derived)


def _condition_kind(node: Mapping[str, Any], derived: bool) -> str | None:
    """Name the kind of condition node is by its keys; None when it is none of them.

    ``derived`` allows the kinds only combination rules may use (they read other rules'
    findings, not an instrument's results).
    """
    keys = set(node)
    if "instrument" in node:
        return "instrument"
    if len(node) == 1 and "ref" in node:
        return "ref"
    if len(node) == 1 and ("any" in node or "all" in node):
        return "any_all"
    if keys == {"at_least", "of"}:
        return "at_least"
    if derived and keys == {"min_programs"}:
        return "min_programs"
    if derived and "domain" in node and keys <= {"domain", "min_priority"}:
        return "domain"
    return None


def _check_instrument(node: Mapping[str, Any], where: str, _names: frozenset[str],
                      _derived: bool) -> None:
    extra = set(node) - _ATOM_KEYS
    if extra:
        raise RulesError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    if not isinstance(node["instrument"], str):
        raise RulesError(f"{where}: instrument must be text")
    if "bands" not in node and "flags" not in node:
        raise RulesError(f"{where}: give bands and/or flags")
    for key in ("bands", "flags", "unless_taken"):
        if key in node:
            try:
                values = str_tuple(node[key], f"{where}.{key}")
            except ValueError as exc:
                raise RulesError(str(exc)) from None
            if not values:
                raise RulesError(f"{where}.{key}: must not be empty")


def _check_ref(node: Mapping[str, Any], where: str, names: frozenset[str],
               _derived: bool) -> None:
    if node["ref"] not in names:
        raise RulesError(f"{where}: unknown or later-defined condition {node['ref']!r}")


def _check_any_all(node: Mapping[str, Any], where: str, names: frozenset[str],
                   derived: bool) -> None:
    key = "any" if "any" in node else "all"
    children = node[key]
    if not isinstance(children, list) or not children:
        raise RulesError(f"{where}.{key}: must be a non-empty list")
    for i, child in enumerate(children):
        _check_condition(child, f"{where}.{key}[{i}]", names, derived)


def _check_at_least(node: Mapping[str, Any], where: str, names: frozenset[str],
                    derived: bool) -> None:
    children, count = node["of"], node["at_least"]
    if not isinstance(children, list) or not children:
        raise RulesError(f"{where}.of: must be a non-empty list")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= len(children):
        raise RulesError(f"{where}.at_least: must be from 1 to {len(children)}")
    for i, child in enumerate(children):
        _check_condition(child, f"{where}.of[{i}]", names, derived)


def _check_min_programs(node: Mapping[str, Any], where: str, _names: frozenset[str],
                        _derived: bool) -> None:
    count = node["min_programs"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise RulesError(f"{where}.min_programs: must be a positive whole number")


def _check_domain(node: Mapping[str, Any], where: str, _names: frozenset[str],
                  _derived: bool) -> None:
    if node["domain"] not in DOMAINS:
        raise RulesError(f"{where}.domain: must be one of {', '.join(DOMAINS)}")
    if node.get("min_priority", "routine") not in PRIORITIES:
        raise RulesError(f"{where}.min_priority: unknown priority")


_CONDITION_CHECKS: dict[str, Callable[[Mapping[str, Any], str, frozenset[str], bool], None]] = {
    "instrument": _check_instrument,
    "ref": _check_ref,
    "any_all": _check_any_all,
    "at_least": _check_at_least,
    "min_programs": _check_min_programs,
    "domain": _check_domain,
}


def _parse_rule(raw: object, where: str, names: frozenset[str], combination: bool) -> Rule:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: a rule must be an object")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise RulesError(f"{where}.id: must be non-empty text")
    where = f"{where} ({rule_id})"
    if "when" not in raw:
        raise RulesError(f"{where}.when: is missing")
    _check_condition(raw["when"], f"{where}.when", names, combination)
    try:
        programs = str_tuple(raw.get("programs"), f"{where}.programs")
        sorted_programs(programs)
        reason = bilingual_text(raw.get("reason"), f"{where}.reason")
        sources = str_tuple(raw.get("sources", []), f"{where}.sources")
    except ValueError as exc:
        raise RulesError(str(exc)) from None
    priority = raw.get("priority")
    if priority not in RULE_PRIORITIES:
        raise RulesError(
            f"{where}.priority: must be one of {', '.join(RULE_PRIORITIES)} "
            "('crisis' is reserved for the built-in crisis triggers)"
        )
    domain = raw.get("domain")
    if not combination and domain not in DOMAINS:
        raise RulesError(f"{where}.domain: must be one of {', '.join(DOMAINS)}")
    return Rule(
        id=rule_id,
        when=raw["when"],
        programs=programs,
        priority=str(priority),
        reason=reason,
        domain=domain if isinstance(domain, str) else "",
        sources=sources,
    )


def parse_rules(data: Mapping[str, Any]) -> TriageRules:
    """Validate a rules mapping (the JSON of rules.json) and return TriageRules."""
    if not isinstance(data, Mapping):
        raise RulesError("rules must be a JSON object")
    sources = data.get("sources", {})
    if not isinstance(sources, Mapping):
        raise RulesError("sources: must be an object")
    raw_conditions = data.get("conditions", {})
    if not isinstance(raw_conditions, Mapping):
        raise RulesError("conditions: must be an object")
    names: frozenset[str] = frozenset()
    for name, node in raw_conditions.items():
        # Only earlier names are visible, which rules out reference cycles.
        _check_condition(node, f"conditions.{name}", names, False)
        names = names | {name}
    seen: set[str] = set()
    parsed: dict[str, list[Rule]] = {"rules": [], "combinations": []}
    for section in ("rules", "combinations"):
        raw_rules = data.get(section, [])
        if not isinstance(raw_rules, list):
            raise RulesError(f"{section}: must be a list")
        for i, raw in enumerate(raw_rules):
            rule = _parse_rule(raw, f"{section}[{i}]", names, section == "combinations")
            if rule.id in seen:
                raise RulesError(f"{section}[{i}].id: duplicate rule id {rule.id!r}")
            unknown = [s for s in rule.sources if s not in sources]
            if unknown:
                raise RulesError(f"{section}[{i}].sources: unknown {', '.join(unknown)}")
            seen.add(rule.id)
            parsed[section].append(rule)
    screeners: list[NextScreener] = []
    raw_next = data.get("next_screeners", [])
    if not isinstance(raw_next, list):
        raise RulesError("next_screeners: must be a list")
    for i, raw in enumerate(raw_next):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("offer"), str):
            raise RulesError(f"next_screeners[{i}]: needs 'when' and an 'offer' instrument id")
        _check_condition(raw.get("when"), f"next_screeners[{i}].when", names, False)
        screeners.append(NextScreener(when=raw["when"], offer=raw["offer"]))
    return TriageRules(
        version=str(data.get("version", "")),
        conditions=dict(raw_conditions),
        rules=tuple(parsed["rules"]),
        combinations=tuple(parsed["combinations"]),
        next_screeners=tuple(screeners),
        sources=dict(sources),
    )


def load_rules(path: str | Path | None = None) -> TriageRules:
    """Load and validate rules from path (default: assets/triage/rules.json)."""
    if path is None:
        return default_rules()
    with Path(path).open(encoding="utf-8") as fh:
        return parse_rules(json.load(fh))


@functools.lru_cache(maxsize=1)
def default_rules() -> TriageRules:
    """Return the shipped rules (assets/triage/rules.json), parsed once per process."""
    with (assets_dir() / "triage" / "rules.json").open(encoding="utf-8") as fh:
        return parse_rules(json.load(fh))
