"""Paired devices are remembered by address, one per kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.devices.events import Pairing
from kiosk.devices.pairings import PairingStore


def test_remembered_by_address_one_per_kind(tmp_path: Path) -> None:
    store = PairingStore(tmp_path / "devices.json")
    assert store.load() == {}
    store.save(Pairing("blood_pressure", "C0:FF:EE:00:00:01", "Cuff A"))
    store.save(Pairing("weight", "C0:FF:EE:00:00:02/P", "Scale", user_id=3))
    store.save(Pairing("blood_pressure", "C0:FF:EE:00:00:09", "Cuff B"))
    again = PairingStore(tmp_path / "devices.json").load()
    assert again == {"blood_pressure": Pairing("blood_pressure", "C0:FF:EE:00:00:09", "Cuff B"),
                     "weight": Pairing("weight", "C0:FF:EE:00:00:02/P", "Scale", user_id=3)}
    store.forget("weight")
    assert set(store.load()) == {"blood_pressure"}


def test_unknown_kind_and_unreadable_file(tmp_path: Path) -> None:
    store = PairingStore(tmp_path / "devices.json")
    with pytest.raises(ValueError, match="kind"):
        store.save(Pairing("thermometer", "C0:FF:EE:00:00:01"))
    (tmp_path / "devices.json").write_text("{not json", encoding="utf-8")
    assert store.load() == {}
