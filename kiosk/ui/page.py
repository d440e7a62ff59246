"""Page: every screen's layout, one column in portrait and side by side in landscape.

In portrait (1080x1920) a page is a vertical BoxLayout, as wide as the window. A landscape
screen (1920x1080) is too short for that column at a size a finger can use: scaled to fit,
buttons and keys came out at 76-83 px, under the 100 px minimum. So in landscape the page
spans the window and its children stand in two columns over the footer:

- a child whose ``page_side`` is ``"right"`` goes in the right column (keypads, answers,
  the actions), every other child in the left one (titles, words, fields), in kv order;
  when nothing in a column stretches, the left one starts at the top and the right one
  sits at the bottom, within reach;
- the child whose ``page_side`` is ``"bottom"`` (the Footer) spans the page's width below;
- a page with nothing on the right is one centred column, at most ``SINGLE_WIDTH`` times
  the window's height wide (lines as wide as the screen are hard to read), footer below.

Within a column, children of fixed height keep it and the rest share what is left, as in a
BoxLayout.
"""

from __future__ import annotations

from typing import Any

from kivy.factory import Factory
from kivy.properties import BooleanProperty
from kivy.uix.boxlayout import BoxLayout

SINGLE_WIDTH = 1.25  # a one-column landscape page: at most this times the window's height


def side(widget: Any) -> str:
    """Where a page's child stands in landscape: "left", "right" or "bottom"."""
    return getattr(widget, "page_side", "") or "left"


class Page(BoxLayout):  # type: ignore[misc]
    """A screen's content: a column in portrait, two columns and the footer in landscape."""

    landscape = BooleanProperty(False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fbind("landscape", self._trigger_layout)

    def do_layout(self, *args: Any) -> None:
        """BoxLayout's in portrait; the columns in landscape."""
        if not self.landscape or self.orientation != "vertical":
            super().do_layout(*args)
            return
        pad_left, pad_top, pad_right, pad_bottom = self.padding
        gap = self.spacing
        children = list(reversed(self.children))  # top to bottom, as written in kv
        bottom = [c for c in children if side(c) == "bottom"]
        right = [c for c in children if side(c) == "right"]
        left = [c for c in children if side(c) == "left"]
        x0, x1 = self.x + pad_left, self.right - pad_right
        y = self.y + pad_bottom
        for child in reversed(bottom):
            child.width, child.x, child.y = x1 - x0, x0, y
            y += child.height + gap
        top = self.top - pad_top
        if right:
            middle = (x0 + x1) / 2
            self._column(left, x0, middle - gap, y, top, sink=False)
            self._column(right, middle + gap, x1, y, top, sink=True)
        else:
            width = min(x1 - x0, self.height * SINGLE_WIDTH)
            centre = (x0 + x1) / 2
            self._column(left, centre - width / 2, centre + width / 2, y, top, sink=False)

    def _column(self, children: list[Any], x0: float, x1: float, y0: float, y1: float, *,
                sink: bool) -> None:
        """Lay ``children`` out top to bottom between x0..x1 and y0..y1."""
        gap = self.spacing
        fixed = sum(c.height for c in children if c.size_hint_y is None)
        weights = sum(c.size_hint_y for c in children if c.size_hint_y is not None)
        used = fixed + gap * max(0, len(children) - 1)
        free = max(0.0, (y1 - y0) - used)
        # When nothing stretches, the words start at the top and the controls (``sink``)
        # sit at the bottom, within reach, the free space above them.
        y = y0 + used if sink and not weights else y1
        for child in children:
            if child.size_hint_y is not None:
                child.height = free * child.size_hint_y / weights
            width = x1 - x0
            if child.size_hint_x is not None:
                child.width = width * child.size_hint_x
            else:
                child.width = min(child.width, width)
            child.x = x0 + (width - child.width) / 2
            child.top = y
            y -= child.height + gap


Factory.register("Page", cls=Page)
