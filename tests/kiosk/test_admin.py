"""kiosk.admin: the PIN is stored hashed and locks out after repeated failures, across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.admin import LOCK_SECONDS, MAX_FAILURES, AdminLock, PinLocked


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_pin_is_stored_hashed_and_checked(tmp_path: Path) -> None:
    lock = AdminLock(tmp_path)
    assert not lock.is_set() and not lock.check("1234")
    lock.set_pin("482915")
    assert lock.is_set()
    assert "482915" not in (tmp_path / "admin.json").read_text()
    assert lock.check("482915") and not lock.check("482916")


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", ""])
def test_a_pin_must_be_4_to_8_digits(tmp_path: Path, pin: str) -> None:
    with pytest.raises(ValueError, match="pin"):
        AdminLock(tmp_path).set_pin(pin)


def test_repeated_failures_lock_out_even_the_right_pin_until_the_time_passes(
        tmp_path: Path) -> None:
    clock = Clock()
    AdminLock(tmp_path, clock).set_pin("2468")
    for _ in range(MAX_FAILURES):
        assert not AdminLock(tmp_path, clock).check("0000")  # a fresh instance: a restart
    with pytest.raises(PinLocked) as locked:
        AdminLock(tmp_path, clock).check("2468")
    assert locked.value.seconds == pytest.approx(LOCK_SECONDS)
    clock.now += LOCK_SECONDS
    assert AdminLock(tmp_path, clock).check("2468")


def test_a_right_pin_resets_the_failure_count(tmp_path: Path) -> None:
    lock = AdminLock(tmp_path, Clock())
    lock.set_pin("2468")
    for _ in range(MAX_FAILURES - 1):
        assert not lock.check("0000")
    assert lock.check("2468")
    for _ in range(MAX_FAILURES - 1):
        assert not lock.check("0000")
    assert lock.locked_for() == 0


def test_the_default_language_survives_a_restart_and_a_new_pin(tmp_path: Path) -> None:
    lock = AdminLock(tmp_path)
    assert lock.default_language() is None
    lock.set_default_language("es")
    lock.set_pin("2468")
    assert AdminLock(tmp_path).default_language() == "es"
    with pytest.raises(ValueError, match="language"):
        lock.set_default_language("fr")
