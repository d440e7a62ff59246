"""Scanning the pairing QR when staff tapped a field first, and when pairing again.

    python -m tests.kiosk.ui.scan_journey scan_into_a_field ARTIFACT_DIR

A USB scanner types into whatever has the focus: here the address field, which the QR's JSON
lands in. The kiosk still reads the QR (the address and the code go to their fields), pairs,
and asks for a new PIN, also on a kiosk that had one (Pair again); a scan with a bad code says
why and pairs nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.kiosk.ui import journeys


def _scan(d: object, text: str) -> None:
    from kivy.core.window import Window

    Window.dispatch("on_textinput", text)
    Window.dispatch("on_key_down", 13, 36, "\r", [])
    d.pump(4)  # type: ignore[attr-defined]


def scan_into_a_field(out: Path) -> None:
    """The QR's text typed into a focused field still pairs; a wrong code pairs nothing."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend(paired=False)
    d = journeys._start(fake, pin="2468")  # pairing again: the kiosk had a PIN
    screen = d.screen()
    assert screen.name == "setup" and not screen.pin_only
    qr = {"server_url": "https://10.1.2.3:8700", "pairing_code": "BAD-CODE"}
    screen.ids.url.focus = True
    d.pump(2)
    _scan(d, json.dumps(qr, separators=(",", ":")))
    assert "unknown pairing code" in screen.message, screen.message
    assert not fake.paired and not screen.pin_only
    screen.ids.url.text = screen.ids.code.text = ""
    screen.ids.pin.focus = True  # the PIN field keeps only digits: the port's must not count
    d.pump(2)
    _scan(d, json.dumps({**qr, "pairing_code": "GOOD-CODE"}, separators=(",", ":")))
    assert fake.paired
    assert screen.ids.url.text == "https://10.1.2.3:8700" and screen.ids.code.text == "GOOD-CODE"
    d.wait_for(lambda: screen.pin_only)
    assert screen.ids.pin.text == "" and screen.ids.title.text == "Choose an admin PIN"
    d.screenshot(out / "setup-scanned-pin-next-en.png")
    screen.ids.pin.text = "1357"
    d.tap_id("pair")
    assert d.screen().name == "attract"
    assert d.app.admin.check("1357")  # the new PIN, chosen after the scan


journeys.JOURNEYS["scan_into_a_field"] = scan_into_a_field

if __name__ == "__main__":
    sys.exit(journeys.main(sys.argv[1:]))
