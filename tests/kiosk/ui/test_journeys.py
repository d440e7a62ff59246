"""The kiosk in a real GL window (SDL offscreen on Mesa), each journey in its own process.

Kivy's App and Window are process singletons, so ``journeys.py`` runs one journey per
subprocess. Screenshots land in ``tmp/artifacts/kiosk`` (or ``$ONSITE_TEST_ARTIFACTS``) for a
person to look at: every screen in English and Spanish from the tour, plus the journeys' own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from onsite_server.models import Booking, Member, Referral, Submission
from tests.kiosk.backend.helpers import TlsServer
from tests.kiosk.ui.runner import journey_env

pytestmark = [pytest.mark.ui, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("ONSITE_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts")) / "kiosk"
JOURNEY_SCREENS = ("attract", "privacy", "identify", "menu", "question", "offer", "crisis",
                   "results", "referral", "booking", "qr", "done", "admin_pin", "admin", "setup",
                   # The referral's email pad; the results of the anonymous crisis visit.
                   "referral_email", "crisis_results")


def run_journey(name: str, *args: str, out: Path = ARTIFACTS) -> str:
    """Run one journey in a fresh process; fail with its traceback."""
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "tests.kiosk.ui.journeys", name, str(out),
                           *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.parametrize("journey", ["anonymous", "crisis", "idle", "admin_lockout",
                                     "admin_open", "accessibility", "first_start",
                                     "follow_up_and_email", "booking_times",
                                     "sign_in_honestly", "setup_after_cli_pairing",
                                     "privacy_and_referral", "end_and_done", "numbers_us",
                                     "results_screens", "keypad", "landscape",
                                     "drawing_held"])
def test_journey(journey: str) -> None:
    assert f"{journey}: ok" in run_journey(journey)


@pytest.mark.parametrize("network", ["online", "offline"])
def test_the_tour_saves_every_screen_in_both_languages(network: str) -> None:
    out = ARTIFACTS / f"tour-{network}"
    for old in out.glob("*.png"):
        old.unlink()
    run_journey("tour", network, out=out)
    for language in ("en", "es"):
        names = sorted(p.name for p in out.glob(f"{language}-*.png"))
        numbers = [int(n.split("-")[1]) for n in names]
        assert numbers == list(range(1, len(names) + 1))  # 01-based, counting per language
        shown = {n.split("-", 2)[2].removesuffix(".png") for n in names}
        assert len(shown) == len(names), names  # one screenshot per screen and language
        # Offline, the sign-in waits for the server: referral, booking and QR still show
        # (booking and the codes say that they need the connection).
        assert set(JOURNEY_SCREENS) <= shown, set(JOURNEY_SCREENS) - shown
        for path in out.glob(f"{language}-*.png"):
            image = Image.open(path).convert("RGB")
            assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank


def test_the_identified_journey_against_a_live_server(demo_server: tuple[TlsServer, str]) -> None:
    server, code = demo_server
    said = run_journey("identified", server.url, code, str(server.instance))
    engine = create_engine(server.database_url)
    with Session(engine) as session:
        member = session.scalars(select(Member).where(Member.employee_id == "E1001")).one()
        # The QR decoded from the screen carries a token, verified with the server's keys,
        # whose subject is this member.
        assert f"advocate-link subject: {member.public_id}" in said
        filed = {s.instrument_id for s in session.scalars(
            select(Submission).where(Submission.member_id == member.id))}
        booked = session.scalars(select(Booking).where(Booking.member_id == member.id)).all()
        referral = session.scalars(select(Referral).where(Referral.member_id == member.id)
                                   ).one()
    engine.dispose()
    # The PHQ-2 was positive and the PHQ-9 offered on screen was accepted.
    assert {"phq2", "phq9", "gad2", "blood_pressure", "bmi", "ada_risk"} <= filed
    # The consent given on the screen, with the number typed there, reached the referral.
    assert referral.consent is True and referral.contact_method == "phone"
    assert referral.contact_phone == "5550100142"
    assert any(b.status == "booked" for b in booked)


def test_onsite_kiosk_tour_with_a_server_takes_the_identified_journey_and_sends_no_crisis(
        demo_server: tuple[TlsServer, str], tmp_path: Path) -> None:
    from onsite_server.models import CrisisAlert, Kiosk

    server, code = demo_server
    out = ARTIFACTS / "tour-live"
    for old in out.glob("*.png"):
        old.unlink()
    env = dict(os.environ, ONSITE_KIOSK_WIDTH="540", ONSITE_KIOSK_HEIGHT="960", **journey_env(),
               HOME=str(tmp_path))  # the tour must not touch the real data folder either
    exe = Path(sys.executable).with_name("onsite-kiosk")
    done = subprocess.run([str(exe), "--tour", str(out), "--server", server.url,
                           "--pairing-code", code], env=env, capture_output=True, text=True,
                          timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "online journey" in done.stdout
    names = {p.name for p in out.glob("*.png")}
    assert {"en-01-attract.png", "es-01-attract.png"} <= names
    assert any(n.endswith("-crisis.png") for n in names)
    assert not (tmp_path / ".onsite-kiosk").exists()
    engine = create_engine(server.database_url)
    with Session(engine) as session:
        member = session.scalars(select(Member).where(Member.employee_id == "E1001")).one()
        # Only the paired kiosk's items: the demo data files check-ups of its own.
        paired = session.scalars(select(Kiosk.id).where(Kiosk.label != "demo data")).all()
        sent = session.scalars(select(Submission).where(
            Submission.kiosk_id.in_(paired))).all()
        alerts = session.scalars(select(CrisisAlert)).all()
    engine.dispose()
    # The member's own visits (EN, ES) arrive whole, PHQ-9 included; the anonymous crisis
    # visit was shown, and nothing of it was sent.
    assert alerts == [] and not any(s.crisis for s in sent)
    assert all(s.member_id == member.id for s in sent)
    assert sorted(s.instrument_id for s in sent if s.instrument_id == "phq9") == ["phq9"] * 2


def test_onsite_kiosk_tour_with_no_reachable_server_takes_the_offline_journey(
        tmp_path: Path) -> None:
    out = ARTIFACTS / "tour-unreachable"
    for old in out.glob("*.png"):
        old.unlink()
    env = dict(os.environ, ONSITE_KIOSK_WIDTH="540", ONSITE_KIOSK_HEIGHT="960", **journey_env(),
               HOME=str(tmp_path))
    exe = Path(sys.executable).with_name("onsite-kiosk")
    # Port 9 (discard): nothing listens there.
    done = subprocess.run([str(exe), "--tour", str(out), "--server", "https://127.0.0.1:9",
                           "--pairing-code", "ABCD-EFGH"], env=env, capture_output=True,
                          text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "no reachable server" in done.stdout and "offline journey" in done.stdout
    for language in ("en", "es"):
        shown = {p.name.split("-", 2)[2].removesuffix(".png")
                 for p in out.glob(f"{language}-*.png")}
        assert {"attract", "identify", "question", "crisis", "results", "done"} <= shown
    assert not (tmp_path / ".onsite-kiosk").exists()
