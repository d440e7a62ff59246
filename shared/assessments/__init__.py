"""The screening engine: score(instrument_id, answers) over versioned definitions in assets."""

from __future__ import annotations

from shared.assessments.engine import (
    available_versions,
    frozen_definition,
    list_instruments,
    load_definition,
    score,
    unscored_items,
)
from shared.assessments.types import ScoreResult, ScoringError

__all__ = [
    "ScoreResult",
    "ScoringError",
    "available_versions",
    "frozen_definition",
    "list_instruments",
    "load_definition",
    "score",
    "unscored_items",
]
