"""The tour at the kiosk's real sizes, measured: every touch target, every screen (issue 15).

    python -m tests.kiosk.ui.layout_journeys NAME ARTIFACT_DIR

``portrait`` walks the tour at 1080x1920 and ``landscape`` at 1920x1080, both languages, with
a fake online backend. On every screen the tour saves (the pads included: the referral's
email pad is one), each control a finger can tap is measured in window pixels: it must be at
least ``MIN_TARGET`` both ways, lie wholly on the glass, overlap no other control, and hold
its words. What was measured is written as JSON beside the screenshots; the journey fails
listing every control that broke a rule.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kiosk.ui.runner import JOURNEY_TAP_GUARD_MS, run

MIN_TARGET = 100  # px, on the kiosk's own screen (portrait 1080x1920 or landscape 1920x1080)
SIZES = {"portrait": (1080, 1920), "landscape": (1920, 1080)}


def _hidden(widget: Any) -> bool:
    """Folded away (no height or width), or inside something that is."""
    while widget is not None and widget is not widget.parent:
        if widget.opacity <= 0 or widget.width <= 0 or widget.height <= 0:
            return True
        widget = widget.parent
    return False


def _scroller(widget: Any) -> Any:
    from kivy.uix.scrollview import ScrollView

    parent = widget.parent
    while parent is not None and parent is not parent.parent:
        if isinstance(parent, ScrollView):
            return parent
        parent = parent.parent
    return None


def _box(widget: Any) -> tuple[float, float, float, float]:
    x, y = widget.to_window(widget.x, widget.y)
    return x, y, x + widget.width, y + widget.height


def targets(app: Any) -> list[dict[str, Any]]:
    """Every control on the glass a finger can tap: its words, kv id and window box."""
    from kivy.core.window import Window
    from kivy.factory import Factory
    from kivy.uix.button import Button
    from kivy.uix.textinput import TextInput

    from kiosk.ui.probe import widget_names

    # What stands over the screen (the phone and email pads, "End your session?") takes
    # every touch: only its own controls can be reached then.
    over = [w for w in Window.children if w is not app.root]
    roots = over[:1] or [app.manager.current_screen]
    found = []
    for root in roots:
        names = widget_names(root)
        for widget in root.walk(restrict=True):
            if not isinstance(widget, Button | TextInput) or _hidden(widget):
                continue
            scroller = _scroller(widget)
            box = _box(widget)
            if scroller is not None:
                sx0, sy0, sx1, sy1 = _box(scroller)
                if box[3] <= sy0 or box[1] >= sy1:
                    continue  # scrolled out of sight: it is measured where it shows
            found.append({"id": names.get(id(widget), ""), "text": widget.text[:40],
                          "box": [round(v) for v in box], "scrolled": scroller is not None,
                          "clipped": _clipped(widget),
                          "speaker": isinstance(widget, Factory.SpeakerButton)})
    return found


def _clipped(widget: Any) -> bool:
    """Whether a button's words are larger than the button (drawn over its edges)."""
    from kivy.uix.button import Button

    if not isinstance(widget, Button) or not widget.text:
        return False
    widget.texture_update()
    tw, th = widget.texture_size
    return bool(tw > widget.width + 1 or th > widget.height + 1)


def problems(screen: str, found: list[dict[str, Any]], width: int,
             height: int) -> list[str]:
    """What breaks the rules on one screen, in words."""
    out = []
    for t in found:
        x0, y0, x1, y1 = t["box"]
        what = f"{screen}: {t['id'] or repr(t['text'])}"
        if min(x1 - x0, y1 - y0) < MIN_TARGET:
            out.append(f"{what} is {x1 - x0}x{y1 - y0} px (under {MIN_TARGET})")
        if not t["scrolled"] and (x0 < -1 or y0 < -1 or x1 > width + 1 or y1 > height + 1):
            out.append(f"{what} is off the screen at {t['box']}")
        if t["clipped"]:
            out.append(f"{what}: its words do not fit")
    if not any(t["speaker"] for t in found):
        out.append(f"{screen}: no speaker button within reach")
    for i, a in enumerate(found):
        for b in found[i + 1:]:
            ax0, ay0, ax1, ay1 = a["box"]
            bx0, by0, bx1, by1 = b["box"]
            if min(ax1, bx1) - max(ax0, bx0) > 1 and min(ay1, by1) - max(ay0, by0) > 1:
                out.append(f"{screen}: {a['id'] or a['text']!r} overlaps "
                           f"{b['id'] or b['text']!r}")
    return out


def measured_tour(out: Path, orientation: str) -> None:
    """The tour at a real size; every saved screen measured."""
    from kiosk.cli import _walk
    from kiosk.settings import KioskSettings
    from kiosk.ui import tour as tour_module
    from tests.kiosk.ui.fakes import FakeBackend

    width, height = SIZES[orientation]
    report: dict[str, Any] = {}
    broken: list[str] = []

    class MeasuringTour(tour_module.Tour):
        """The tour, measuring each screen it saves."""

        def shot(self, name: str | None = None) -> None:
            """Save the screen, then measure its controls."""
            name = name or self.d.screen().name
            if name in self.shown:
                return
            super().shot(name)
            key = f"{self.language}-{name}"
            found = targets(self.d.app)
            sizes = [min(t["box"][2] - t["box"][0], t["box"][3] - t["box"][1]) for t in found]
            report[key] = {"min_px": min(sizes) if sizes else None, "targets": found}
            broken.extend(problems(key, found, width, height))

    settings = KioskSettings(width=width, height=height, tap_guard_ms=JOURNEY_TAP_GUARD_MS,
                             data_dir=Path(tempfile.mkdtemp(prefix="kiosk-layout-")))
    fake = FakeBackend(online=True)
    real_tour = tour_module.Tour
    tour_module.Tour = MeasuringTour  # type: ignore[misc]
    try:
        assert _walk(out, settings, fake, online=True) == 0, "the tour failed"
    finally:
        tour_module.Tour = real_tour  # type: ignore[misc]
    (out / "targets.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps({k: v["min_px"] for k, v in report.items()}), file=sys.__stdout__)
    assert len(report) > 30, sorted(report)
    assert not broken, "\n".join(broken)


def pads(out: Path, orientation: str) -> None:
    """The phone and email pads stand over the footer: each has its own speaker button,
    within reach and as large as any target; it reads the pad (never what is typed) in the
    member's language, and the pad stays open; a key tapped then stops the reading."""
    from tests.kiosk.ui.journeys import _sign_in
    from tests.kiosk.ui.read_aloud_journeys import _heard, _start

    width, height = SIZES[orientation]
    d, sinks = _start()
    reader = d.app.read_aloud
    _sign_in(d)
    d.tap_id("submit")
    assert d.screen().name == "menu" and d.app.visit.identified, d.app.visit.message
    # Three questions, then the results and the referral.
    d.app.do(d.app.visit.questions.single, "audit_c")
    while d.screen().name == "question":
        d.tap(d.screen().answer_buttons[-1])
    assert d.screen().name == "results", d.screen().name
    d.tap_id("next")
    assert d.screen().name == "referral", d.screen().name
    for language, method, heading in (("en", "phone", "Your phone number, with its area code"),
                                      ("es", "email", "Su correo electrónico")):
        referral = d.screen()
        if d.app.visit.language != language:
            d.tap(referral.ids.footer.ids.language)
        for choice in (method, "morning"):
            if referral.ids[choice].state != "down":
                d.tap_id(choice)
        d.tap_id("agree")
        pad = getattr(referral, f"{method}_pad")
        assert pad is not None and pad.parent is not None, "the pad did not open"
        d.pump(3)
        found = targets(d.app)
        d.screenshot(out / f"pad-{method}-{orientation}-{language}.png")
        broken = problems(f"{language}-{method}_pad", found, width, height)
        assert not broken, "\n".join(broken)
        speaker = pad.ids.speaker
        if not d.app.visit.read_aloud:
            d.tap(speaker)  # read-aloud off: the pad's speaker reads the pad
        # else read-aloud is on for this visit: the pad is read as it opens, without a tap.
        heard = len(sinks.made)
        _heard(d, sinks, heard)
        said = reader.speaker.last
        assert said.language == language and said.sentences[0] == heading, said
        assert reader.speaking and pad.parent is not None and pad.typed == ""
        d.screenshot(out / f"pad-{method}-{orientation}-{language}-speaking.png")
        keys = pad.ids.pad if method == "phone" else pad.ids.keyboard
        d.tap_key("5", within=keys)  # a tap elsewhere: the speech stops, the key types
        assert not reader.speaking and pad.typed == "5"
        d.tap(pad.ids.cancel)
        assert getattr(referral, f"{method}_pad") is None
    print(json.dumps({"pads": orientation, "utterances": len(sinks.made)}), file=sys.__stdout__)


JOURNEYS: dict[str, Callable[[Path], None]] = {
    "portrait": lambda out: measured_tour(out, "portrait"),
    "landscape": lambda out: measured_tour(out, "landscape"),
    "pads_portrait": lambda out: pads(out, "portrait"),
    "pads_landscape": lambda out: pads(out, "landscape"),
}


if __name__ == "__main__":
    sys.exit(run(JOURNEYS, sys.argv[1:], lambda name: SIZES[name.removeprefix("pads_")]))
