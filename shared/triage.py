"""Triage: fold one session's screening results into ONE referral proposal for the advocate.

The single-instrument and combination rules are data (``assets/triage/rules.json``). The two
crisis triggers of DESIGN.md section 3.6 are code on purpose: no rules file, setting or edit can
remove them, lower their priority or change their guidance.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from shared.assessments.types import ScoreResult
from shared.paths import assets_dir

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

PROGRAMS: tuple[str, ...] = (
    "behavioral_health",
    "lifestyle_management",
    "case_management",
    "disease_management",
    "health_coaching",
    "eap",
)
PRIORITIES: tuple[str, ...] = ("routine", "soon", "urgent", "crisis")
LANGUAGES: tuple[str, ...] = ("en", "es")
DOMAINS: tuple[str, ...] = ("behavioral", "physical")
# "crisis" is reserved for the hard-wired triggers below, so a rules file cannot mint crisis
# referrals that come without crisis guidance.
RULE_PRIORITIES: tuple[str, ...] = ("routine", "soon", "urgent")


def priority_rank(priority: str) -> int:
    """Return the position of priority in PRIORITIES (higher is more pressing)."""
    try:
        return PRIORITIES.index(priority)
    except ValueError:
        raise ValueError(f"unknown priority {priority!r}") from None


def _max_priority(priorities: Iterable[str]) -> str:
    return max(priorities, key=priority_rank, default="routine")


def _sorted_programs(programs: Iterable[str]) -> tuple[str, ...]:
    unique = set(programs)
    unknown = unique.difference(PROGRAMS)
    if unknown:
        raise ValueError(f"unknown program(s): {', '.join(sorted(unknown))}")
    return tuple(p for p in PROGRAMS if p in unique)


def _text(value: object, what: str) -> Mapping[str, str]:
    """Return an immutable {en, es} text mapping, or raise ValueError."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be an object with 'en' and 'es' text")
    out: dict[str, str] = {}
    for lang, text in value.items():
        if not isinstance(lang, str) or not isinstance(text, str) or not text.strip():
            raise ValueError(f"{what} must map language codes to non-empty text")
        out[lang] = text
    missing = [lang for lang in LANGUAGES if lang not in out]
    if missing:
        raise ValueError(f"{what} lacks text in {', '.join(missing)}")
    return MappingProxyType(out)


def _str_tuple(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(value)


# --------------------------------------------------------------------------- proposal types


@dataclass(frozen=True)
class Reason:
    """One human-readable explanation (EN+ES) of why something was proposed."""

    code: str
    text: Mapping[str, str]
    instruments: tuple[str, ...] = ()
    priority: str = "routine"
    programs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _text(self.text, f"reason {self.code} text"))
        object.__setattr__(self, "instruments", tuple(sorted(set(self.instruments))))
        object.__setattr__(self, "programs", _sorted_programs(self.programs))
        priority_rank(self.priority)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return {
            "code": self.code,
            "text": dict(self.text),
            "instruments": list(self.instruments),
            "priority": self.priority,
            "programs": list(self.programs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reason:
        """Rebuild a Reason from as_dict() output."""
        return cls(
            code=str(data["code"]),
            text=data["text"],
            instruments=_str_tuple(data.get("instruments", []), "reason instruments"),
            priority=str(data.get("priority", "routine")),
            programs=_str_tuple(data.get("programs", []), "reason programs"),
        )


def _resource(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return an immutable copy of a crisis resource: label {en, es}, phone/sms/url strings."""
    out: dict[str, Any] = {"label": _text(data.get("label"), "resource label")}
    for key in ("phone", "sms", "url"):
        value = data.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"resource {key} must be text")
            out[key] = value
    if not any(key in out for key in ("phone", "sms", "url")):
        raise ValueError("a crisis resource needs a phone, sms or url")
    return MappingProxyType(out)


@dataclass(frozen=True)
class CrisisGuidance:
    """What the kiosk must show for one crisis trigger, in EN and ES."""

    trigger: str
    severity: str
    title: Mapping[str, str]
    text: Mapping[str, str]
    resources: tuple[Mapping[str, Any], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "title", _text(self.title, "crisis title"))
        object.__setattr__(self, "text", _text(self.text, "crisis text"))
        object.__setattr__(self, "resources", tuple(_resource(r) for r in self.resources))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        resources = []
        for res in self.resources:
            item = dict(res)
            item["label"] = dict(res["label"])
            resources.append(item)
        return {
            "trigger": self.trigger,
            "severity": self.severity,
            "title": dict(self.title),
            "text": dict(self.text),
            "resources": resources,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrisisGuidance:
        """Rebuild guidance from as_dict() output."""
        return cls(
            trigger=str(data["trigger"]),
            severity=str(data["severity"]),
            title=data["title"],
            text=data["text"],
            resources=tuple(data.get("resources", ())),
        )


@dataclass(frozen=True)
class Notice:
    """A gentle information message for the member (not crisis guidance)."""

    code: str
    text: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _text(self.text, f"notice {self.code} text"))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return {"code": self.code, "text": dict(self.text)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notice:
        """Rebuild a Notice from as_dict() output."""
        return cls(code=str(data["code"]), text=data["text"])


@dataclass(frozen=True)
class ReferralProposal:
    """One consolidated referral proposal built from a session's results."""

    programs: tuple[str, ...]
    priority: str
    reasons: tuple[Reason, ...]
    next_screeners: tuple[str, ...]
    crisis: tuple[CrisisGuidance, ...]
    needs_referral: bool
    identified: bool
    notices: tuple[Notice, ...] = ()
    screened: tuple[str, ...] = ()
    not_scored: tuple[str, ...] = ()
    rules_version: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "programs", _sorted_programs(self.programs))
        priority_rank(self.priority)
        if self.crisis and self.priority != "crisis":
            raise ValueError("a proposal with crisis guidance must have priority 'crisis'")

    @property
    def anonymous_crisis_alert(self) -> bool:
        """True when an anonymous member hit a crisis trigger: staff on site must be alerted."""
        return not self.identified and bool(self.crisis)

    @property
    def crisis_triggers(self) -> tuple[str, ...]:
        """The triggers of the crisis guidance, in order."""
        return tuple(g.trigger for g in self.crisis)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape stored by the server and sent to the kiosk."""
        return {
            "programs": list(self.programs),
            "priority": self.priority,
            "reasons": [r.as_dict() for r in self.reasons],
            "next_screeners": list(self.next_screeners),
            "crisis": [g.as_dict() for g in self.crisis],
            "needs_referral": self.needs_referral,
            "identified": self.identified,
            "anonymous_crisis_alert": self.anonymous_crisis_alert,
            "notices": [n.as_dict() for n in self.notices],
            "screened": list(self.screened),
            "not_scored": list(self.not_scored),
            "rules_version": self.rules_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferralProposal:
        """Rebuild a proposal from as_dict() output (the derived alert flag is recomputed)."""
        if not isinstance(data, Mapping):
            raise ValueError("a referral proposal must be a JSON object")
        for key in ("needs_referral", "identified"):
            if not isinstance(data.get(key), bool):
                raise ValueError(f"{key} must be true or false")
        return cls(
            programs=_str_tuple(data.get("programs", []), "programs"),
            priority=str(data["priority"]),
            reasons=tuple(Reason.from_dict(r) for r in data.get("reasons", [])),
            next_screeners=_str_tuple(data.get("next_screeners", []), "next_screeners"),
            crisis=tuple(CrisisGuidance.from_dict(g) for g in data.get("crisis", [])),
            needs_referral=data["needs_referral"],
            identified=data["identified"],
            notices=tuple(Notice.from_dict(n) for n in data.get("notices", [])),
            screened=_str_tuple(data.get("screened", []), "screened"),
            not_scored=_str_tuple(data.get("not_scored", []), "not_scored"),
            rules_version=str(data.get("rules_version", "")),
        )


# --------------------------------------------------------------------------- crisis (hard-wired)

_LIFELINE_988 = {
    "label": {
        "en": "988 Suicide & Crisis Lifeline: call or text 988, or chat at 988lifeline.org",
        "es": "988 Línea de Prevención del Suicidio y Crisis: llame al 988 y oprima 2 para "
        "español, o envíe AYUDA por mensaje de texto al 988",
    },
    "phone": "988",
    "sms": "988",
    "url": "https://988lifeline.org",
}
_EMERGENCY_911 = {
    "label": {
        "en": "Emergency services: call 911",
        "es": "Servicios de emergencia: llame al 911",
    },
    "phone": "911",
}

# Wording: DESIGN.md 3.6. 988: 988lifeline.org ("Spanish-language (Press 2)"; text AYUDA to 988,
# https://988lifeline.org/get-help/what-to-expect). Hypertensive crisis: American Heart
# Association, "Hypertensive Crisis: When You Should Call 911 for High Blood Pressure"
# (heart.org): 180/120 or greater, wait about five minutes and measure again; with chest pain,
# shortness of breath, back pain, numbness/weakness, change in vision or difficulty speaking,
# call 911.
_CRISIS_GUIDANCE: dict[str, CrisisGuidance] = {
    "phq9_item9": CrisisGuidance(
        trigger="phq9_item9",
        severity="crisis",
        title={
            "en": "You don't have to go through this alone",
            "es": "No tiene que pasar por esto a solas",
        },
        text={
            "en": "Your answers say you have had thoughts that you would be better off dead, "
            "or of hurting yourself. Help is available right now, free and confidential, "
            "24 hours a day: call or text 988 to reach the 988 Suicide & Crisis Lifeline. "
            "If you are in immediate danger, call 911.",
            "es": "Sus respuestas indican que ha tenido pensamientos de que estaría mejor "
            "muerto(a) o de hacerse daño. Hay ayuda disponible ahora mismo, gratuita y "
            "confidencial, las 24 horas: llame o envíe un mensaje de texto al 988, la 988 "
            "Línea de Prevención del Suicidio y Crisis. 988 Lifeline ofrece ayuda en "
            "español: llame al 988 y oprima 2. Si está en peligro inmediato, llame al 911.",
        },
        resources=(_LIFELINE_988, _EMERGENCY_911),
    ),
    "hypertensive_crisis": CrisisGuidance(
        trigger="hypertensive_crisis",
        severity="crisis",
        title={
            "en": "Your blood pressure reading is very high",
            "es": "Su lectura de presión arterial es muy alta",
        },
        text={
            "en": "Your reading is in the hypertensive crisis range (top number above 180 "
            "and/or bottom number above 120). Call 911 now if you have chest pain, shortness "
            "of breath, back pain, numbness or weakness, a change in vision or difficulty "
            "speaking; otherwise rest 5 minutes, measure again, and contact a doctor today.",
            "es": "Su lectura está en el rango de crisis hipertensiva (número superior mayor "
            "de 180 y/o número inferior mayor de 120). Llame al 911 ahora si tiene dolor en "
            "el pecho, falta de aire, dolor de espalda, entumecimiento o debilidad, un cambio "
            "en la visión o dificultad para hablar; si no, descanse 5 minutos, vuelva a "
            "medirse la presión y comuníquese hoy mismo con un médico.",
        },
        resources=(_EMERGENCY_911,),
    ),
}


@dataclass(frozen=True)
class _CrisisTrigger:
    trigger: str
    instrument: str
    flag: str
    program: str
    domain: str
    reason: Mapping[str, str]


CRISIS_TRIGGERS: tuple[_CrisisTrigger, ...] = (
    _CrisisTrigger(
        trigger="phq9_item9",
        instrument="phq9",
        flag="item9_positive",
        program="behavioral_health",
        domain="behavioral",
        reason=MappingProxyType(
            {
                "en": "PHQ-9 item 9 answered above 'Not at all': thoughts of being better off "
                "dead or of self-harm. Crisis guidance (988 Lifeline, 911) was shown with this "
                "result. Contact the member today and assess safety, whatever the total score.",
                "es": "Ítem 9 del PHQ-9 respondido por encima de 'Para nada': pensamientos de "
                "que estaría mejor muerto(a) o de hacerse daño. Se mostró la guía de crisis "
                "(988 Lifeline, 911) con este resultado. Comuníquese hoy con la persona y "
                "evalúe su seguridad, sea cual sea la puntuación total.",
            }
        ),
    ),
    _CrisisTrigger(
        trigger="hypertensive_crisis",
        instrument="blood_pressure",
        flag="hypertensive_crisis",
        program="disease_management",
        domain="physical",
        reason=MappingProxyType(
            {
                "en": "Blood pressure reading in the hypertensive crisis range (systolic above "
                "180 and/or diastolic above 120). The member was told to call 911 for chest "
                "pain, shortness of breath, back pain, numbness or weakness, vision change or "
                "difficulty speaking, otherwise to rest 5 minutes, re-measure and contact a "
                "doctor today. Follow up today.",
                "es": "Lectura de presión arterial en el rango de crisis hipertensiva (sistólica "
                "mayor de 180 y/o diastólica mayor de 120). Se indicó a la persona llamar al 911 "
                "si tiene dolor en el pecho, falta de aire, dolor de espalda, entumecimiento o "
                "debilidad, cambios en la visión o dificultad para hablar; si no, descansar 5 "
                "minutos, volver a medirse y comunicarse hoy con un médico. Haga seguimiento hoy.",
            }
        ),
    ),
)


def crisis_guidance(trigger: str) -> CrisisGuidance:
    """Return the fixed guidance for a crisis trigger ("phq9_item9" or "hypertensive_crisis")."""
    return _CRISIS_GUIDANCE[trigger]


# Skipping item 9 is not a disclosure, so it gets the 988 information gently: no crisis screen,
# no crisis priority (DESIGN.md 3.6).
_SKIPPED_ITEM_NOTICES: dict[tuple[str, str], Notice] = {
    ("phq9", "9"): Notice(
        code="phq9_item9_skipped",
        text={
            "en": "If you are ever going through a hard time, or have thoughts of hurting "
            "yourself, you can call or text 988 (the 988 Suicide & Crisis Lifeline) at any "
            "time. It is free and confidential.",
            "es": "Si alguna vez está pasando por un momento difícil, o tiene pensamientos de "
            "hacerse daño, puede llamar o enviar un mensaje de texto al 988 (la 988 Línea de "
            "Prevención del Suicidio y Crisis) en cualquier momento. Es gratuito y "
            "confidencial. 988 Lifeline ofrece ayuda en español: llame al 988 y oprima 2.",
        },
    ),
}


def skipped_item_notice(instrument_id: str, link_id: str) -> Notice | None:
    """Return the gentle notice owed when this item is skipped, or None."""
    return _SKIPPED_ITEM_NOTICES.get((instrument_id, str(link_id)))


# --------------------------------------------------------------------------- rules


class RulesError(ValueError):
    """The triage rules data is malformed."""


@dataclass(frozen=True)
class _Rule:
    id: str
    when: Mapping[str, Any]
    programs: tuple[str, ...]
    priority: str
    reason: Mapping[str, str]
    domain: str = ""  # "behavioral" or "physical"; empty on combination rules
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class _NextScreener:
    when: Mapping[str, Any]
    offer: str


@dataclass(frozen=True)
class TriageRules:
    """Validated triage rules, ready to evaluate."""

    version: str
    conditions: Mapping[str, Mapping[str, Any]]
    rules: tuple[_Rule, ...]
    combinations: tuple[_Rule, ...]
    next_screeners: tuple[_NextScreener, ...]
    sources: Mapping[str, Any] = field(default_factory=dict)


_ATOM_KEYS = frozenset({"instrument", "bands", "flags", "unless_taken"})


def _check_condition(node: object, where: str, names: frozenset[str], derived: bool) -> None:
    """Raise RulesError unless node is a well-formed condition."""
    if not isinstance(node, Mapping):
        raise RulesError(f"{where}: a condition must be an object")
    if "instrument" in node:
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
                    values = _str_tuple(node[key], f"{where}.{key}")
                except ValueError as exc:
                    raise RulesError(str(exc)) from None
                if not values:
                    raise RulesError(f"{where}.{key}: must not be empty")
        return
    if len(node) == 1 and "ref" in node:
        if node["ref"] not in names:
            raise RulesError(f"{where}: unknown or later-defined condition {node['ref']!r}")
        return
    if len(node) == 1 and ("any" in node or "all" in node):
        key = "any" if "any" in node else "all"
        children = node[key]
        if not isinstance(children, list) or not children:
            raise RulesError(f"{where}.{key}: must be a non-empty list")
        for i, child in enumerate(children):
            _check_condition(child, f"{where}.{key}[{i}]", names, derived)
        return
    if set(node) == {"at_least", "of"}:
        children, count = node["of"], node["at_least"]
        if not isinstance(children, list) or not children:
            raise RulesError(f"{where}.of: must be a non-empty list")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= len(children):
            raise RulesError(f"{where}.at_least: must be from 1 to {len(children)}")
        for i, child in enumerate(children):
            _check_condition(child, f"{where}.of[{i}]", names, derived)
        return
    if derived and set(node) == {"min_programs"}:
        count = node["min_programs"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise RulesError(f"{where}.min_programs: must be a positive whole number")
        return
    if derived and "domain" in node and set(node) <= {"domain", "min_priority"}:
        if node["domain"] not in DOMAINS:
            raise RulesError(f"{where}.domain: must be one of {', '.join(DOMAINS)}")
        if node.get("min_priority", "routine") not in PRIORITIES:
            raise RulesError(f"{where}.min_priority: unknown priority")
        return
    raise RulesError(f"{where}: not a recognised condition")


def _parse_rule(raw: object, where: str, names: frozenset[str], combination: bool) -> _Rule:
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
        programs = _str_tuple(raw.get("programs"), f"{where}.programs")
        _sorted_programs(programs)
        reason = _text(raw.get("reason"), f"{where}.reason")
        sources = _str_tuple(raw.get("sources", []), f"{where}.sources")
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
    return _Rule(
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
    parsed: dict[str, list[_Rule]] = {"rules": [], "combinations": []}
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
    screeners: list[_NextScreener] = []
    raw_next = data.get("next_screeners", [])
    if not isinstance(raw_next, list):
        raise RulesError("next_screeners: must be a list")
    for i, raw in enumerate(raw_next):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("offer"), str):
            raise RulesError(f"next_screeners[{i}]: needs 'when' and an 'offer' instrument id")
        _check_condition(raw.get("when"), f"next_screeners[{i}].when", names, False)
        screeners.append(_NextScreener(when=raw["when"], offer=raw["offer"]))
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
        return _default_rules()
    with Path(path).open(encoding="utf-8") as fh:
        return parse_rules(json.load(fh))


@functools.lru_cache(maxsize=1)
def _default_rules() -> TriageRules:
    with (assets_dir() / "triage" / "rules.json").open(encoding="utf-8") as fh:
        return parse_rules(json.load(fh))


# --------------------------------------------------------------------------- evaluation

_NO_MATCH: tuple[bool, frozenset[str]] = (False, frozenset())


@dataclass
class _Facts:
    results: Mapping[str, ScoreResult]
    conditions: Mapping[str, Mapping[str, Any]]
    # (program set, domain, priority, instruments) of each matched single-instrument rule
    matched: list[tuple[tuple[str, ...], str, str, frozenset[str]]] = field(default_factory=list)


def _evaluate(node: Mapping[str, Any], facts: _Facts) -> tuple[bool, frozenset[str]]:
    """Return (matched, instruments that made it match)."""
    if "instrument" in node:
        instrument = node["instrument"]
        result = facts.results.get(instrument)
        if result is None or any(t in facts.results for t in node.get("unless_taken", ())):
            return _NO_MATCH
        if "bands" in node and result.band not in node["bands"]:
            return _NO_MATCH
        if "flags" in node and not result.flags.intersection(node["flags"]):
            return _NO_MATCH
        return True, frozenset({instrument})
    if "ref" in node:
        return _evaluate(facts.conditions[node["ref"]], facts)
    if "any" in node or "at_least" in node:
        children = node["any"] if "any" in node else node["of"]
        needed = 1 if "any" in node else int(node["at_least"])
        hits = [_evaluate(child, facts) for child in children]
        matched = [instruments for ok, instruments in hits if ok]
        if len(matched) < needed:
            return _NO_MATCH
        return True, frozenset().union(*matched)
    if "all" in node:
        found: set[str] = set()
        for child in node["all"]:
            ok, instruments = _evaluate(child, facts)
            if not ok:
                return _NO_MATCH
            found |= instruments
        return True, frozenset(found)
    if "min_programs" in node:
        programs = {p for progs, _, _, _ in facts.matched for p in progs}
        if len(programs) < int(node["min_programs"]):
            return _NO_MATCH
        return True, frozenset().union(*(inst for _, _, _, inst in facts.matched))
    if "domain" in node:
        floor = priority_rank(node.get("min_priority", "routine"))
        hits_d = [
            inst
            for _, domain, priority, inst in facts.matched
            if domain == node["domain"] and priority_rank(priority) >= floor
        ]
        if not hits_d:
            return _NO_MATCH
        return True, frozenset().union(*hits_d)
    raise RulesError(f"unrecognised condition {dict(node)!r}")


def triage(
    results: Mapping[str, ScoreResult],
    *,
    identified: bool = True,
    skipped: Mapping[str, Iterable[str]] | None = None,
    rules: TriageRules | Mapping[str, Any] | None = None,
) -> ReferralProposal:
    """Turn one session's results (keyed by instrument id) into one referral proposal."""
    if rules is None:
        rules = _default_rules()
    elif not isinstance(rules, TriageRules):
        rules = parse_rules(rules)
    skipped = skipped or {}
    facts = _Facts(results=results, conditions=rules.conditions)
    reasons: list[Reason] = []
    crisis: list[CrisisGuidance] = []

    # Crisis first and outside the rules data: nothing in rules.json can suppress it.
    for trig in CRISIS_TRIGGERS:
        result = results.get(trig.instrument)
        if result is not None and trig.flag in result.flags:
            crisis.append(_CRISIS_GUIDANCE[trig.trigger])
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

    programs = _sorted_programs(p for r in reasons for p in r.programs)
    priority = _max_priority(r.priority for r in reasons)

    attempted = set(results) | set(skipped)
    offers: list[str] = []
    for screener in rules.next_screeners:
        # Never re-offer a screener already answered (or deliberately skipped) this session.
        if screener.offer in attempted or screener.offer in offers:
            continue
        if _evaluate(screener.when, facts)[0]:
            offers.append(screener.offer)

    notices: list[Notice] = []
    for instrument_id in sorted(skipped):
        for link_id in sorted(skipped[instrument_id]):
            notice = skipped_item_notice(instrument_id, link_id)
            if notice is not None and notice not in notices:
                notices.append(notice)

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


def _reason(rule: _Rule, instruments: frozenset[str]) -> Reason:
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
                priority=_max_priority((old.priority, reason.priority)),
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
    programs = _sorted_programs((*existing.programs, *new.programs))
    return ReferralProposal(
        programs=programs,
        priority=_max_priority((existing.priority, new.priority)),
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
