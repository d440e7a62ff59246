"""What triage produces: reasons, crisis guidance, notices and the one referral proposal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# What a proposal carries for a crisis; defined with the triggers (shared.crisis).
from shared.crisis.triggers import CrisisGuidance as CrisisGuidance
from shared.crisis.triggers import Notice as Notice
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
