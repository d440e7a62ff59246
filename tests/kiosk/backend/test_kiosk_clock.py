"""A kiosk whose wall clock jumps: what a visit holds does not expire with it.

A kiosk without a battery-backed clock boots at an old time and, offline, takes sign-ins; when
the network returns, time sync moves its clock hours ahead in one step. The id a member typed
while offline is held only while their visit lasts (30 minutes at most), and that age was read
on the wall clock: the jump made it look hours old, the sync worker deleted it mid-visit, and
the member's answers were filed as anonymous.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from kiosk import outbox as outbox_module
from kiosk.service import KioskService
from kiosk.settings import KioskSettings

from .helpers import phq9


class _Jumped(datetime):
    """The wall clock after time sync stepped it five hours ahead."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + timedelta(hours=5)


def test_an_offline_sign_in_survives_the_clock_jumping_ahead_mid_visit(
        kiosk_settings: KioskSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    service = KioskService(kiosk_settings)  # never paired: the server is out of reach
    who = service.identify("E1001", "1980-01-15")
    assert who.pending is not None
    monkeypatch.setattr(outbox_module, "datetime", _Jumped)
    service.worker.run_once()  # the worker's cycle, after the jump
    service.submit(who, [phq9(item9=1)], crisis=True)
    (row,) = service.outbox.pending()
    typed = row.payload["offline_identity"]
    assert (typed["id"], typed["birth_date"]) == ("E1001", "1980-01-15")
    assert "anonymous" not in row.payload
    service.close()


def test_an_identity_outlives_no_visit(kiosk_settings: KioskSettings) -> None:
    """Past the visit's hard cap (monotonic), and after a restart, the sealed id is deleted."""
    service = KioskService(kiosk_settings)
    service.identify("E1001", "1980-01-15")
    assert service.outbox.forget_identities(timedelta(minutes=30)) == 0
    assert service.outbox.forget_identities(timedelta(0)) == 1
    service.identify("E1002", "1980-01-15")
    service.close()
    again = KioskService(kiosk_settings)  # its visit ended with the app
    assert again.outbox.forget_identities(timedelta(minutes=30)) == 1
    again.close()
