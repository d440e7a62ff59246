"""Plain advice for a cuff's measurement status bits, in the member's language.

The words are data (assets/devices/status_advice.json, sources cited there); this module only
picks the lines that apply, in bit order, falling back to English for a language without them.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from shared.devices.blood_pressure import BP_STATUS_CODES
from shared.paths import assets_dir

__all__ = ["status_advice"]


@cache
def _advice() -> dict[str, Any]:
    path = assets_dir() / "devices" / "status_advice.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    missing = [code for code in BP_STATUS_CODES if code not in data["status"]]
    if missing:
        raise ValueError(f"{path}: no advice for status {', '.join(missing)}")
    return data


def _pick(texts: dict[str, str], lang: str) -> str:
    return texts.get(lang) or texts["en"]


def status_advice(status: tuple[str, ...] | list[str], lang: str) -> list[str]:
    """The advice lines for ``status`` (a heading first), or nothing for a clean reading."""
    if not status:
        return []
    data = _advice()
    lines = [_pick(data["measure_again"], lang)]
    for code in BP_STATUS_CODES:
        if code in status:
            lines.append(_pick(data["status"][code], lang))
    unknown = [code for code in status if code not in data["status"]]
    if unknown:
        raise ValueError(f"status: unknown code(s) {', '.join(unknown)}")
    return lines
