"""Roster files as spreadsheets really save them: imported right, or refused saying what to do."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from onsite_server.cli import main
from onsite_server.db import get_db
from onsite_server.models import Member
from onsite_server.services.roster_file import RosterFileError, decode_roster

from ..helpers import gen_site

HEADER = ["member_id", "employee_id", "badge_id", "first_name", "last_name", "birth_date",
          "language"]
ROWS = [["M-1", "E1", "B1", "José", "Muñoz", "1980-01-02", "es"],
        ["M-2", "E2", "", "Zoë “Zo”", "O’Brien–Smith", "1975-05-06", "en"]]
NAMES = {"E1": ("José", "Muñoz"), "E2": ("Zoë “Zo”", "O’Brien–Smith")}


def _text(rows: list[list[str]], sep: str = ",", end: str = "\r\n") -> str:
    return end.join(sep.join(row) for row in rows) + end


@pytest.fixture
def employer(app: Any) -> str:
    """The slug of an employer with a site."""
    with get_db(app).transaction() as session:
        site = gen_site(session, "files-site")
        return f"emp-{site.slug}"


def _import(app: Any, runner: Any, path: Path, employer: str, *args: str) -> Any:
    return runner.invoke(main, ["import-roster", str(path), "--employer", employer, *args],
                         obj={"app": app})


def _names(app: Any) -> dict[str, tuple[str, str]]:
    with get_db(app).transaction() as session:
        return {m.employee_id: (m.first_name, m.last_name)
                for m in session.scalars(select(Member))}


# Each as the program writes it (Excel for Windows and Mac, LibreOffice, an HR system).
SAVED_AS = {
    "excel csv utf-8": codecs.BOM_UTF8 + _text([HEADER, *ROWS]).encode(),
    "utf-8 without a mark": _text([HEADER, *ROWS]).encode(),
    "excel unicode text": codecs.BOM_UTF16_LE
    + _text([HEADER, *ROWS], sep="\t").encode("utf-16-le"),
    "utf-16 big-endian with a mark": codecs.BOM_UTF16_BE
    + _text([HEADER, *ROWS], sep="\t").encode("utf-16-be"),
    "european excel, semicolons": codecs.BOM_UTF8
    + _text([HEADER, *ROWS], sep=";").encode(),
    "mac classic line ends": _text([HEADER, *ROWS], end="\r").encode(),
    "trailing empty columns and rows": _text(
        [[*HEADER, "", ""], *[[*r, "", ""] for r in ROWS], [""] * 9, [""] * 9]).encode(),
    "empty cells past the header": _text([HEADER, *[[*r, "", ""] for r in ROWS]]).encode(),
    "headers as people type them": _text(
        [["Member ID", " Employee-Id ", "BADGE_ID", "First Name", "last name", "Birth Date",
          "Language"], *ROWS]).encode(),
    "leading blank line, columns in another order": _text(
        [[], [HEADER[i] for i in (6, 5, 4, 3, 2, 1, 0)],
         *[[r[i] for i in (6, 5, 4, 3, 2, 1, 0)] for r in ROWS]], sep=";").encode(),
}


@pytest.mark.parametrize("raw", SAVED_AS.values(), ids=SAVED_AS.keys())
def test_a_roster_saved_as_spreadsheets_save_it_is_imported_with_its_names_intact(
        app: Any, runner: Any, tmp_path: Path, employer: str, raw: bytes) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(raw)
    result = _import(app, runner, path, employer)
    assert result.exit_code == 0, result.output
    assert _names(app) == NAMES


REFUSED = {
    "excel plain csv on windows (cp1252)": (
        _text([HEADER, *ROWS]).encode("cp1252"),
        "row 2, first_name: the file is not UTF-8 text"),
    "mac roman": (
        _text([HEADER, ["M-9", "E9", "", "Ann", "Bøe", "1980-01-02", "en"]],
              end="\r").encode("mac_roman"),
        "row 2, last_name: the file is not UTF-8 text"),
    "an xlsx renamed .csv": (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)),
                             "the file is an Excel workbook (.xlsx)"),
    "a png renamed .csv": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "the file is a PNG image"),
    "binary with NULs": (b"\x00\x01\x02\x03" * 50, "the file holds binary data"),
    "semicolons with a repeated column": (
        _text([[*HEADER, "first_name"], [*ROWS[0], "Jo"]], sep=";").encode(),
        "row 1: column(s) repeated: first_name"),
}


@pytest.mark.parametrize(("raw", "message"), REFUSED.values(), ids=REFUSED.keys())
@pytest.mark.sqlite_only
def test_a_file_that_cannot_be_read_right_is_refused_saying_where_and_what_to_do(
        app: Any, runner: Any, tmp_path: Path, employer: str, raw: bytes,
        message: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(raw)
    result = _import(app, runner, path, employer)
    assert result.exit_code == 1
    assert message in result.stderr
    if "encoding" not in message and "repeated" not in message:
        assert "CSV UTF-8" in result.stderr  # what to do
    assert "Traceback" not in result.output
    assert _names(app) == {}


def test_garbled_names_are_refused_not_stored(app: Any, runner: Any, tmp_path: Path,
                                              employer: str) -> None:
    """A UTF-8 file opened as Windows-1252 and saved again as CSV UTF-8: José is JosÃ©."""
    garbled = [[cell.encode().decode("cp1252") for cell in row] for row in ROWS[:1]]
    path = tmp_path / "roster.csv"
    path.write_bytes(codecs.BOM_UTF8 + _text([HEADER, *garbled, ROWS[1]]).encode())
    result = _import(app, runner, path, employer, "--partial")
    assert result.exit_code == 0, result.output
    assert "row 2, first_name: looks garbled" in result.stderr
    assert "row 2, last_name: looks garbled" in result.stderr
    assert "MuÃ±oz" not in result.stderr  # the report names rows and columns, not members
    assert _names(app) == {"E2": NAMES["E2"]}


@pytest.mark.sqlite_only
def test_rows_are_numbered_as_the_spreadsheet_shows_them(app: Any, runner: Any,
                                                         tmp_path: Path, employer: str) -> None:
    """A quoted cell with a line break is one spreadsheet row: the errors after it name the
    rows a coordinator sees, not the file's lines."""
    path = tmp_path / "roster.csv"
    path.write_text(",".join(HEADER) + '\r\nM-1,E1,,"Ann, Jr.","Two\nLines",1980-01-02,en\r\n'
                    "M-2,E2,,Bo,Smith,1980-02-30,en\r\n", encoding="utf-8")
    result = _import(app, runner, path, employer)
    assert result.exit_code == 1
    assert "row 2, last_name: contains control characters" in result.stderr
    assert "row 3, birth_date: is not a real date" in result.stderr


@pytest.mark.sqlite_only
def test_a_value_under_a_column_with_no_name_is_a_row_error(app: Any, runner: Any,
                                                            tmp_path: Path,
                                                            employer: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(_text([[*HEADER, ""], [*ROWS[0], ""], [*ROWS[1], "note"]]),
                    encoding="utf-8")
    result = _import(app, runner, path, employer)
    assert result.exit_code == 1
    assert "row 3, *: column 8 has no name in the header row but holds a value" \
        in result.stderr
    assert _names(app) == {}


def test_decoding_keeps_utf8_and_names_the_cell_it_cannot_read() -> None:
    assert decode_roster(codecs.BOM_UTF8 + b"a,b\r\n") == "a,b\r\n"
    ascii_rows = _text([HEADER, ["M-1", "E1", "", "A", "B", "1980-01-02", "en"]]).encode()
    with pytest.raises(RosterFileError, match=r"row 3, column 9: the file is not UTF-8"):
        decode_roster(ascii_rows + b"M-2,E2,,A,B,1980-01-02,en,,\xd1\r\n")


@pytest.mark.sqlite_only
def test_numbers_and_dates_a_spreadsheet_rewrote_are_row_errors_saying_how_to_fix(
        app: Any, runner: Any, tmp_path: Path, employer: str) -> None:
    """Excel saves a 12-digit badge as 1.23457E+11 and a date as 1/2/1980: refused, not stored
    (the badge's digits are gone; the date could be January 2 or February 1)."""
    path = tmp_path / "roster.csv"
    path.write_text(_text([HEADER, ["M-1", "E1", "1.23457E+11", "Ann", "Lee", "1980-01-02", "en"],
                           ["M-2", "E2", "", "Bo", "Kim", "1/2/1980", "en"],
                           ["M-3", "E3", "", "Cy", "Ray", "02.01.1980", "en"]]),
                    encoding="utf-8")
    result = _import(app, runner, path, employer, "--partial")
    assert "row 2, badge_id: is a long number a spreadsheet rounded" in result.stderr
    assert "row 3, birth_date: is written as a spreadsheet's local date" in result.stderr
    assert "row 4, birth_date: is written as a spreadsheet's local date" in result.stderr
    assert "format the column as yyyy-mm-dd" in result.stderr
    assert _names(app) == {}


def test_a_file_neither_utf8_nor_readable_as_csv_is_refused_for_its_encoding() -> None:
    """An open quote runs to the end: no row to name, but the encoding is still what to fix."""
    with pytest.raises(RosterFileError, match=r"^the file is not UTF-8 text \(byte 200013\)"):
        decode_roster(b'member_id,x\n"' + b"y" * 200_000 + b"\xe9")
