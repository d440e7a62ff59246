"""Server-side SVG bar charts for reports: readable at a glance, every value written as text.

Hand-built rather than a chart library: a horizontal bar chart is a few rectangles, and doing it
here keeps full control of what matters for a report that hides small cells: a suppressed bar
is drawn as a hatched, outlined box with the words "suppressed" next to it (never told apart by
colour alone), each bar carries its number, and the chart has a title and a text description
for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup
from markupsafe import escape as _escape

BAR = "#1f4e79"  # dark blue on white: 9.4:1 contrast, well above WCAG AA's 3:1 for graphics
TEXT = "#1a1a1a"
MUTED = "#595959"  # 7:1 on white
ROW = 46
LABEL_SIZE = 15
VALUE_SIZE = 14


def escape(text: object) -> str:
    """Escape for SVG text and attributes, as a plain str (a Markup operand would escape the
    other side of every ``+``)."""
    return str(_escape(text))


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value (None when suppressed) and the text written beside it."""

    label: str
    value: int | None
    text: str


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], *, scale: int | None = None,
              width: int = 640, description: str = "") -> Markup:
    """A horizontal bar chart as inline SVG; ``scale`` is the value of a full-width bar."""
    top = 8
    height = top + ROW * max(1, len(bars)) + 8
    biggest = max([scale or 0, *(b.value or 0 for b in bars)]) or 1
    # Room on the right for the value text, so the longest bar never runs into it.
    track = width - 200
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d" '
        f'font-family="system-ui, sans-serif">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">'
        + escape(" ".join(filter(None, [description, "; ".join(
            f"{b.label}: {b.text}" for b in bars)]))) + "</desc>",
        '<defs><pattern id="' + escape(chart_id) + '-hatch" width="8" height="8" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<line x1="4" y1="0" x2="4" y2="8" stroke="{MUTED}" stroke-width="3"/></pattern></defs>',
    ]
    if not bars:
        parts.append(f'<text x="0" y="{top + 22}" font-size="{LABEL_SIZE}" fill="{MUTED}">'
                     f'{escape(description)}</text>')
    for i, bar in enumerate(bars):
        y = top + ROW * i
        parts.append(f'<text x="0" y="{y + 15}" font-size="{LABEL_SIZE}" fill="{TEXT}">'
                     f'{escape(bar.label)}</text>')
        bar_y = y + 22
        if bar.value is None:
            box = 56
            parts.append(f'<rect x="0" y="{bar_y}" width="{box}" height="16" '
                         f'fill="url(#{escape(chart_id)}-hatch)" stroke="{TEXT}" '
                         'stroke-dasharray="4 2"/>')
            parts.append(f'<text x="{box + 8}" y="{bar_y + 13}" font-size="{VALUE_SIZE}" '
                         f'fill="{TEXT}" font-style="italic">{escape(bar.text)}</text>')
            continue
        length = max(2.0, track * bar.value / biggest) if bar.value else 0.0
        parts.append(f'<rect x="0" y="{bar_y}" width="{length:.1f}" height="16" fill="{BAR}"/>')
        parts.append(f'<text x="{length + 8:.1f}" y="{bar_y + 13}" font-size="{VALUE_SIZE}" '
                     f'fill="{TEXT}">{escape(bar.text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
