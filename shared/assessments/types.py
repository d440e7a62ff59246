"""Result and error types of the screening engine, and the input checks every scorer uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ScoringError(ValueError):
    """Bad input to a scorer; ``field`` names the answer (or ``instrument_id``) that was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ScoreResult:
    """The outcome of scoring one instrument."""

    instrument: str
    version: str
    total: int | float | None
    band: str
    flags: frozenset[str]
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape used by the CLI and the API."""
        return {
            "instrument": self.instrument,
            "version": self.version,
            "total": self.total,
            "band": self.band,
            "flags": sorted(self.flags),
        }


def require_int(answers: Mapping[str, object], key: str, lo: int, hi: int) -> int:
    """Return answers[key] as an int in [lo, hi], or raise ScoringError naming key."""
    if key not in answers:
        raise ScoringError(key, "is missing")
    value = answers[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScoringError(key, f"must be a whole number from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise ScoringError(key, f"must be from {lo} to {hi}, got {value}")
    return value


def require_number(
    answers: Mapping[str, object],
    key: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    positive: bool = True,
) -> float:
    """Return answers[key] as a finite number within the bounds, or raise ScoringError."""
    if key not in answers:
        raise ScoringError(key, "is missing")
    value = answers[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScoringError(key, f"must be a number, got {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ScoringError(key, "must be a finite number")
    if positive and number <= 0:
        raise ScoringError(key, f"must be greater than 0, got {value}")
    if lo is not None and number < lo:
        raise ScoringError(key, f"must be at least {lo:g}, got {value}")
    if hi is not None and number > hi:
        raise ScoringError(key, f"must be at most {hi:g}, got {value}")
    return number


def require_bool(answers: Mapping[str, object], key: str) -> bool:
    """Return answers[key] as a bool, or raise ScoringError naming key."""
    if key not in answers:
        raise ScoringError(key, "is missing")
    value = answers[key]
    if not isinstance(value, bool):
        raise ScoringError(key, f"must be true or false, got {value!r}")
    return value


def require_choice(answers: Mapping[str, object], key: str, choices: tuple[str, ...]) -> str:
    """Return answers[key] if it is one of choices, or raise ScoringError naming key."""
    if key not in answers:
        raise ScoringError(key, "is missing")
    value = answers[key]
    if not isinstance(value, str) or value not in choices:
        raise ScoringError(key, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def reject_unknown(answers: Mapping[str, object], allowed: frozenset[str] | set[str]) -> None:
    """Raise ScoringError for the first answer key that the instrument does not define."""
    for key in sorted(str(k) for k in answers):
        if key not in allowed:
            raise ScoringError(key, "is not a question of this instrument")
