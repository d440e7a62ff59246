"""The verifying key ring and the signing keys are kept between requests and read again whenever
the folder changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from onsite_server.services import signing
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


def test_the_signing_key_of_an_unchanged_folder_is_not_read_again(tmp_path: Path,
                                                                  reads: list[int]) -> None:
    store = KeyStore(tmp_path / "keys")
    first = store.current(Purpose.TICKET)  # made: the folder changed after it was read
    again = store.current(Purpose.TICKET)
    reads.clear()
    assert KeyStore(tmp_path / "keys").current(Purpose.TICKET).key_id == first.key_id
    assert again.key_id == first.key_id
    assert reads == []  # nothing parsed: the key came from memory


def test_a_signing_key_rotated_or_retired_elsewhere_stops_signing_at_the_next_call(
        tmp_path: Path, reads: list[int]) -> None:
    store = KeyStore(tmp_path / "keys")
    old = store.current(Purpose.TICKET)
    store.current(Purpose.TICKET)
    new = KeyStore(tmp_path / "keys").rotate(Purpose.TICKET)  # as another process would
    assert store.current(Purpose.TICKET).key_id == new.key_id != old.key_id
    KeyStore(tmp_path / "keys").retire(new.key_id)  # compromised: a third key takes over
    third = store.current(Purpose.TICKET)
    assert third.key_id not in (old.key_id, new.key_id)
    assert KeyStore(tmp_path / "keys").current_kid(Purpose.TICKET) == third.key_id


def test_no_other_process_ever_finds_a_key_file_half_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the first key is being written, the folder lists no key under its real name.

    Two gunicorn workers on a fresh instance: one made the first ticket key while the other
    listed the folder, found the new file still empty and could not parse it (a 500 to a
    booking, seen in a whole run). A reader now finds no key, or the whole key.
    """
    store = KeyStore(tmp_path / "keys")
    seen: list[list[Path]] = []
    real_fdopen = signing.os.fdopen

    class Watching:
        """The file being written; a look at the folder, as another process, at each write."""

        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Watching:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            seen.append(KeyStore(store.folder)._files(Purpose.TICKET))
            return int(self.handle.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    monkeypatch.setattr(signing.os, "fdopen",
                        lambda fd, *a, **k: Watching(real_fdopen(fd, *a, **k)))
    key = store.current(Purpose.TICKET)
    monkeypatch.undo()
    assert seen == [[]]  # looked at mid-write: nothing under a key's name yet
    assert store.current(Purpose.TICKET).key_id == key.key_id  # then the whole key
    assert [p.name for p in store.folder.iterdir()] == [f"ticket-{key.key_id}.pem"]
