"""The CSV files staff open in a spreadsheet: no cell opens like a formula (CSV injection)."""

from __future__ import annotations

import pytest

from onsite_server.services.spreadsheet import FORMULA_START, safe_cell, safe_row

# Pure functions: no database.
pytestmark = pytest.mark.sqlite_only


@pytest.mark.parametrize("start", FORMULA_START)
def test_text_opening_like_a_formula_gets_a_quote(start: str) -> None:
    assert safe_cell(f"{start}HYPERLINK(\"http://x.example\")") == \
        f"'{start}HYPERLINK(\"http://x.example\")"


def test_everything_else_is_left_as_it_is() -> None:
    assert safe_row(["Rosa", "O'Neil", "", 12, -3, None, "a=b", " =1"]) == \
        ["Rosa", "O'Neil", "", 12, -3, None, "a=b", " =1"]

