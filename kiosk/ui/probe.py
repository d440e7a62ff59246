"""A debug probe: where every button on the glass is, written to a file for OS-level tap tests.

Set ``ONSITE_KIOSK_LAYOUT_FILE`` (KioskSettings.layout_file) and the running kiosk rewrites
that file ten times a second with the screen on show, the question, and each visible
button's text, kv id and box in X11 screen pixels (origin top-left, as ``xdotool`` counts).
A test outside the process can then tap a control by name as a person would, without
guessing coordinates from a screenshot. Off (no file) unless asked for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kivy.core.window import Window
from kivy.uix.button import Button


def layout(app: Any) -> dict[str, Any]:
    """What the glass shows now: screen, question, crisis step and the visible buttons."""
    manager = app.manager
    screen = manager.current_screen if manager is not None else None
    journey = app.visit.journey
    buttons = []
    roots = [screen] if screen is not None else []
    roots += [w for w in Window.children if w is not getattr(app, "root", None)]
    for root in roots:
        names = widget_names(root)
        for widget in root.walk(restrict=True):
            if not isinstance(widget, Button) or widget.opacity <= 0:
                continue
            x, y = widget.to_window(widget.x, widget.y)
            if not (0 <= y + widget.height / 2 <= Window.height):
                continue  # scrolled out of sight
            top = Window.height - (y + widget.height)  # X11 counts from the top
            within, parent = "", widget.parent
            while parent is not None and parent is not root and not within:
                within = names.get(id(parent), "")
                parent = parent.parent
            buttons.append({"id": names.get(id(widget), ""), "within": within,
                            "text": widget.text, "disabled": bool(widget.disabled),
                            "answer": getattr(widget, "answer_value", None),
                            "box": [round(x), round(top), round(widget.width),
                                    round(widget.height)]})
    return {"screen": screen.name if screen is not None else "",
            "question": journey.question if journey.screen == "question" else None,
            "crisis_armed": journey.crisis_close_armed,
            "input_held": app.input_held() > 0,
            "window": [Window.left, Window.top, Window.width, Window.height],
            "buttons": buttons}


def write_layout(app: Any, path: Path) -> None:
    """Replace ``path`` with the current layout (atomically: a reader never sees half)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(layout(app)), encoding="utf-8")
    os.replace(tmp, path)


def widget_names(root: Any) -> dict[int, str]:
    """The kv id of each widget under ``root`` that has one, by ``id()`` of the widget."""
    names = {}
    for widget in root.walk(restrict=True):
        for name, ref in getattr(widget, "ids", {}).items():
            # kv ids are weak proxies: the widget itself is behind __self__.
            names[id(ref.__self__ if hasattr(ref, "__self__") else ref)] = name
    return names
