"""The verifying key ring is kept between requests and read again whenever the folder changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from onsite_server.services.signing import KeyStore
from shared.tokens import Purpose, SigningKey


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the key files parsed (one entry per SigningKey.from_pem call)."""
    counted: list[int] = []
    original = SigningKey.from_pem

    def counting(data: bytes, purpose: Purpose) -> SigningKey:
        counted.append(1)
        return original(data, purpose)

    monkeypatch.setattr(SigningKey, "from_pem", staticmethod(counting))
    return counted


def test_an_unchanged_folder_is_not_read_again(tmp_path: Path, reads: list[int]) -> None:
    store = KeyStore(tmp_path / "keys")
    store.ring()  # a fresh folder: this makes the keys, so the folder changed after the read
    first = store.ring()
    reads.clear()
    again = KeyStore(tmp_path / "keys").ring({"7d1c5e4e-2f7b-4c33-9d0f-0c2f4f3c5a11"})
    assert reads == []  # nothing parsed: the ring came from memory
    assert again.keys == first.keys and again.active == first.active
    assert again.revoked == {"7d1c5e4e-2f7b-4c33-9d0f-0c2f4f3c5a11"} and first.revoked == set()


def test_a_rotation_and_a_retirement_are_seen_at_the_next_call(tmp_path: Path,
                                                              reads: list[int]) -> None:
    store = KeyStore(tmp_path / "keys")
    before = store.ring()
    new = KeyStore(tmp_path / "keys").rotate(Purpose.TICKET)  # as another process would
    rotated = store.ring()
    assert new.key_id in rotated.keys and new.key_id in rotated.active
    assert new.key_id not in before.keys
    KeyStore(tmp_path / "keys").retire(new.key_id)
    retired = store.ring()
    assert new.key_id not in retired.keys and new.key_id in retired.retired


def test_the_cached_ring_is_not_changed_by_a_caller(tmp_path: Path, reads: list[int]) -> None:
    store = KeyStore(tmp_path / "keys")
    store.ring()
    store.ring().revoke(["7d1c5e4e-2f7b-4c33-9d0f-0c2f4f3c5a11"])
    reads.clear()
    assert store.ring().revoked == set()
    assert reads == []  # from memory, and unchanged by the caller above
