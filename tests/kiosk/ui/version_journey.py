"""A kiosk too old for its server, in the real window (one process, as ``journeys.py``).

    python -m tests.kiosk.ui.version_journey too_old ARTIFACT_DIR SERVER_URL CODE DATA_DIR

The kiosk was paired while its version was served (0.2.0); it now runs 0.1.0 against a server
whose minimum is 0.2.0. A visit still works (sign-in held offline, answers and a crisis alert
queued), the sync is refused, and the admin screen says so in English and Spanish while the
outbox keeps every row.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.kiosk.ui import journeys


def too_old(out: Path, server_url: str, code: str, data_dir: str) -> None:
    """Too old: the visit is kept, the admin screen says why nothing is sent."""
    from kiosk.backend import Offline
    from kiosk.service import KioskService
    from kiosk.settings import KioskSettings
    from tests.kiosk.backend.helpers import phq9

    settings = KioskSettings(data_dir=Path(data_dir) / "data", key_dir=Path(data_dir) / "keys")
    paired = KioskService(settings, app_version="0.2.0")
    paired.pair(server_url, code)
    paired.close()
    backend = KioskService(settings, app_version="0.1.0")
    try:
        who = backend.identify("E1001", "1985-03-14")
        assert who.pending, "a too-old kiosk signs in as if offline"
        backend.submit(who, [phq9(item9=1)], crisis=True)
        backend.crisis_alert("phq9_item9")
        depth = backend.status().outbox_depth
        backend.worker.run_once()
        status = backend.status()
        assert status.update_required == "0.2.0" and not status.online, status
        assert status.outbox_depth == depth, "rows were dropped or set aside"
        # What the screens ask the server (bookings, links) says "offline", not a refusal.
        assert backend._client is not None
        try:
            backend._client.catalog(None)
        except Offline:
            pass
        else:
            raise AssertionError("a too-old kiosk's screens were served")
        d = journeys._start(backend)
        for _ in range(5):
            d.tap_id("corner")
        for ch in "2468":
            d.tap_text(ch, within=d.screen().ids.pad)
        d.tap_id("ok")
        screen = d.screen()
        assert screen.name == "admin"
        said = screen.ids.update_required.text
        assert "too old" in said and "0.2.0" in said and "0.1.0" in said, said
        assert f"the {depth} items waiting" in said, said
        d.screenshot(out / "admin-too-old-en.png")
        d.tap_id("home_language")
        d.pump(4)
        said = screen.ids.update_required.text
        assert "demasiado antigua" in said and "0.2.0" in said, said
        d.screenshot(out / "admin-too-old-es.png")
        assert backend.status().outbox_depth == depth
    finally:
        backend.close()


journeys.JOURNEYS["too_old"] = too_old

if __name__ == "__main__":
    sys.exit(journeys.main(sys.argv[1:]))
