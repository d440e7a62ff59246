"""A kiosk whose outbox file was damaged (power cut, a full card, a bad copy) still starts.

It failed at every start before: under ``Restart=always`` a crash loop, with the kiosk unusable
and the crises it held never sent. Now the damaged file is set aside and kept, every row it
still yields is carried into a fresh outbox, staff are told on the admin screen, and what was
carried reaches a real server as before.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from kiosk.outbox import Outbox
from kiosk.service import KioskService
from kiosk.settings import KioskSettings
from onsite_server.models import CrisisAlert

from .conftest import SITE
from .helpers import TlsServer, phq9


def _backlog(settings: KioskSettings, items: int) -> None:
    """A crisis alert queued first, then many ordinary items, on disk (no WAL left)."""
    service = KioskService(settings)
    service.crisis_alert("phq9_item9")
    for _ in range(items):
        service.submit(None, [phq9()], crisis=False)
    service.close()


def test_a_truncated_outbox_is_set_aside_and_its_readable_rows_carried(
        server: TlsServer, kiosk_settings: KioskSettings) -> None:
    _backlog(kiosk_settings, 200)
    path = kiosk_settings.outbox_path
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])  # the card lost the file's second half
    service = KioskService(kiosk_settings)  # raised sqlite3.DatabaseError
    status = service.status()
    assert 0 < status.outbox_depth < 201
    (note,) = [e for e in status.last_errors if "outbox file was damaged" in e]
    kept = sorted(path.parent.glob("outbox.sqlite.damaged-*"))
    assert [p.name for p in kept] == [kept[0].name] and kept[0].name in note
    assert kept[0].read_bytes() == whole[:len(whole) // 2]  # kept as found, for support
    assert f"{status.outbox_depth} rows were recovered" in note
    # The crisis alert (the first row) was carried, at the head, and reaches the server.
    service.pair(server.url, server.pairing_code(SITE))
    service.worker.run_once()
    assert service.status().outbox_depth == 0
    with server.session() as session:
        assert session.scalars(select(CrisisAlert.trigger)).all() == ["phq9_item9"]
    service.close()
    # A restart finds a sound file: nothing is set aside again.
    again = KioskService(kiosk_settings)
    assert not [e for e in again.status().last_errors if "damaged" in e]
    assert len(list(path.parent.glob("outbox.sqlite.damaged-*"))) == 1
    again.close()


def test_a_file_that_is_not_a_database_starts_an_empty_outbox(kiosk_settings: KioskSettings
                                                              ) -> None:
    _backlog(kiosk_settings, 0)
    kiosk_settings.outbox_path.write_bytes(b"\x00garbage" * 4096)
    service = KioskService(kiosk_settings)
    assert service.status().outbox_depth == 0
    assert any("0 rows were recovered" in e for e in service.status().last_errors)
    service.crisis_alert("hypertensive_crisis")  # and it takes new rows at once
    assert service.status().outbox_depth == 1
    service.close()


def test_a_sound_file_with_its_wal_left_behind_is_opened_as_it_is(tmp_path: Path) -> None:
    db, key = tmp_path / "data" / "outbox.sqlite", tmp_path / "keys" / "outbox.key"
    box = Outbox(db, key)
    box.put("k1", "crisis_alert", {"idempotency_key": "k1"}, crisis=True)
    # Not closed: the row is in the WAL only, as after a power cut.
    copy = tmp_path / "copy"
    copy.mkdir()
    for part in db.parent.iterdir():
        (copy / part.name).write_bytes(part.read_bytes())
    box.close()
    reopened = Outbox(copy / "outbox.sqlite", key)
    assert reopened.keys() == ["k1"]
    assert not list(copy.glob("outbox.sqlite.damaged-*"))  # nothing set aside
    reopened.close()
