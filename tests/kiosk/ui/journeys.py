"""Journeys through the real kiosk window, one per process (Kivy's App and Window are singletons).

    python -m tests.kiosk.ui.journeys NAME ARTIFACT_DIR [SERVER_URL PAIRING_CODE]

Each journey taps real widgets through the window, checks what a member would see, and exits
0; a failed check prints its traceback to the real stderr (Kivy captures sys.stderr) and exits
1. ``test_journeys.py`` runs each in its own subprocess.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kiosk.ui.runner import JOURNEY_TAP_GUARD_MS, run

WIDTH, HEIGHT = 540, 960


class FakeClock:
    """The visit's clock, moved by the test (Kivy's own frames still run in real time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _start(backend: Any, *, clock: Callable[[], float] | None = None, pin: str | None = "2468",
           require_setup: bool = True) -> Any:
    from kiosk.admin import AdminLock
    from kiosk.ui.app import KioskApp
    from kiosk.ui.driver import Driver

    admin = AdminLock(Path(tempfile.mkdtemp(prefix="kiosk-admin-")))
    if pin:
        admin.set_pin(pin)
    app = KioskApp(backend=backend, admin=admin, clock=clock, require_setup=require_setup,
                   tap_guard=JOURNEY_TAP_GUARD_MS / 1000)
    return Driver.start(app)


def _to_menu(d: Any, *, anonymous: bool = True) -> None:
    d.tap_id("start")
    d.tap_id("accept")
    assert d.screen().name == "identify"
    if anonymous:
        _scan_badge(d)
        d.tap_id("anonymous")
    assert d.screen().name == "menu", d.screen().name


def _sign_in(d: Any) -> Any:
    """From the attract screen, type the demo member's id and birth date on the keypad."""
    d.tap_id("start")
    d.tap_id("accept")
    screen = d.screen()
    _type_on(d, screen.ids.keypad, "E1001")
    d.tap_id("dob_field")
    _type_on(d, screen.ids.keypad, "03141985")
    return screen


def _end_session(d: Any) -> None:
    """End session from the footer: mid-visit it asks first; say yes."""
    d.tap(d.screen().ids.footer.ids.end)
    confirm = d.app.end_confirm
    if confirm is not None:
        d.tap(confirm.ids.confirm)
    assert d.screen().name == "attract", d.screen().name


def _scan_badge(d: Any) -> None:
    """A USB badge scanner types like a keyboard and ends with Enter; the id shows masked."""
    from kivy.core.window import Window

    screen = d.screen()
    Window.dispatch("on_textinput", "b-7001")
    Window.dispatch("on_key_down", 13, 0, "\r", [])
    d.pump(2)
    assert screen.typed_id == "B-7001" and screen.field == "dob"
    assert "7001" not in screen.ids.id_field.text  # masked


def _check_answer_buttons(d: Any) -> None:
    """Answers are big enough for a finger, far enough apart, in the lower two-thirds."""
    from kivy.core.window import Window

    buttons = d.screen().answer_buttons
    assert buttons, "no answer buttons"
    tops = []
    for b in buttons:
        x, y = b.to_window(b.x, b.y)
        assert b.height >= 60, f"answer button {b.text!r} is {b.height}px high"
        assert b.texture_size[0] <= b.width and b.texture_size[1] <= b.height, "clipped label"
        assert y + b.height <= Window.height * 2 / 3 + 1, f"{b.text!r} sits in the top third"
        tops.append((y, y + b.height))
    tops.sort()
    for (_, top_below), (bottom_above, _) in zip(tops, tops[1:], strict=False):
        assert bottom_above - top_below >= 16, "answer buttons too close together"


def anonymous(out: Path) -> None:
    """Anonymous: a screener, its results in words, no booking or advocate; then wiped."""
    from kivy.core.window import Window

    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    d = _start(fake)
    assert d.screen().name == "attract"
    d.tap_at(5, Window.height / 2)  # a tap on nothing changes nothing
    assert d.screen().name == "attract"
    _to_menu(d)
    menu = d.screen()
    assert menu.ids.booking.disabled and menu.ids.advocate.disabled
    d.tap_id("single")
    d.tap_text("Generalized Anxiety Disorder scale", within=menu.ids.screeners)
    assert d.screen().name == "question"
    _check_answer_buttons(d)
    d.screenshot(out / "anonymous-question-en.png")
    # The language switches mid-question: the question and its answers follow.
    d.tap(d.screen().ids.footer.ids.language)
    assert d.screen().ids.question.text.startswith("Sentirse nervioso"), \
        d.screen().ids.question.text
    assert d.screen().ids.skip.text == "Prefiero no responder"
    d.screenshot(out / "anonymous-question-es.png")
    d.tap(d.screen().ids.footer.ids.language)
    assert d.screen().ids.skip.text == "Prefer not to answer"
    d.tap_text("Not at all")
    assert "Question 2 of 7 \u00b7 about 2 minutes left" in d.screen().ids.progress_label.text
    while d.screen().name == "question":
        d.tap_text("Not at all")
    assert d.screen().name == "results"
    rows = d.screen().ids.rows.children
    texts = [r.text for r in rows]
    assert any("In a healthy range" in t for t in texts), texts  # words, not colour alone
    assert "not a diagnosis" in d.screen().ids.not_diagnosis.text
    assert fake.submitted and fake.submitted[0]["member"] is None
    d.tap_id("next")
    assert d.screen().name == "menu"
    d.tap_id("finish")
    assert d.screen().name == "done"
    d.tap_id("end")
    assert d.screen().name == "attract"
    assert not d.app.visit.holds_member_data()


def accessibility(out: Path) -> None:
    """Large text makes text larger; high contrast turns the screen dark with light text."""
    from PIL import Image

    from tests.kiosk.ui.fakes import FakeBackend

    d = _start(FakeBackend())
    start = d.screen().ids.start
    before = start.font_size
    d.tap_id("text_size")
    assert start.font_size > before
    d.tap_id("contrast")
    shot = d.screenshot(out / "attract-large-high-contrast.png")
    corner = Image.open(shot).convert("RGB").getpixel((WIDTH // 2, 5))
    assert max(corner) < 40, corner  # black background
    d.tap_id("start")
    _end_session(d)  # the next member starts with the usual look
    assert d.app.text_scale == 1.0 and not d.app.high_contrast


def crisis(out: Path) -> None:
    """PHQ-9 item 9: the crisis screen at once, through idle and End, closed in two steps."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    clock = FakeClock()
    d = _start(fake, clock=clock)
    _to_menu(d)
    d.tap_id("single")
    d.tap_text("Patient Health Questionnaire (PHQ-9)", within=d.screen().ids.screeners)
    while d.app.visit.journey.question != "9":
        d.tap_text("Not at all")
    d.tap_text("Several days")
    d.tap_text("Not difficult at all")
    assert d.screen().name == "crisis"
    assert fake.submitted[-1]["instrument_id"] == "phq9" and fake.submitted[-1]["crisis"]
    labels = " ".join(w.text for w in d.screen().ids.guidance.children)
    assert "988" in labels and "911" in labels
    # The site's own crisis line follows the fixed guidance, under its own heading.
    assert "Help near you" in labels and "Riverside Crisis Center: +1 555 0199" in labels
    assert labels.index("Riverside Crisis Center") < labels.index("988"), \
        "children are listed last-added first: the local line must come after 988/911"
    d.screenshot(out / "crisis-en.png")
    clock.now += 200  # past the idle timeout and its countdown, within the crisis screen's own
    d.wait_for(lambda: d.app.visit.tick() is None, frames=5)
    d.pump(3)
    assert d.screen().name == "crisis" and d.app.countdown is None
    d.tap_id("close")
    assert d.screen().name == "crisis" and d.screen().armed
    d.pump(2)
    # The first step, now hidden, leaves no blank band: the hint follows the staff notice.
    staff, hint = d.find("staff"), d.find("how_to_close")
    # (Two spacings at most: the page's, either side of the collapsed button.)
    assert staff.y - hint.top <= 2 * d.screen().children[0].spacing + 1, (staff.y, hint.top)
    # The second step is elsewhere (the top) and is offered only a moment after the first.
    confirm, first = d.find("confirm"), d.find("close")
    assert confirm.disabled and first.disabled
    assert confirm.to_window(*confirm.center)[1] > first.to_window(*first.center)[1] + 400
    clock.now += 5
    d.wait_for(lambda: not confirm.disabled)
    d.tap_id("confirm")
    assert d.screen().name == "results"


def idle(out: Path) -> None:
    """Idle: a countdown shows; a tap cancels it; left alone, the visit is wiped."""
    from kivy.core.window import Window

    from tests.kiosk.ui.fakes import FakeBackend

    clock = FakeClock()
    d = _start(FakeBackend(), clock=clock)
    _to_menu(d)
    d.tap_id("single")
    d.tap_text("Generalized Anxiety Disorder scale", within=d.screen().ids.screeners)
    d.tap_text("Several days")
    assert d.app.visit.holds_member_data()
    clock.now += 95  # idle 90 s: the 20 s countdown starts
    d.wait_for(lambda: d.app.countdown is not None)
    assert d.app.countdown.seconds == 15
    assert "15" in d.app.countdown.text
    d.screenshot(out / "idle-countdown-en.png")
    d.tap_at(Window.width / 2, Window.height / 2)  # a tap anywhere keeps going
    assert d.app.countdown is None and d.screen().name == "question"
    assert d.app.visit.journey.question == "2"  # the tap only cancelled the countdown
    clock.now += 111
    d.wait_for(lambda: d.screen().name == "attract")
    assert not d.app.visit.holds_member_data()
    assert d.app.countdown is None


def admin_lockout(out: Path) -> None:
    """First start unpaired: the pairing screen; then the hidden gesture, PIN, lock-out."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend(paired=False)
    d = _start(fake, pin=None)
    assert d.screen().name == "setup", d.screen().name
    d.screenshot(out / "setup-en.png")
    screen = d.screen()
    screen.ids.url.text = "https://127.0.0.1:8700"
    screen.ids.code.text = "WRONG"
    screen.ids.pin.text = "2468"
    d.tap_id("pair")
    assert d.screen().name == "setup" and "refused" in screen.message
    screen.ids.code.text = "GOOD-CODE"
    d.tap_id("pair")
    assert d.screen().name == "attract"
    for _ in range(5):
        d.tap_id("corner")
    assert d.screen().name == "admin_pin"
    pad = d.screen().ids.pad
    for _attempt in range(5):
        for ch in "1111":
            d.tap_text(ch, within=pad)
        d.tap_id("ok")
        assert d.screen().name == "admin_pin"
    assert "Too many" in d.screen().message, d.screen().message
    for ch in "2468":  # the right PIN is refused while locked out
        d.tap_text(ch, within=pad)
    d.tap_id("ok")
    assert d.screen().name == "admin_pin" and "Too many" in d.screen().message
    d.screenshot(out / "admin-locked-en.png")
    d.tap_id("cancel")
    assert d.screen().name == "attract"


def first_start(out: Path) -> None:
    """The real backend, never paired and no server anywhere: the pairing screen, no crash."""
    from kiosk.cli import build_backend
    from kiosk.settings import KioskSettings

    tmp = Path(tempfile.mkdtemp(prefix="kiosk-first-"))
    backend = build_backend(KioskSettings(data_dir=tmp / "data", key_dir=tmp / "keys"))
    try:
        d = _start(backend, pin=None)
        assert d.screen().name == "setup"
        assert d.screen().ids.leave.disabled  # nothing to go back to before pairing
        screen = d.screen()
        screen.ids.url.text = "https://127.0.0.1:9"  # nothing listens on the discard port
        screen.ids.code.text = "ABCD-EFGH"
        screen.ids.pin.text = "2468"
        d.tap_id("pair")
        assert d.screen().name == "setup" and screen.message, screen.message
        d.screenshot(out / "first-start-not-paired-en.png")
    finally:
        backend.close()


def admin_open(out: Path) -> None:
    """The right PIN opens the admin screen: depth, the drain's progress, sync now, exit."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend(online=False)
    fake.depth = 40
    d = _start(fake)
    for _ in range(5):
        d.tap_id("corner")
    for ch in "2468":
        d.tap_text(ch, within=d.screen().ids.pad)
    d.tap_id("ok")
    assert d.screen().name == "admin"
    screen = d.screen()
    assert screen.depth == 40 and screen.draining and screen.ids.drain.value == 50
    fake.depth = 10  # the backlog drains: the screen follows without a tap
    d.wait_for(lambda: screen.depth == 10)
    assert "connection refused" in screen.errors
    d.tap_id("sync_now")
    assert ("sync_now", None) in fake.calls
    d.tap_id("home_language")
    assert d.app.visit.language == "es"
    d.screenshot(out / "admin-es.png")
    d.tap_id("back_to_kiosk")
    assert d.screen().name == "attract" and d.screen().ids.start.text == "Comenzar"


def _check_in_reach(widgets: list[Any], what: str) -> None:
    """Big enough for a finger (60 px at the least) and in the lower two-thirds of the screen."""
    from kivy.core.window import Window

    for w in widgets:
        _x, y = w.to_window(w.x, w.y)
        assert w.height >= 60 and w.width >= 60, f"{what} {w.text!r} is {w.size}"
        assert y + w.height <= Window.height * 2 / 3 + 1, f"{what} {w.text!r} is in the top third"
        assert y >= 0, f"{what} {w.text!r} is off the screen"


def follow_up_and_email(out: Path) -> None:
    """WHO-5 offers the PHQ-9: Back reopens, No thanks; then consent by email, typed on the pad."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    clock = FakeClock()
    d = _start(fake, clock=clock)
    _sign_in(d)
    d.tap_id("submit")
    assert d.screen().name == "menu", d.app.visit.message
    d.tap_id("single")
    d.screen().ids.screeners.parent.scroll_y = 0  # the WHO-5 is last in the list: scroll to it
    d.pump(3)
    d.tap_text("WHO-5", within=d.screen().ids.screeners)
    while d.screen().name == "question":
        d.tap(d.screen().answer_buttons[-1])  # "At no time": poor well-being
    assert d.screen().name == "offer", d.screen().name
    offer = d.screen()
    assert "mood" in offer.ids.why.text and "10 questions" in offer.ids.details.text
    _check_in_reach([offer.ids.accept, offer.ids.decline], "offer button")
    assert fake.submitted == []  # held while Back can still change the last answer
    d.screenshot(out / "offer-en.png")
    d.tap(offer.ids.footer.ids.back)
    assert d.screen().name == "question" and d.app.visit.journey.question == "5"
    d.tap(d.screen().answer_buttons[-1])
    assert d.screen().name == "offer"
    d.tap(d.screen().ids.footer.ids.language)
    assert d.screen().ids.accept.text == "Sí, continuar"
    assert "estado de ánimo" in d.screen().ids.why.text
    d.screenshot(out / "offer-es.png")
    d.tap(d.screen().ids.footer.ids.language)
    d.tap_id("decline")
    assert d.screen().name == "results"
    assert [s["instrument_id"] for s in fake.submitted] == ["who5"]
    assert d.app.visit.journey.declined == ["phq9"]
    d.tap_id("next")
    assert d.screen().name == "referral"
    for language in ("en", "es"):
        referral = d.screen()
        for choice in ("email", "afternoon"):
            if referral.ids[choice].state != "down":  # still chosen after Cancel
                d.tap_id(choice)
        d.tap_id("agree")
        pad = referral.email_pad
        assert pad is not None and pad.ids.save.disabled
        assert pad.ids.save.text == ("OK" if language == "en" else "Aceptar"), pad.ids.save.text
        keys = list(pad.ids.keyboard.children)
        _check_in_reach([*keys, pad.ids.save, pad.ids.delete, pad.ids.cancel], "email key")
        for key in (*"ana_b+k@exampl", "x", ".com"):
            d.tap_key(key, within=pad.ids.keyboard)
        d.tap(pad.ids.delete)  # one character at a time, even after ".com"
        assert pad.typed == "ana_b+k@examplx.co", pad.typed
        for _ in range(4):
            d.tap(pad.ids.delete)
        for key in ("e", ".com"):
            d.tap_key(key, within=pad.ids.keyboard)
        assert pad.typed == "ana_b+k@example.com"
        assert "ana" not in pad.ids.address.text and "@example.com" in pad.ids.address.text
        assert not pad.ids.save.disabled
        d.screenshot(out / f"email-pad-{language}.png")
        if language == "es":
            # Idle with the pad open: the countdown shows above it, and a tap keeps going.
            clock.now += 95
            d.wait_for(lambda: d.app.countdown is not None)
            assert d.app.countdown.parent is not None and pad.parent is not None
            window = d.app.countdown.get_root_window()
            assert window.children[0] is d.app.countdown  # drawn last: on top of the pad
            d.screenshot(out / "email-pad-countdown-es.png")
            d.tap_at(window.width / 2, window.height / 2)
            assert d.app.countdown is None and pad.typed == "ana_b+k@example.com"
        if language == "en":
            d.tap(pad.ids.cancel)
            assert referral.email_pad is None and pad.typed == ""
            assert not [c for c in fake.calls if c[0] == "consent"]
            d.tap(referral.ids.footer.ids.language)
            continue
        d.tap(pad.ids.save)
    assert d.screen().email_pad is None
    assert fake.calls[-1] == ("consent", (True, "email", "afternoon"))
    assert fake.emails[-1] == "ana_b+k@example.com"
    _end_session(d)
    assert d.screen().name == "attract" and not d.app.visit.holds_member_data()


def tour(out: Path, online: str = "online") -> None:
    """The tour with a fake backend: every screen in EN and ES, named as pinned."""
    from kiosk.cli import _walk
    from kiosk.settings import KioskSettings
    from tests.kiosk.ui.fakes import FakeBackend

    settings = KioskSettings(width=WIDTH, height=HEIGHT, tap_guard_ms=JOURNEY_TAP_GUARD_MS,
                             data_dir=Path(tempfile.mkdtemp(prefix="kiosk-tour-")))
    fake = FakeBackend(online=online == "online")
    assert _walk(out, settings, fake, online=fake.online) == 0
    assert not any(s["crisis"] for s in fake.submitted), "the tour sent a crisis"


def _type_on(d: Any, pad: Any, text: str) -> None:
    from kiosk.ui.lang import tr

    screen = d.screen()
    for ch in text:
        if hasattr(screen, "letters") and ch.isalpha() != screen.letters:
            d.tap_text(tr._("ABC") if ch.isalpha() else "123", within=pad)
        d.tap_text(ch, within=pad)


def identified(out: Path, server: str, code: str, instance: str) -> None:
    """E1001 against a live server: check-up, results, referral, booking, then the QR codes.

    The advocate-link QR is decoded from a screenshot (zxing-cpp) and its token verified with
    the server's own keys: it names this member.
    """
    import zxingcpp
    from PIL import Image

    from kiosk.cli import build_backend
    from kiosk.settings import KioskSettings
    from onsite_server.services.signing import KeyStore
    from shared.tokens import Purpose, verify

    tmp = Path(tempfile.mkdtemp(prefix="kiosk-live-"))
    settings = KioskSettings(data_dir=tmp / "data", key_dir=tmp / "keys", server_url=server)
    backend = build_backend(settings)
    try:
        backend.pair(server, code)
        deadline = time.monotonic() + 60
        while backend.catalog() is None and time.monotonic() < deadline:
            backend.sync_now()
            time.sleep(0.2)
        assert backend.catalog() is not None, "no catalog after pairing"
        d = _start(backend)
        screen = _sign_in(d)
        assert screen.ids.id_field.text.count("\u2022") == 5  # masked
        d.tap_id("submit")
        assert d.screen().name == "menu", d.app.visit.message
        identity = d.app.visit.identity
        assert identity is not None and identity.online
        d.tap_id("checkup")
        # The demo site asks US units: height as feet, then inches (5 ft 7 in), pounds.
        numbers = {"systolic": "146", "diastolic": "92", "height_in": "5", "weight_lb": "154",
                   "age": "45"}
        choices = {"sex": "male"}
        offered = []
        for _step in range(80):
            if d.screen().name == "offer":
                offered.append(d.app.visit.journey.offer)
                d.tap_id("accept")
                continue
            if d.screen().name != "question":
                break
            journey = d.app.visit.journey
            link, spec = journey.question, journey.question_spec()
            if spec.get("type") in ("integer", "decimal"):
                _type_on(d, d.screen().ids.numpad, numbers[link])
                if link == "systolic":
                    d.screenshot(out / "identified-number-entry-en.png")
                d.tap_id("enter")
                if link == "height_in":
                    _type_on(d, d.screen().ids.numpad, "7")  # the inches
                    d.tap_id("enter")
                continue
            values = [v for v, _t in d.app.visit.options()]
            if journey.instrument == "phq2":
                wanted: object = 2  # PHQ-2 = 4, positive: the PHQ-9 is offered
            else:
                wanted = choices.get(link, values[0] if False not in values else
                                     link == "family_history")
            d.tap(d.screen().answer_buttons[values.index(wanted)])
        assert d.screen().name == "results", d.screen().name
        assert offered == ["phq9"], offered
        texts = " ".join(c.text for c in d.screen().ids.rows.children)
        assert "measure again" in texts  # 146/92: stage 2, re-measure advice
        d.tap_id("next")
        assert d.screen().name == "referral"
        d.tap_id("phone")
        d.tap_id("morning")
        d.tap_id("agree")
        pad = d.screen().phone_pad
        for ch in "5550100142":
            d.tap_text(ch, within=pad.ids.pad)
        d.screenshot(out / "identified-phone-pad-en.png")
        d.tap(pad.ids.save)
        assert d.screen().phone_pad is None
        assert "will contact you" in d.screen().message, d.screen().message
        d.tap_id("next")
        d.tap_id("booking")
        assert d.screen().name == "booking" and not d.screen().offline
        event = d.app.visit.events()[0]
        d.tap_text(event.title["en"], within=d.screen().ids.entries)
        slot = next(s for s in d.app.visit.slots() if s.seats_left > 0)
        d.tap(next(b for b in d.screen().ids.entries.children
                   if getattr(b, "slot_id", None) == slot.id))
        # Nothing is booked until the member says yes to what, when and where.
        assert d.screen().name == "booking" and d.app.visit.booked is None
        assert d.screen().heading == "Book this time?"
        d.screenshot(out / "identified-booking-confirm-en.png")
        from kivy.core.window import Window
        for button in (d.screen().confirm_button, d.screen().keep_button):
            top = button.to_window(button.x, button.top)[1]
            assert top <= Window.height * 2 / 3 + 1, f"{button.text!r} sits in the top third"
        d.tap_text("Yes, book it", within=d.screen().ids.entries)
        assert d.screen().name == "qr", d.app.visit.message
        kinds = [getattr(c, "kind", "summary") for c in d.screen().ids.codes.children][::-1]
        assert kinds == ["summary", "ticket", "advocate", "vcard"], kinds
        shot = d.screenshot(out / "identified-qr-en.png")
        decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(shot),
                                                          formats=zxingcpp.BarcodeFormat.QRCode)]
        links = [t for t in decoded if "/connect/" in t]
        assert links, decoded
        token = links[0].rsplit("/connect/", 1)[1]
        said = verify(token, KeyStore(Path(instance) / "keys").ring(),
                      purpose=Purpose.ADVOCATE_LINK)
        # The parent test checks that this subject is E1001's member id in the server's data.
        print(f"advocate-link subject: {said.fields['subject']}", file=sys.__stdout__)
        # The contact card comes last, below the booking's ticket and the link: scroll to it.
        d.screen().ids.codes.parent.scroll_y = 0
        d.pump(4)
        lower = d.screenshot(out / "identified-qr-scrolled-en.png")
        decoded += [r.text for r in zxingcpp.read_barcodes(Image.open(lower),
                                                           formats=zxingcpp.BarcodeFormat.QRCode)]
        assert any(t.startswith("BEGIN:VCARD") for t in decoded), decoded
        d.tap_id("done")
        assert d.screen().name == "done"
        d.tap_id("end")
        assert not d.app.visit.holds_member_data()
        deadline = time.monotonic() + 60
        while backend.status().outbox_depth and time.monotonic() < deadline:
            backend.sync_now()
            d.pump(1)
            time.sleep(0.1)
        assert backend.status().outbox_depth == 0, backend.status()
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()


# Results screens for each band, a crisis and a short screener with its full form (issue 15):
# (name, the screeners, answers by question, default answer).
RESULT_CASES: tuple[tuple[str, list[str], dict[str, object], object], ...] = (
    ("healthy", ["phq9", "blood_pressure", "bmi"],
     {"systolic": 115, "diastolic": 75, "height_cm": 175, "weight_kg": 70}, 0),
    ("watch", ["phq9", "blood_pressure", "bmi"],
     {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "systolic": 125, "diastolic": 78,
      "height_cm": 170, "weight_kg": 80}, 0),
    ("act", ["phq9", "blood_pressure", "bmi"],
     {"1": 2, "2": 2, "3": 2, "4": 2, "5": 2, "6": 2, "systolic": 152, "diastolic": 96,
      "height_cm": 165, "weight_kg": 95}, 0),
    ("crisis", ["phq9"], {"9": 1}, 0),
    ("follow-up", ["phq2"], {"1": 2, "2": 2, "3": 1, "4": 1, "5": 1}, 0),
)


def results_screens(out: Path) -> None:
    """The results screen for each band, a crisis and a PHQ-2 followed by its PHQ-9, in
    English and Spanish, at 1080x1920: screenshots for a person to look at."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    clock = FakeClock()
    d = _start(fake, clock=clock)
    visit = d.app.visit
    for name, plan, answers, default in RESULT_CASES:
        for language in ("en", "es"):
            visit.fire("start")
            visit.fire("accept")
            visit.anonymous()
            visit.journey.language = language
            visit.journey.begin(plan, clock.now)
            visit.journey.set_units("metric")
            for _step in range(60):
                if visit.screen == "question":
                    visit.answer(answers.get(visit.journey.question, default))
                elif visit.screen == "offer":
                    visit.accept_offer()
                elif visit.screen == "crisis":
                    visit.close_crisis(confirm=False)
                    clock.now += 5
                    visit.close_crisis(confirm=True)
                else:
                    break
            fake.depth = 0  # sent: staff were told
            d.app.sync()
            d.pump(4)
            assert d.screen().name == "results", d.screen().name
            text = " ".join(w.text for w in d.screen().ids.rows.children)
            if name == "crisis":
                assert "988" in text and "911" in text
                cards = list(reversed(d.screen().ids.rows.children))
                assert "988" in cards[0].text, "the results open with the crisis"
            if name == "follow-up":  # the PHQ-9 only, not the PHQ-2 that led to it
                assert "PHQ-9" in text and "PHQ-2" not in text, text
            if name == "healthy":
                assert "988" not in text and "keep doing" not in text.lower()
            d.screenshot(out / f"results-{name}-{language}.png")
            if name == "crisis":
                d.app.do(d.app.visit.results.after_results)  # anonymous: the menu
                d.app.do(d.app.visit.go.finish)
                assert d.screen().name == "done" and "988" in d.screen().ids.crisis_line.text
                d.screenshot(out / f"done-after-crisis-{language}.png")
            visit.end()
            d.app.sync()
            d.pump(2)


def _new_york_backend() -> Any:
    """The fake, at a New York site with its event in Room B and a Spanish title."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    catalog = fake._catalog
    event = catalog.events[0].model_copy(update={
        "title": {"en": "Flu shot clinic", "es": "Vacunas contra la gripe"},
        "location": "Room B"})
    fake._catalog = catalog.model_copy(update={
        "site": catalog.site.model_copy(update={"timezone": "America/New_York"}),
        "events": [event]})
    return fake


def _in_language(d: Any, language: str) -> None:
    if d.app.visit.language != language:
        d.tap(d.screen().ids.footer.ids.language)
    assert d.app.visit.language == language


def booking_times(out: Path) -> None:
    """Every booked time on the site's clock, with weekday, date, place; ticket first on QR."""
    from kivy.core.window import Window

    fake = _new_york_backend()
    d = _start(fake)
    nbsp = "\u202f"
    # The fake's first slot starts 15:00 UTC on Thursday 3 December: 10:00 in New York.
    en_when = f"Thu, Dec 3 \u00b7 10:00{nbsp}AM"
    es_when = f"jue, 3 de dic \u00b7 10:00{nbsp}a.m."
    _sign_in(d)
    d.tap_id("submit")
    assert d.screen().name == "menu"
    _in_language(d, "en")
    d.tap_id("booking")
    d.tap_text("Flu shot clinic", within=d.screen().ids.entries)
    slots = [b for b in d.screen().ids.entries.children if getattr(b, "slot_id", None)][::-1]
    assert slots[0].text.startswith(en_when), slots[0].text
    assert "15:00" not in slots[0].text and "2026-12-03" not in slots[0].text
    d.tap(slots[0])
    said = " ".join(getattr(w, "text", "") for w in d.screen().ids.entries.children)
    assert f"{en_when} \u00b7 Room B" in said, said
    d.tap(d.screen().confirm_button)
    assert d.screen().name == "qr"
    codes = d.screen().ids.codes.children[::-1]
    summary, ticket = codes[0], codes[1]
    assert getattr(ticket, "kind", None) == "ticket", [getattr(c, "kind", "") for c in codes]
    assert "You are booked" in summary.text and "Flu shot clinic" in summary.text
    assert f"{en_when} \u00b7 Room B" in summary.text, summary.text
    # Above the fold: the summary and the whole ticket code show without scrolling.
    bottom = ticket.to_window(ticket.x, ticket.y)[1]
    top = summary.to_window(summary.x, summary.top)[1]
    assert bottom >= 0 and top <= Window.height, (bottom, top)
    d.screenshot(out / "booking-qr-summary-en.png")
    _end_session(d)
    assert d.screen().name == "attract"
    # The next visit, in Spanish: the booking list and the cancel question say the same time.
    _sign_in(d)
    d.tap_id("submit")
    _in_language(d, "es")
    d.tap_id("booking")
    listed = " ".join(getattr(w, "text", "") for w in d.screen().ids.entries.children)
    assert f"Vacunas contra la gripe\n{es_when} \u00b7 Room B" in listed, listed
    assert "15:00" not in listed
    d.screenshot(out / "booking-list-es.png")
    d.tap_text("Cancelarla", within=d.screen().ids.entries)
    said = " ".join(getattr(w, "text", "") for w in d.screen().ids.entries.children)
    assert f"{es_when} \u00b7 Room B" in said, said
    d.screenshot(out / "booking-cancel-es.png")
    d.tap(d.screen().keep_button)
    _end_session(d)


def sign_in_honestly(out: Path) -> None:
    """A wrong or impossible birth date keeps the id; "Signed in as Ana"; offline says so."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    d = _start(fake)
    screen = _sign_in(d)
    # Shown on request, masked again on the second tap.
    assert "E1001" not in screen.ids.id_field.text
    d.tap_id("show_id")
    assert screen.ids.id_field.text == "E1001"
    d.tap_id("show_dob")
    assert screen.ids.dob_field.text == "03/14/1985"
    d.screenshot(out / "sign-in-shown-en.png")
    d.tap_id("show_id")
    d.tap_id("show_dob")
    assert "E1001" not in screen.ids.id_field.text and "14" not in screen.ids.dob_field.text
    # An impossible date (month 13): the id stays, the birth date is asked again.
    _type_on(d, screen.ids.keypad, "")
    for _ in range(8):
        d.tap_text(tr_("Delete"), within=screen.ids.keypad)
    _type_on(d, screen.ids.keypad, "13451990")
    d.tap_id("submit")
    assert d.screen().name == "identify"
    assert screen.typed_id == "E1001" and screen.typed_dob == "" and screen.field == "dob"
    assert "month, day, year" in screen.message
    # A date that does not match: the same; then the right one signs in and the error is gone.
    _type_on(d, screen.ids.keypad, "03151985")
    d.tap_id("submit")
    assert d.screen().name == "identify" and "could not find you" in screen.message
    assert screen.typed_id == "E1001"
    d.screenshot(out / "sign-in-not-found-keeps-id-en.png")
    _type_on(d, screen.ids.keypad, "03141985")
    d.tap_id("submit")
    menu = d.screen()
    assert menu.name == "menu"
    assert menu.ids.signed_in.text == "Signed in as Ana", menu.ids.signed_in.text
    assert menu.message == "" and not menu.ask_contact
    d.screenshot(out / "menu-signed-in-en.png")
    d.tap(menu.ids.footer.ids.language)
    assert menu.ids.signed_in.text == "Sesión iniciada: Ana"
    d.screenshot(out / "menu-signed-in-es.png")
    _end_session(d)
    # Offline: nothing is checked yet, and the member may leave a number for staff.
    fake.online = False
    _sign_in(d)
    d.tap_id("submit")
    menu = d.screen()
    assert menu.name == "menu"
    assert menu.ids.signed_in.text == "Signed in; not checked yet"
    assert "could not check" in menu.message and "reach your advocate" in menu.message
    assert menu.ask_contact and menu.ids.claim_phone.opacity == 1
    d.screenshot(out / "menu-offline-claim-en.png")
    d.tap_id("claim_phone")
    pad = menu.phone_pad
    for ch in "5550100142":
        d.tap_text(ch, within=pad.ids.pad)
    d.tap(pad.ids.save)
    assert ("claim_contact", "5550100142") in fake.calls
    assert menu.phone_pad is None and not menu.ask_contact
    assert "staff will use this" in menu.message
    d.tap(menu.ids.footer.ids.language)
    d.screenshot(out / "menu-offline-claim-given-es.png")
    _end_session(d)
    _sign_in(d)  # a new visit starts in English: the offer, before a contact is left, in Spanish
    d.tap(d.screen().ids.footer.ids.language)
    d.tap_id("submit")
    assert d.screen().ask_contact
    d.screenshot(out / "menu-offline-claim-es.png")


def setup_after_cli_pairing(out: Path) -> None:
    """Paired from the command line, no PIN yet: the set-up asks the PIN only; Pair again is
    empty, with its own title."""
    from tests.kiosk.ui.fakes import FakeBackend

    d = _start(FakeBackend(paired=True), pin=None)
    screen = d.screen()
    assert screen.name == "setup" and screen.pin_only
    assert screen.ids.title.text == "Choose an admin PIN"
    assert screen.ids.url.disabled and screen.ids.code.disabled and screen.ids.code.height == 0
    d.screenshot(out / "setup-pin-only-en.png")
    screen.ids.pin.text = "12"
    d.tap_id("pair")
    assert d.screen().name == "setup" and "4 to 8" in screen.message
    screen.ids.pin.text = "1357"
    d.tap_id("pair")
    assert d.screen().name == "attract"

    def pair_again() -> Any:
        for _ in range(5):
            d.tap_id("corner")
        for ch in "1357":
            d.tap_text(ch, within=d.screen().ids.pad)
        d.tap_id("ok")
        assert d.screen().name == "admin"
        d.tap_id("pairing")
        assert d.screen().name == "setup"
        return d.screen()

    screen = pair_again()
    assert not screen.pin_only and screen.ids.title.text == "Pair again"
    assert not screen.ids.code.disabled and screen.ids.pin.text == ""
    screen.ids.code.text, screen.ids.pin.text = "ABCD-EFGH", "2468"  # typed, then left
    d.tap_id("leave")
    assert d.screen().name == "attract"
    screen = pair_again()
    assert (screen.ids.code.text, screen.ids.pin.text) == ("", "")  # nothing old shows again
    d.screenshot(out / "setup-pair-again-en.png")
    d.tap_id("leave")
    d.tap(d.screen().ids.language)
    screen = pair_again()
    assert screen.ids.title.text == "Volver a conectar", screen.ids.title.text
    d.screenshot(out / "setup-pair-again-es.png")


def privacy_and_referral(out: Path) -> None:
    """The privacy notice says what, who, how long and that nothing stays; accepting is a tap.
    The referral's choice is explicit (yes, contact me / no thanks) and says why yes waits."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    d = _start(fake)
    d.tap_id("start")
    privacy = d.screen()
    assert privacy.name == "privacy"
    said = " ".join(privacy.ids[i].text for i in ("collected", "who_sees", "safety", "kept",
                                                   "cleared"))
    for needed in ("blood pressure", "employer never sees", "central advocate system",
                   "we tell staff here", "30 days", "Nothing stays on this kiosk"):
        assert needed in said, needed  # 30: the site's retention, from its catalog
    d.screenshot(out / "privacy-en.png")
    d.tap(privacy.ids.footer.ids.language)
    assert "30 días" in privacy.ids.kept.text, privacy.ids.kept.text
    d.screenshot(out / "privacy-es.png")
    d.tap(privacy.ids.footer.ids.language)
    d.tap_id("accept")
    assert d.screen().name == "identify"
    screen = d.screen()
    _type_on(d, screen.ids.keypad, "E1001")
    d.tap_id("dob_field")
    _type_on(d, screen.ids.keypad, "03141985")
    d.tap_id("submit")
    d.tap_id("single")
    d.tap_text("Generalized Anxiety Disorder scale", within=d.screen().ids.screeners)
    while d.screen().name == "question":
        d.tap_text("Not at all")
    d.tap_id("next")
    referral = d.screen()
    assert referral.name == "referral"
    assert referral.ids.agree.disabled and referral.ids.agree.text == "Yes, contact me"
    assert referral.ids.why_not.text == "To say yes, choose how and when first."
    assert referral.ids.decline.text == "No thanks" and referral.ids.next.disabled
    # The hidden Next takes no room: the choice sits right above the footer.
    gap = referral.ids.decline.parent.y - referral.ids.footer.top
    assert gap <= 2 * referral.children[0].spacing + 1, gap
    d.screenshot(out / "referral-choice-en.png")
    d.tap(referral.ids.footer.ids.language)
    d.screenshot(out / "referral-choice-es.png")
    d.tap(referral.ids.footer.ids.language)
    d.tap_id("phone")
    d.tap_id("morning")
    assert not referral.ids.agree.disabled and referral.ids.why_not.text == ""
    d.tap_id("decline")
    menu = d.screen()
    assert menu.name == "menu" and menu.message == "We will not contact you about this."
    assert ("consent", (False, None, None)) in fake.calls


def end_and_done(out: Path) -> None:
    """End session mid-visit asks first (No keeps the visit); the thank-you screen offers no
    "End session", only a way back to the start."""
    from tests.kiosk.ui.fakes import FakeBackend

    d = _start(FakeBackend())
    _to_menu(d)
    session = d.app.visit.session_id  # a wipe starts a new one
    d.tap(d.screen().ids.footer.ids.end)
    confirm = d.app.end_confirm
    assert confirm is not None and d.screen().name == "menu"
    d.screenshot(out / "end-confirm-en.png")
    d.tap(confirm.ids.keep)
    assert d.app.end_confirm is None and d.screen().name == "menu"
    assert d.app.visit.session_id == session  # nothing was wiped
    _check_footer_filled(d.screen().ids.footer)  # the menu offers no Back
    d.tap(d.screen().ids.footer.ids.language)
    assert d.screen().ids.footer.ids.end.text == "Salir"  # leave, not "finish" or "submit"
    d.tap(d.screen().ids.footer.ids.end)
    d.screenshot(out / "end-confirm-es.png")
    d.tap(d.app.end_confirm.ids.keep)
    d.tap(d.screen().ids.footer.ids.language)
    d.tap_id("finish")
    done = d.screen()
    assert done.name == "done"
    assert done.ids.footer.ids.end.disabled and done.ids.footer.ids.end.opacity == 0
    assert done.ids.end.text == "Back to the start"
    _check_footer_filled(done.ids.footer)
    d.screenshot(out / "done-en.png")
    d.tap(done.ids.footer.ids.language)
    d.screenshot(out / "done-es.png")
    d.tap(done.ids.end)  # no question: the visit is over
    assert d.app.end_confirm is None and d.screen().name == "attract"


def _check_footer_filled(footer: Any) -> None:
    """The footer's shown buttons fill its row: a hidden Back or End leaves no empty slot."""
    shown = sorted((b for b in footer.children if b.opacity > 0), key=lambda b: b.x)
    assert shown and abs(shown[0].x - footer.x) < 2 and abs(shown[-1].right - footer.right) < 2, \
        [(b.text, b.x, b.right) for b in shown] + [(footer.x, footer.right)]


def numbers_us(out: Path) -> None:
    """A US site asks height as feet then inches, and pounds, without a tap on "US"; a metric
    site asks centimetres."""
    from tests.kiosk.ui.fakes import FakeBackend

    fake = FakeBackend()
    assert fake.catalog().settings.units == "imperial"  # the default: US sites
    d = _start(fake)
    _to_menu(d)
    d.tap_id("single")
    d.tap_text("Body mass index", within=d.screen().ids.screeners)
    screen = d.screen()
    assert d.app.visit.journey.question == "height_in" and screen.units == "imperial"
    assert screen.unit == "ft" and "feet, then the inches" in screen.question
    _type_on(d, screen.ids.numpad, "5")
    d.tap_id("enter")
    assert d.app.visit.journey.question == "height_in"  # still height: now the inches
    assert screen.unit == "in" and screen.prefix == "5 ft  "
    _type_on(d, screen.ids.numpad, "6")
    assert screen.ids.number.text == "5 ft  6  in"
    d.screenshot(out / "height-feet-inches-en.png")
    d.tap(screen.ids.footer.ids.language)
    _type_on(d, screen.ids.numpad, "6")  # a language switch keeps the feet, clears the digits
    assert screen.prefix == "5 ft  " and "pulgadas" in screen.question
    d.screenshot(out / "height-feet-inches-es.png")
    d.tap(screen.ids.footer.ids.language)
    _type_on(d, screen.ids.numpad, "6")
    d.tap_id("enter")
    assert d.app.visit.journey.question == "weight_lb"
    _type_on(d, screen.ids.numpad, "150")
    d.tap_id("enter")
    bmi = next(s for s in fake.submitted if s["instrument_id"] == "bmi")
    assert bmi["answers"]["height_in"] == 66 and bmi["answers"]["weight_lb"] == 150
    _end_session(d)
    fake._catalog = fake._catalog.model_copy(update={
        "settings": fake._catalog.settings.model_copy(update={"units": "metric"})})
    _to_menu(d)
    d.tap_id("single")
    d.tap_text("Body mass index", within=d.screen().ids.screeners)
    assert d.app.visit.journey.question == "height_cm" and d.screen().unit == "cm"


def keypad(out: Path) -> None:
    """The one Keypad: its layout, the keys it allows, its maximum length, masking, its
    commands and a screen's own rule; its words follow the language."""
    from kivy.core.window import Window

    from kiosk.ui.keypad import Keypad
    from tests.kiosk.ui.fakes import FakeBackend

    d = _start(FakeBackend())
    pad = Keypad(cols=3, layout=["1", "2", "A", "", "back", "enter", "ABC", ".com"],
                 allowed="12.com", max_length=6, masked=True, size_hint=(None, None),
                 size=(Window.width, Window.height / 2), pos=(0, 0))
    Window.add_widget(pad)
    try:
        entered: list[str] = []
        commands: list[str] = []
        pad.bind(on_enter=lambda _p: entered.append(pad.typed),
                 on_command=lambda _p, key: commands.append(key))
        d.pump(2)
        labels = [getattr(k, "text", "") for k in reversed(pad.children)]
        assert labels == ["1", "2", "A", "", "Delete", "OK", "ABC", ".com"], labels
        for key in ("1", "A", "2"):
            d.tap_key(key, within=pad)
        assert pad.typed == "12" and pad.shown == "\u2022\u2022"  # "A" is not allowed
        d.tap_key(".com", within=pad)
        d.tap_key(".com", within=pad)  # would make 10 characters: refused whole
        assert pad.typed == "12.com", pad.typed
        d.tap_key("Delete", within=pad)
        d.tap_key("OK", within=pad)
        d.tap_key("ABC", within=pad)
        assert entered == ["12.co"] and commands == ["ABC"] and pad.typed == "12.co"
        pad.masked = False
        assert pad.shown == "12.co"
        # A screen's own rule comes first: here, Delete is refused.
        pad.bind(on_key=lambda _p, key: key == "back")
        d.tap_key("Delete", within=pad)
        assert pad.typed == "12.co"
        d.app.toggle_language()
        d.pump(2)
        assert "Borrar" in [getattr(k, "text", "") for k in pad.children]
    finally:
        Window.remove_widget(pad)


def landscape(out: Path) -> None:
    """At 1920x1080 the pages stand in two columns over the footer, everything on screen:
    the sign-in's fields on the left and its keypad on the right, a number question's words
    on the left and its pad on the right; keys and buttons at least 100 px (a one-column
    page scaled to fit the height made them 76-83 px)."""
    from kivy.core.window import Window

    from tests.kiosk.ui.fakes import FakeBackend

    def check_page(screen: Any) -> None:
        page = screen.children[0]
        for child in page.children:
            x, y = child.to_window(child.x, child.y)
            assert x >= -1 and x + child.width <= Window.width + 1, (screen.name, child)
            assert y >= -1 and y + child.height <= Window.height + 1, (screen.name, child)
        footer = screen.ids.footer
        assert footer.height >= 100 and footer.width > Window.width * 0.9, footer.size

    def beside(left: Any, right: Any) -> None:
        lx, _ = left.to_window(left.right, left.y)
        rx, _ = right.to_window(right.x, right.y)
        assert lx <= rx, (left, right)  # side by side, not one above the other

    d = _start(FakeBackend())
    d.tap_id("start")
    d.tap_id("accept")
    screen = d.screen()
    assert screen.name == "identify"
    check_page(screen)
    beside(screen.ids.id_field, screen.ids.keypad)
    assert screen.ids.submit.height >= 100, screen.ids.submit.height
    assert min(k.height for k in screen.ids.keypad.children) >= 100
    d.screenshot(out / "landscape-identify.png")
    _scan_badge(d)
    d.tap_id("anonymous")
    d.tap_id("single")
    d.tap_text("Body mass index", within=d.screen().ids.screeners)
    screen = d.screen()
    assert screen.name == "question" and screen.ids.numpad.height > 0
    check_page(screen)
    beside(screen.ids.question, screen.ids.numpad)
    assert min(k.height for k in screen.ids.numpad.children) >= 100
    d.screenshot(out / "landscape-number.png")


def drawing_held(out: Path) -> None:
    """Drawing held between screenshots (Driver.draw_between_shots, as every journey but the
    tap-guard ones runs): the window's own drawing does not run while taps change the screen,
    a screenshot draws it, and that picture is the one drawing every frame gives, pixel for
    pixel."""
    from kivy.core.window import Window
    from PIL import Image, ImageChops

    from tests.kiosk.ui.fakes import FakeBackend

    d = _start(FakeBackend(online=True))
    assert not d.draw_between_shots, "the runner holds drawing for this journey"
    drawn: list[int] = []
    window_draw = Window.on_draw

    def counted(*args: Any) -> Any:
        drawn.append(1)
        return window_draw(*args)

    Window.on_draw = counted
    d.tap_id("start")
    d.pump(10)
    assert d.screen().name == "privacy"
    assert drawn == [], f"drawn {len(drawn)} times between screenshots"
    held = d.screenshot(out / "drawing-held-privacy.png")
    assert drawn, "the screenshot did not draw the window"
    d.draw_between_shots = True
    before = len(drawn)
    Window.canvas.ask_update()  # Kivy draws a frame only when something asks for it
    d.pump(3)
    assert len(drawn) > before, "drawing every frame drew nothing"
    every = d.screenshot(out / "drawing-every-frame-privacy.png")
    with Image.open(held) as a, Image.open(every) as b:
        assert a.size == b.size == (Window.width, Window.height)
        assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None, \
            "the pictures differ"
        assert len(set(a.convert("L").getdata())) > 10, "the picture is blank"


def tr_(text: str) -> str:
    """The current language's words for a msgid (keys are labelled in the visit's language)."""
    from kiosk.ui.lang import tr

    return str(tr._(text))


JOURNEYS: dict[str, Callable[..., None]] = {
    f.__name__: f for f in (anonymous, accessibility, crisis, idle, admin_lockout, admin_open,
                            first_start, tour, identified, follow_up_and_email,
                            booking_times, sign_in_honestly, setup_after_cli_pairing,
                            privacy_and_referral, end_and_done, numbers_us, results_screens,
                            keypad, landscape, drawing_held)}
# As the member sees it (portrait, or the landscape screen); the rest at half size.
SIZES = {"results_screens": (1080, 1920), "landscape": (1920, 1080)}


def main(argv: list[str]) -> int:
    """Run one journey by name: this module's, or one that scan_journey or version_journey add."""
    return run(JOURNEYS, argv, lambda name: SIZES.get(name, (WIDTH, HEIGHT)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
