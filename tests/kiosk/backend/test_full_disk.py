"""A kiosk whose disk is full (or gone read-only) during a visit: nothing raises into the
screens (a crisis screen may be next), the rows wait in memory and count as not sent, and go to
the outbox, in order, once the disk takes them again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.service import KioskService, build_backend
from kiosk.settings import KioskSettings

from .helpers import phq9


def _disk_full(service: KioskService, full: bool) -> None:
    """Make the outbox's file take no more writes, as a full disk or an SD card gone read-only
    does (SQLite then refuses every write with an OperationalError), or take them again."""
    with service.outbox._lock:
        service.outbox._db.execute(f"PRAGMA query_only = {'ON' if full else 'OFF'}")


@pytest.fixture
def service(kiosk_settings: KioskSettings) -> Iterator[KioskService]:
    """An unpaired kiosk (offline), its worker not started."""
    made = build_backend(kiosk_settings, start=False)
    yield made
    made.close()


def test_a_full_disk_holds_the_visits_rows_and_never_says_staff_were_told(
        service: KioskService) -> None:
    _disk_full(service, True)
    who = service.identify("E1001", "1980-01-15")  # offline: the typed id is held
    assert who.pending
    service.submit(who, [phq9(item9=2)], crisis=True)
    service.crisis_alert("phq9_item9")
    status = service.status()
    assert service.outbox.depth() == 0  # nothing reached the disk
    assert status.outbox_depth == 2  # the submission and the alert wait (not the identity)
    assert any("could not be saved on this kiosk" in e for e in status.last_errors)

    _disk_full(service, False)
    assert service.status().outbox_depth == 2
    rows = service.outbox.pending(kinds=("submission", "crisis_alert"))
    assert [r.kind for r in rows] == ["submission", "crisis_alert"]  # in order, crisis lane
    assert rows[0].payload["offline_identity"]["id"] == "E1001"  # still the member's
    assert rows[0].payload["answers"]["9"] == 2
    assert service._unsaved == []


def test_a_row_written_after_the_disk_frees_goes_behind_the_held_ones(
        service: KioskService) -> None:
    _disk_full(service, True)
    service.crisis_alert("phq9_item9")
    _disk_full(service, False)
    service.submit(None, [phq9()], crisis=False)
    rows = service.outbox.pending(kinds=("submission", "crisis_alert"))
    assert [r.kind for r in rows] == ["crisis_alert", "submission"]
    assert service.status().outbox_depth == 2
