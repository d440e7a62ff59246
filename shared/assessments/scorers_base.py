"""The contract between the engine and the per-instrument scorers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class Scored(NamedTuple):
    """What a scorer returns; the engine adds instrument id and version."""

    total: int | float | None
    band: str
    flags: frozenset[str]
    details: dict[str, Any]


Scorer = Callable[[Mapping[str, Any], Mapping[str, object]], Scored]
