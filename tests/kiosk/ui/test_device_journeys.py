"""The kiosk window with the simulated Bluetooth cuff and scale (issue 19), each journey in its
own process; screenshots in tmp/artifacts/kiosk/devices for a person to look at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.kiosk.backend.helpers import TlsServer
from tests.kiosk.ui.runner import journey_env

pytestmark = [pytest.mark.ui, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / \
    "kiosk" / "devices"


def run(name: str, *args: str, module: str = "tests.kiosk.ui.device_journeys") -> str:
    """Run one device journey in a fresh process; fail with its traceback."""
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", module, name, str(ARTIFACTS), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
                          check=False)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.parametrize("journey", ["cuff", "scale", "admin_pairing"])
def test_device_journey(journey: str) -> None:
    assert f"{journey}: ok" in run(journey)


DEVICE_SCREENS = ("device_cuff_wait", "device_cuff_advice", "device_cuff_reading",
                  "device_scale_wait", "device_scale_reading", "admin_devices")


def test_the_tour_with_simulated_devices_saves_their_screens() -> None:
    """The pinned command: ``onsite-kiosk --tour DIR --simulated-devices`` (offline here)."""
    out = ARTIFACTS / "tour"
    for old in out.glob("*.png"):
        old.unlink()
    env = dict(os.environ, PYTHONPATH=str(ROOT), **journey_env())
    done = subprocess.run([sys.executable, "-c", "from kiosk.cli import main; main()",
                           "--tour", str(out), "--simulated-devices"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    for language in ("en", "es"):
        names = sorted(p.name for p in out.glob(f"{language}-*.png"))
        shown = {n.split("-", 2)[2].removesuffix(".png") for n in names}
        assert set(DEVICE_SCREENS) <= shown, set(DEVICE_SCREENS) - shown
        # BP and body size came from the devices: the number pad was never needed for them.
        assert "question_height" in shown  # the height is still typed (feet, then inches)


def test_full_path_cuff_to_screen_to_server_to_fhir(demo_server: tuple[TlsServer, str]) -> None:
    """The simulated cuff sends a reading; the kiosk shows it; the member confirms it; the
    server stores it with its device; the Bundle for central carries the Device and method."""
    from datetime import UTC, datetime

    from onsite_server.fhir import Systems, validate
    from onsite_server.models import Kiosk, Member, OutboxMessage, Referral, Submission
    from onsite_server.services.signing import KeyStore
    from onsite_server.services.sync import SyncSettings, build_bundle

    server, code = demo_server
    assert "full_path: ok" in run("full_path", server.url, code)
    engine = create_engine(server.database_url)
    try:
        with Session(engine) as session:
            member = session.scalars(select(Member).where(Member.employee_id == "E1001")).one()
            # The paired kiosk's: the demo data files check-ups of its own.
            paired = session.scalars(select(Kiosk.id).where(Kiosk.label != "demo data")).all()
            (stored,) = session.scalars(select(Submission).where(
                Submission.member_id == member.id, Submission.kiosk_id.in_(paired),
                Submission.instrument_id == "blood_pressure")).all()
            assert stored.answers == {"systolic": 152, "diastolic": 96}
            assert stored.devices == [{"kind": "blood_pressure",
                                       "manufacturer": "Onsite Simulated Devices",
                                       "model": "SIM-BP1", "serial": "BP-0001",
                                       "link_ids": ["diastolic", "systolic"]}]
            referral = session.scalars(select(Referral).where(
                Referral.member_id == member.id)).one()
            assert referral.consent is True
            row = session.scalars(select(OutboxMessage).where(
                OutboxMessage.referral_id == referral.id).order_by(
                OutboxMessage.id.desc())).first()
            assert row is not None
            settings = SyncSettings(systems=Systems("https://fhir.example/id"), site="demo",
                                    keys=KeyStore(server.instance / "keys"), worker_id="test")
            bundle = build_bundle(session, row, settings, datetime.now(UTC))
    finally:
        engine.dispose()
    validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    devices = [r for r in resources if r["resourceType"] == "Device"]
    assert [(d["manufacturer"], d["modelNumber"], d["serialNumber"]) for d in devices] == [
        ("Onsite Simulated Devices", "SIM-BP1", "BP-0001")]
    device_url = next(e["fullUrl"] for e in bundle["entry"]
                      if e["resource"]["resourceType"] == "Device")
    (panel,) = [r for r in resources if r["resourceType"] == "Observation"
                and r["code"]["coding"][0]["code"] == "85354-9"
                and r["identifier"][0]["value"].startswith(stored.idempotency_key)]
    assert panel["device"] == {"reference": device_url}
    assert panel["method"]["coding"][0]["code"] == "device"
    values = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
              for c in panel["component"]}
    assert values == {"8480-6": 152, "8462-4": 96}
