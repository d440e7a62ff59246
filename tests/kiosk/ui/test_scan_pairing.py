"""Provisioning a new kiosk with a USB scanner, as staff really do it (issue 18).

A coordinator logs in to the live dashboard over HTTPS and asks for a pairing code; the QR on
that page is rasterised and decoded, and its text is what a USB HID scanner types: ``xdotool
type`` sends it as OS-level key events into the kiosk's real X window, then Enter. The kiosk
pairs, asks for the admin PIN, which is typed the same way, and opens on its attract screen.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from kiosk.admin import AdminLock
from onsite_server import create_app
from onsite_server.db import get_db
from onsite_server.demo import DEMO_SITE
from onsite_server.models import Kiosk, Site
from tests.kiosk.backend.helpers import TlsServer
from tests.kiosk.ui.conftest import running_demo_server
from tests.kiosk.ui.test_real_taps import (
    ARTIFACTS,
    HEIGHT,
    WIDTH,
    Person,
    display,
    stop_kiosk,
)
from tests.onsite_server.dashboard.helpers import csrf_token, gen_staff, totp_code

pytestmark = [pytest.mark.ui, pytest.mark.slow]
__all__ = ["display"]  # the module's Xvfb screen, shared with the real-tap tests
PIN = "1357"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TlsServer]:
    """A live onsite server with the demo data."""
    with running_demo_server(tmp_path / "server") as (running, _code):
        yield running


def dashboard_pairing_qr(server: TlsServer, label: str, scratch: Path) -> str:
    """Log in to the live dashboard as a coordinator, ask for a pairing code, decode its QR."""
    import cairosvg
    import zxingcpp
    from PIL import Image

    # Only to add the coordinator's account: its own instance folder, the server's untouched.
    app = create_app({"DATABASE_URL": server.database_url, "INSTANCE_PATH": str(scratch),
                      "SECRET_KEY": server.env["ONSITE_SECRET_KEY"]})
    try:
        with get_db(app).transaction() as session:
            site_id = session.scalars(select(Site.id).where(Site.slug == DEMO_SITE)).one()
        staff = gen_staff(app, "coordinator", site_id, email="scan-coordinator@test.example")
    finally:
        get_db(app).dispose()
    web = requests.Session()
    web.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces verify
    web.verify = str(server.cert)
    web.headers["Origin"] = server.url  # a browser's same-origin form posts carry it

    def post(path: str, data: dict[str, str], page: str) -> requests.Response:
        html = web.get(server.url + page, timeout=30).text
        return web.post(server.url + path, data={"csrf_token": csrf_token(html), **data},
                        headers={"Referer": server.url + page}, timeout=30)

    resp = post("/login", {"email": staff.email, "password": staff.password}, "/login")
    if "/login/verify" in resp.url:
        assert staff.totp_secret
        resp = post("/login/verify", {"code": totp_code(staff.totp_secret)}, "/login/verify")
    assert resp.ok and "/login" not in resp.url, resp.text[:500]
    page = post("/dashboard/fleet/pair", {"label": label, "place": "Front desk"},
                "/dashboard/fleet")
    assert page.status_code == 200, page.text[:500]
    svg = re.search(r"(<svg.*?</svg>)", page.text, re.S)
    assert svg, "no QR on the pairing page"
    png = cairosvg.svg2png(bytestring=svg.group(1).encode(), output_width=600)
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)),
                                     formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(decoded) == 1
    return str(decoded[0].text)


@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                    reason="needs Xvfb and xdotool (scripts/bootstrap.sh test)")
def test_a_new_kiosk_pairs_by_scanning_the_dashboard_qr_then_sets_its_pin(
        display: str, server: TlsServer, tmp_path: Path) -> None:
    text = dashboard_pairing_qr(server, "Scanned kiosk", tmp_path / "scratch")
    assert text.startswith("{") and server.url in text  # the QR's own payload, not ours
    data, layout = tmp_path / "kiosk-data", tmp_path / "layout.json"
    env = {**os.environ, "DISPLAY": display, "SDL_VIDEODRIVER": "x11", "HOME": str(tmp_path),
           "KIVY_HOME": str(tmp_path / "kivy"), "ONSITE_KIOSK_DATA_DIR": str(data),
           "ONSITE_KIOSK_WIDTH": str(WIDTH), "ONSITE_KIOSK_HEIGHT": str(HEIGHT),
           "ONSITE_KIOSK_LAYOUT_FILE": str(layout)}
    exe = Path(sys.executable).with_name("onsite-kiosk")
    log = (tmp_path / "kiosk.log").open("wb")
    # Never paired: the kiosk opens on its set-up screen.
    proc = subprocess.Popen([str(exe)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        person = Person(display, layout, proc)
        person.wait(lambda s: s["screen"] == "setup", timeout=90)
        person.xdotool("mousemove", str(WIDTH - 5), str(HEIGHT // 3))
        # The scanner: the QR's text as key presses (25 ms apart, as a HID scanner types),
        # then Enter. Nothing on the screen was tapped first: no field has the focus.
        person.xdotool("type", "--delay", "25", text)
        person.xdotool("key", "Return")
        seen = person.wait(lambda s: any(b["id"] == "pair" and "PIN" in b["text"]
                                         for b in s["buttons"]), timeout=60)
        assert seen["screen"] == "setup"
        person.screenshot(ARTIFACTS / "scan-paired-pin-next.png")
        assert not AdminLock(data).is_set()  # paired; the PIN comes next
        with server.session() as session:
            paired = session.scalars(select(Kiosk).where(Kiosk.label == "Scanned kiosk")).one()
            assert paired.revoked_at is None and paired.paired_at is not None
        # The cursor waits in the PIN field: the keyboard types it, Enter saves it.
        person.xdotool("type", "--delay", "40", PIN)
        person.xdotool("key", "Return")
        person.wait(lambda s: s["screen"] == "attract", timeout=60)
        person.screenshot(ARTIFACTS / "scan-paired-attract.png")
        assert AdminLock(data).check(PIN)
    finally:
        stop_kiosk(proc)
        log.close()


def test_a_scan_into_a_focused_field_still_pairs_and_asks_a_new_pin() -> None:
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "tests.kiosk.ui.scan_journey",
                           "scan_into_a_field", str(ARTIFACTS)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "scan_into_a_field: ok" in done.stdout
