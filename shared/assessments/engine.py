"""Load versioned instrument definitions from assets and dispatch them to their scorers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from shared.assessments.calculators import SCORERS as CALCULATOR_SCORERS
from shared.assessments.questionnaires import SCORERS as QUESTIONNAIRE_SCORERS
from shared.assessments.questionnaires import is_scored
from shared.assessments.scorers_base import Scorer
from shared.assessments.types import ScoreResult, ScoringError
from shared.paths import assets_dir

# Ids and versions become path parts, so anything else (e.g. "../x") is refused up front.
_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_VERSION_RE = re.compile(r"^\d{1,4}\.\d{1,4}\.\d{1,4}$")


# Every registered scorer by method name, merged once rather than on every score.
_SCORERS: Mapping[str, Scorer] = MappingProxyType({**CALCULATOR_SCORERS, **QUESTIONNAIRE_SCORERS})


def _version_key(version: str) -> tuple[int, ...]:
    """Order versions numerically, so 1.10.0 sorts after 1.9.0."""
    return tuple(int(part) for part in version.split("."))


def _freeze(value: Any) -> Any:
    """Return a read-only deep copy, so cached definitions cannot be changed by callers."""
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """Return a plain, mutable deep copy of a frozen definition."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@lru_cache(maxsize=64)
def _versions_in(root: str, instrument_id: str) -> tuple[str, ...]:
    """Return the versions on disk for one instrument, oldest first."""
    folder = Path(root) / "instruments" / instrument_id
    if not folder.is_dir():
        return ()
    found = [p.stem for p in folder.glob("*.json") if _VERSION_RE.match(p.stem)]
    return tuple(sorted(found, key=_version_key))


@lru_cache(maxsize=256)
def _load_frozen(root: str, instrument_id: str, version: str) -> Mapping[str, Any]:
    """Read and freeze one definition file."""
    path = Path(root) / "instruments" / instrument_id / f"{version}.json"
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if data.get("id") != instrument_id or data.get("version") != version:
        raise RuntimeError(f"{path}: id/version inside the file do not match its path")
    frozen: Mapping[str, Any] = _freeze(data)
    return frozen


def _resolve(instrument_id: object, version: object, root: str | None = None
             ) -> tuple[str, str]:
    """Check an instrument id and version and return the concrete pair, or raise."""
    if not isinstance(instrument_id, str) or not _ID_RE.match(instrument_id):
        raise ScoringError("instrument_id", f"unknown instrument {instrument_id!r}")
    versions = _versions_in(root or str(assets_dir()), instrument_id)
    if not versions:
        raise ScoringError("instrument_id", f"unknown instrument {instrument_id!r}")
    if version is None:
        return instrument_id, versions[-1]
    if not isinstance(version, str) or version not in versions:
        raise ScoringError(
            "instrument_id", f"{instrument_id} has no version {version!r} (have {list(versions)})"
        )
    return instrument_id, version


def _definition(instrument_id: object, version: object) -> Mapping[str, Any]:
    """Return the frozen definition for an id and an optional version."""
    root = str(assets_dir())  # read once: each read looks the environment up
    iid, ver = _resolve(instrument_id, version, root)
    return _load_frozen(root, iid, ver)


def frozen_definition(instrument_id: str, version: str | None = None) -> Mapping[str, Any]:
    """Return the cached, read-only definition (None = current version): no copy is made."""
    return _definition(instrument_id, version)


def load_definition(instrument_id: str, version: str | None = None) -> dict[str, Any]:
    """Return a mutable copy of an instrument definition (None = current version)."""
    thawed: dict[str, Any] = _thaw(_definition(instrument_id, version))
    return thawed


def available_versions(instrument_id: str) -> list[str]:
    """Return an instrument's versions, oldest first."""
    iid, _ = _resolve(instrument_id, None)
    return list(_versions_in(str(assets_dir()), iid))


def unscored_items(instrument_id: str, version: str | None = None) -> frozenset[str]:
    """Return the link ids of an instrument's items that never count towards its score."""
    return _unscored(_definition(instrument_id, version))


_UNSCORED: dict[int, tuple[Mapping[str, Any], frozenset[str]]] = {}


def _unscored(definition: Mapping[str, Any]) -> frozenset[str]:
    # Asked for at every item a server re-scores: worked out once per (cached, frozen)
    # definition, held with it so that its id cannot be reused while the entry lives.
    cached = _UNSCORED.get(id(definition))
    if cached is not None and cached[0] is definition:
        return cached[1]
    found = frozenset(str(item["linkId"]) for item in definition["items"]
                      if not is_scored(item))
    if len(_UNSCORED) >= 256:
        _UNSCORED.clear()
    _UNSCORED[id(definition)] = (definition, found)
    return found


def list_instruments() -> list[tuple[str, str]]:
    """Return (id, current version) for every instrument in the assets, sorted by id."""
    folder = assets_dir() / "instruments"
    if not folder.is_dir():
        return []
    out: list[tuple[str, str]] = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and _ID_RE.match(child.name):
            versions = _versions_in(str(assets_dir()), child.name)
            if versions:
                out.append((child.name, versions[-1]))
    return out


def score(
    instrument_id: str, answers: Mapping[str, object], version: str | None = None
) -> ScoreResult:
    """Score one instrument's answers; raise ScoringError naming the bad field."""
    definition = _definition(instrument_id, version)
    if not isinstance(answers, Mapping):
        raise ScoringError("answers", f"must be a mapping of answers, got {type(answers).__name__}")
    for key in answers:
        if not isinstance(key, str):
            raise ScoringError(str(key), "answer keys must be strings")
    method = definition["scoring"]["method"]
    scorer = _SCORERS.get(method)
    if scorer is None:
        raise ScoringError(
            "instrument_id", f"{definition['id']} uses scoring method {method!r}, not available"
        )
    scored = scorer(definition, answers)
    return ScoreResult(
        instrument=definition["id"],
        version=definition["version"],
        total=scored.total,
        band=scored.band,
        flags=frozenset(scored.flags),
        details=MappingProxyType(dict(scored.details)),
    )


def clear_caches() -> None:
    """Forget loaded definitions (tests that point ONSITE_ASSETS_DIR elsewhere call this)."""
    _versions_in.cache_clear()
    _load_frozen.cache_clear()
