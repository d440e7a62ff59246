"""The kiosk's two colour themes (the app's colour properties take one or the other)."""

from __future__ import annotations

# Theme colours: the normal theme keeps text at WCAG AA contrast or better; the high-contrast
# theme is white on black with yellow actions (well above AAA).
THEMES: dict[str, dict[str, list[float]]] = {
    "normal": {
        "bg": [0.97, 0.98, 1, 1], "fg": [0.07, 0.09, 0.15, 1], "muted": [0.25, 0.28, 0.35, 1],
        "primary": [0.02, 0.33, 0.6, 1], "text_on_primary": [1, 1, 1, 1],
        "secondary": [0.85, 0.89, 0.95, 1], "text_on_secondary": [0.03, 0.15, 0.32, 1],
        "pressed": [0.55, 0.65, 0.8, 1], "danger": [0.62, 0.1, 0.1, 1],
        "text_on_danger": [1, 1, 1, 1], "warn": [0.55, 0.25, 0.0, 1], "good": [0.1, 0.45, 0.2, 1],
        "field": [1, 1, 1, 1], "outline": [0.3, 0.38, 0.5, 1],
    },
    "high_contrast": {
        "bg": [0, 0, 0, 1], "fg": [1, 1, 1, 1], "muted": [0.9, 0.9, 0.9, 1],
        "primary": [1, 0.85, 0, 1], "text_on_primary": [0, 0, 0, 1],
        "secondary": [0.12, 0.12, 0.12, 1], "text_on_secondary": [1, 1, 1, 1],
        "pressed": [0.5, 0.5, 0.5, 1], "danger": [1, 0.4, 0.4, 1], "text_on_danger": [0, 0, 0, 1],
        "warn": [1, 0.85, 0, 1], "good": [0.5, 1, 0.5, 1], "field": [0.1, 0.1, 0.1, 1],
        "outline": [1, 1, 1, 1],
    },
}
