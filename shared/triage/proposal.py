"""What triage produces: reasons, crisis guidance, notices and the one referral proposal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shared.triage.vocabulary import bilingual_text, priority_rank, sorted_programs, str_tuple


@dataclass(frozen=True)
class Reason:
    """One human-readable explanation (EN+ES) of why something was proposed."""

    code: str
    text: Mapping[str, str]
    instruments: tuple[str, ...] = ()
    priority: str = "routine"
    programs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", bilingual_text(self.text, f"reason {self.code} text"))
        object.__setattr__(self, "instruments", tuple(sorted(set(self.instruments))))
        object.__setattr__(self, "programs", sorted_programs(self.programs))
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
            instruments=str_tuple(data.get("instruments", []), "reason instruments"),
            priority=str(data.get("priority", "routine")),
            programs=str_tuple(data.get("programs", []), "reason programs"),
        )


def _resource(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return an immutable copy of a crisis resource: label {en, es}, phone/sms/url strings."""
    out: dict[str, Any] = {"label": bilingual_text(data.get("label"), "resource label")}
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
        object.__setattr__(self, "title", bilingual_text(self.title, "crisis title"))
        object.__setattr__(self, "text", bilingual_text(self.text, "crisis text"))
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
        object.__setattr__(self, "text", bilingual_text(self.text, f"notice {self.code} text"))

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
        object.__setattr__(self, "programs", sorted_programs(self.programs))
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
            programs=str_tuple(data.get("programs", []), "programs"),
            priority=str(data["priority"]),
            reasons=tuple(Reason.from_dict(r) for r in data.get("reasons", [])),
            next_screeners=str_tuple(data.get("next_screeners", []), "next_screeners"),
            crisis=tuple(CrisisGuidance.from_dict(g) for g in data.get("crisis", [])),
            needs_referral=data["needs_referral"],
            identified=data["identified"],
            notices=tuple(Notice.from_dict(n) for n in data.get("notices", [])),
            screened=str_tuple(data.get("screened", []), "screened"),
            not_scored=str_tuple(data.get("not_scored", []), "not_scored"),
            rules_version=str(data.get("rules_version", "")),
        )
