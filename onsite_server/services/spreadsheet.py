"""The CSV files staff download and open in a spreadsheet: cells never run as formulas, and
names read right in Excel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# What a spreadsheet reads as the start of a formula (OWASP's CSV injection list): a name, an
# event title or a roster's bad value opening with one would run when the file is opened.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Return text that opens like a formula with a quote before it; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_row(cells: Iterable[Any]) -> list[Any]:
    """Return the row with every cell made safe (safe_cell)."""
    return [safe_cell(cell) for cell in cells]


def for_excel(text: str) -> str:
    """Return CSV text that opens with a UTF-8 byte-order mark, as Excel's "CSV UTF-8" does.

    Without the mark, Excel (Windows and Mac) opens a CSV in the system's legacy code page:
    José shows as JosÃ© and an emoji or an Arabic name as noise. Other readers skip the mark.
    """
    return "\ufeff" + text
