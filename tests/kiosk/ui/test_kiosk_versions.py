"""A kiosk older than its server serves: told so on its admin screen, nothing lost (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kiosk.service import KioskService
from kiosk.settings import KioskSettings
from onsite_server.models import CrisisAlert
from tests.kiosk.backend.helpers import start_tls_server

pytestmark = [pytest.mark.ui, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / "kiosk"
SITE = "version-site"


def test_a_too_old_kiosk_is_told_keeps_its_data_and_sends_it_once_updated(
        tmp_path: Path) -> None:
    server = start_tls_server(tmp_path / "server", SITE,
                              extra_env={"ONSITE_KIOSK_MIN_VERSION": "0.2.0"})
    try:
        data = tmp_path / "kiosk"
        env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [sys.executable, "-m", "tests.kiosk.ui.version_journey", "too_old", str(ARTIFACTS),
             server.url, server.pairing_code(SITE), str(data)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        assert "too_old: ok" in done.stdout
        assert server.submission_keys() == []  # refused before anything was stored
        # The kiosk app is updated (to the server's minimum): the same outbox drains.
        settings = KioskSettings(data_dir=data / "data", key_dir=data / "keys")
        updated = KioskService(settings, app_version="0.2.0")
        try:
            updated.worker.run_once()
            status = updated.status()
            assert status.online and status.update_required is None
            assert status.outbox_depth == 0
        finally:
            updated.close()
        stored = server.submissions()
        assert len(stored) == 1 and stored[0].instrument_id == "phq9"
        with server.session() as session:
            # Both queued alerts: the one submit() raises for a crisis item, and the screen's.
            assert session.scalar(select(func.count()).select_from(CrisisAlert)) == 2
    finally:
        server.kill()
