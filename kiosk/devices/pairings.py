"""The cuffs and scales this kiosk uses, remembered by address in its data folder.

Pairing is an admin-mode task per kiosk (issue 19): staff scan, pick a device, and the kiosk
keeps it here; the check-up then waits for readings from exactly these devices and no other.
One device per kind: pairing a second cuff replaces the first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kiosk.devices.events import KINDS, Pairing

__all__ = ["PairingStore"]


class PairingStore:
    """Read and write ``devices.json``: one pairing per kind of measurement."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Pairing]:
        """The remembered pairings by kind; a missing or unreadable file remembers none."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        found: dict[str, Pairing] = {}
        for kind, entry in (data.get("devices") or {}).items():
            if kind in KINDS and isinstance(entry, dict) and isinstance(entry.get("address"),
                                                                         str):
                found[kind] = Pairing(kind=kind, address=entry["address"],
                                      name=str(entry.get("name", "")),
                                      user_id=int(entry.get("user_id", 1)))
        return found

    def save(self, pairing: Pairing) -> None:
        """Remember ``pairing`` (replacing this kind's previous device)."""
        if pairing.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {pairing.kind!r}")
        pairings = self.load()
        pairings[pairing.kind] = pairing
        self._write(pairings)

    def forget(self, kind: str) -> None:
        """Forget this kind's device."""
        pairings = self.load()
        pairings.pop(kind, None)
        self._write(pairings)

    def _write(self, pairings: dict[str, Pairing]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"devices": {kind: {"address": p.address, "name": p.name, "user_id": p.user_id}
                            for kind, p in sorted(pairings.items())}}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)  # never a half-written file after a power cut
