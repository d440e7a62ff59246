"""The kiosk outbox: encrypted at rest, key kept apart, crisis first, durable, no duplicates."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from kiosk.outbox import Entry, Outbox, OutboxKeyError


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    """(database, key) in two separate folders."""
    return tmp_path / "data" / "outbox.sqlite", tmp_path / "keys" / "outbox.key"


def _item(key: str, employee_id: str = "E424242", answer: str = "MARKER-ANSWER") -> dict:
    return {"idempotency_key": key, "offline_identity": {"id": employee_id,
                                                         "birth_date": "1977-03-04"},
            "answers": {"1": answer}}


def test_payloads_are_encrypted_at_rest_and_the_key_lives_apart(paths: tuple[Path, Path]
                                                                ) -> None:
    db, key = paths
    box = Outbox(db, key)
    box.put("k1", "submission", _item("k1"))
    box.put("k2", "identity", {"id": "E424242", "birth_date": "1977-03-04"})
    box.close()
    # The database file and its WAL hold neither the typed id, the birth date nor an answer.
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir())
    for secret in (b"E424242", b"1977-03-04", b"MARKER-ANSWER", b"offline_identity"):
        assert secret not in raw
    assert key.parent != db.parent
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    reopened = Outbox(db, key)
    assert reopened.get("k1").payload == _item("k1")  # type: ignore[union-attr]
    reopened.close()


def test_the_key_may_not_sit_in_the_data_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="key_path"):
        Outbox(tmp_path / "outbox.sqlite", tmp_path / "keys" / "outbox.key")


def test_a_lost_key_is_refused_rather_than_replaced(paths: tuple[Path, Path]) -> None:
    db, key = paths
    box = Outbox(db, key)
    box.put("k1", "submission", _item("k1"))
    box.close()
    key.unlink()
    with pytest.raises(OutboxKeyError, match="missing"):
        Outbox(db, key)
    key.write_bytes(b"\x00" * 32)  # another key does not open the rows either
    with pytest.raises(OutboxKeyError):
        Outbox(db, key)


def test_a_sealed_payload_cannot_be_moved_to_another_row(paths: tuple[Path, Path]) -> None:
    db, key = paths
    box = Outbox(db, key)
    box.put("k1", "submission", _item("k1"))
    box.put("k2", "submission", _item("k2"))
    box.close()
    con = sqlite3.connect(db)
    nonce, sealed = con.execute("SELECT nonce, sealed FROM outbox WHERE key='k1'").fetchone()
    con.execute("UPDATE outbox SET nonce=?, sealed=? WHERE key='k2'", (nonce, sealed))
    con.commit()
    con.close()
    box = Outbox(db, key)
    with pytest.raises(OutboxKeyError):
        box.get("k2")
    box.close()


def test_crisis_rows_come_first_then_the_order_written(paths: tuple[Path, Path]) -> None:
    box = Outbox(*paths)
    box.put("a", "submission", _item("a"))
    box.put("b", "consent", {"consent": True})
    box.put("c", "crisis_alert", {"trigger": "phq9_item9"}, crisis=True)
    box.put("d", "submission", _item("d"))
    box.put("e", "submission", _item("e"), crisis=True)
    box.put("id", "identity", {"id": "x"})
    assert [r.key for r in box.pending()] == ["c", "e", "a", "b", "d"]
    assert box.depth() == 5  # the identity row is never sent
    box.close()


def test_rewriting_a_key_keeps_one_row_and_acks_delete(paths: tuple[Path, Path]) -> None:
    box = Outbox(*paths)
    box.put_many([Entry("a", "submission", _item("a")), Entry("b", "submission", _item("b"))])
    box.put("a", "submission", _item("a"))
    assert box.depth() == 2
    assert box.ack(["a", "missing"]) == 1
    assert [r.key for r in box.pending()] == ["b"]
    box.bury("b", "refused")
    assert box.depth() == 0 and box.dead_count() == 1 and box.pending() == []
    box.close()


def test_a_visit_is_written_whole_or_not_at_all(paths: tuple[Path, Path]) -> None:
    box = Outbox(*paths)
    with pytest.raises(ValueError, match="kind"):
        box.put_many([Entry("a", "submission", _item("a")),
                      Entry("b", "bogus", {})])  # type: ignore[arg-type]
    assert box.depth() == 0
    box.close()


def test_writes_are_durable_full_sync(paths: tuple[Path, Path]) -> None:
    box = Outbox(*paths)
    mode = box._db.execute("PRAGMA synchronous").fetchone()[0]
    journal = box._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert (mode, journal) == (2, "wal")  # 2 = FULL
    box.close()


def test_a_row_read_carries_its_json_size_and_rows_opened_before_are_not_opened_again(
        paths: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = Outbox(*paths)
    payload = {"idempotency_key": "a", "answers": {"1": 2, "9": 0}, "note": "café"}
    outbox.put("a", "submission", payload)
    outbox.put("b", "submission", {"idempotency_key": "b"})
    first = outbox.pending()
    # The request's share of its JSON body, as sync_plan counts it, without encoding it again.
    assert first[0].json_bytes == len(json.dumps(payload, separators=(",", ":")))
    opened: list[str] = []
    real = outbox._open_sized
    monkeypatch.setattr(outbox, "_open_sized",
                        lambda key, *rest: opened.append(key) or real(key, *rest))
    again = outbox.pending(opened={first[0].key: first[0]})
    assert again[0] is first[0] and [r.payload for r in again] == [r.payload for r in first]
    assert opened == ["b"]
    outbox.close()
