"""Read a roster file the way spreadsheets really save one, or refuse it saying what to do.

Excel's "CSV UTF-8" (a byte-order mark), "Unicode Text" (UTF-16 with a mark, tab-separated)
and a European Excel's semicolons are all read. A file in a legacy code page (Excel's plain
"CSV" on Windows is cp1252, on a Mac Mac Roman, in Poland cp1250) is refused naming the row
and column of the first such character: guessing its code page would store garbled names.
A workbook, an image or other binary renamed .csv is refused by what it is.

Rows are numbered as a spreadsheet shows them (the header is row 1; a quoted cell with a line
break in it is still one row).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any, TextIO

from .errors import N_, Msg, ServiceError

REQUIRED = ("member_id", "employee_id", "first_name", "last_name", "birth_date")
OPTIONAL = ("badge_id", "language", "phone", "email", "advocate_id")
COLUMNS = REQUIRED + OPTIONAL
# What Excel and its peers separate cells with: comma, a European locale's semicolon, and
# "Unicode Text"'s tab.
_DELIMITERS = (",", ";", "\t")
_SEPARATOR_RE = re.compile(r"[\s_-]+")
_SAVE_AS = N_("in Excel choose File > Save As > “CSV UTF-8 (Comma delimited)” and upload "
              "that file")
# The first bytes of files that get renamed .csv by mistake.
_SIGNATURES: tuple[tuple[bytes, Msg], ...] = (
    (b"PK\x03\x04", N_("an Excel workbook (.xlsx) or another zip file")),
    (b"\xd0\xcf\x11\xe0", N_("an old Excel workbook (.xls) or another Office file")),
    (b"%PDF", N_("a PDF document")),
    (b"\x89PNG", N_("a PNG image")),
    (b"\xff\xd8\xff", N_("a JPEG image")),
    (b"GIF8", N_("a GIF image")),
)


class RosterFileError(ServiceError):
    """The file as a whole cannot be read (encoding, missing or unknown columns)."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid", "Roster refused", [{"field": "file", "message": message}],
                         message, reason="roster_file")


def decode_roster(raw: bytes) -> str:
    """Return the roster's text: UTF-8 (with or without a mark) or UTF-16 with a mark.

    Raises RosterFileError for a binary file, naming what it looks like, and for text in
    another encoding, naming the row and column of the first character that is not UTF-8.
    """
    for signature, what in _SIGNATURES:
        if raw.startswith(signature):
            raise RosterFileError(N_("the file is %(what)s, not CSV text; %(save_as)s",
                                     what=what, save_as=_SAVE_AS))
    utf16 = _utf16_codec(raw)
    if utf16 is not None:
        try:
            return raw.decode(utf16).lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise RosterFileError(N_("the file is not readable as UTF-16 text (at byte "
                                     "%(n)d); %(save_as)s", n=exc.start,
                                     save_as=_SAVE_AS)) from None
    if b"\x00" in raw[:4096]:
        raise RosterFileError(N_("the file holds binary data, not CSV text; %(save_as)s",
                                 save_as=_SAVE_AS))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = _locate(raw.decode("utf-8-sig", errors="replace"))
        if where is None:
            raise RosterFileError(N_("the file is not UTF-8 text (byte %(n)d); %(save_as)s",
                                     n=exc.start, save_as=_SAVE_AS)) from None
        raise RosterFileError(N_("row %(row)d, %(column)s: the file is not UTF-8 text (byte "
                                 "%(n)d; Excel's plain “CSV” saves names such as José in an "
                                 "older encoding); %(save_as)s", row=where[0], column=where[1],
                                 n=exc.start, save_as=_SAVE_AS)) from None


def _utf16_codec(raw: bytes) -> str | None:
    """The UTF-16 codec of a file that starts with its mark, or whose header is ASCII in it."""
    if raw.startswith(codecs.BOM_UTF16_LE):
        return "utf-16"
    if raw.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    head = raw[:64]
    # Without a mark: an ASCII header in UTF-16 has a NUL beside every letter.
    if len(head) >= 8 and head[1::2].count(0) == len(head) // 2 and 0 not in head[0::2]:
        return "utf-16-le"
    if len(head) >= 8 and head[0::2].count(0) == len(head) // 2 and 0 not in head[1::2]:
        return "utf-16-be"
    return None


def _locate(text: str) -> tuple[int, str] | None:
    """The row and column name of the first replacement character in text, if the reader
    can tell."""
    header: list[str] = []
    try:
        for row, cells in _records(io.StringIO(text, newline="")):
            if not header and any(c.strip() for c in cells):
                header = [_column_name(c) for c in cells]
            for index, cell in enumerate(cells):
                if "\ufffd" in cell:
                    name = header[index] if index < len(header) and header[index] else \
                        f"column {index + 1}"
                    return row, name
    except RosterFileError:  # unreadable as CSV too: the encoding is the first thing to fix
        pass
    return None


def _records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield (row as a spreadsheet numbers it, cells), the delimiter taken from the header."""
    it = iter(lines)
    leading: list[str] = []
    for line in it:
        leading.append(line)
        if line.strip():
            break
    reader = csv.reader(chain(leading, it), delimiter=_delimiter(leading[-1] if leading else ""))
    return _cells(reader)


def _delimiter(line: str) -> str:
    """The separator that splits the header line into the most roster column names."""
    def known(sep: str) -> int:
        return sum(_column_name(c) in COLUMNS for c in line.split(sep))
    return max(_DELIMITERS, key=known)  # a tie (none known) keeps the comma, listed first


def _column_name(text: str) -> str:
    """A header cell as a column name: case, spaces and hyphens as people type them."""
    return _SEPARATOR_RE.sub("_", text.lstrip("\ufeff").strip().lower())


def read_rows(stream: TextIO, *, max_rows: int | None = None) -> list[tuple[int, dict[str, str]]]:
    """Read CSV rows as (row number, {column: stripped text}), skipping blank rows.

    Refuses the file (RosterFileError) past ``max_rows`` data rows, as soon as it gets there,
    and when the CSV itself cannot be read (a cell beyond the csv module's field limit, a NUL).
    A column with no name in the header (a spreadsheet's trailing empty columns) is ignored,
    and so are empty cells past the last column.
    """
    header: list[str] | None = None
    out: list[tuple[int, dict[str, str]]] = []
    for line, cells in _records(stream):
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [_column_name(c) for c in cells]
            _check_header(header, line)
            continue
        if max_rows is not None and len(out) >= max_rows:
            # Stop here: a million-row file would otherwise hold the request for minutes.
            raise RosterFileError(N_("row %(line)d: the file has more than %(max)d rows, the "
                                     "most one import takes (ROSTER_MAX_ROWS); split it into "
                                     "smaller files", line=line, max=max_rows))
        out.append((line, _by_name(header, cells)))
    if header is None:
        raise RosterFileError(N_("row 1: the file is empty (no header row)"))
    return out


def _by_name(header: list[str], cells: list[str]) -> dict[str, str]:
    """A data row's cells by column name, or a marker of the cells no named column holds."""
    if len(cells) == len(header) and all(header):  # the usual row: one cell per named column
        return {name: value.strip() for name, value in zip(header, cells, strict=True)}
    if any(c.strip() for c in cells[len(header):]):
        return {"__extra__": str(len(cells) - len(header))}
    unnamed = [i + 1 for i, name in enumerate(header) if not name
               and i < len(cells) and cells[i].strip()]
    if unnamed:
        return {"__unnamed__": str(unnamed[0])}
    padded = cells + [""] * (len(header) - len(cells))
    return {name: value.strip() for name, value in zip(header, padded, strict=False) if name}


def _cells(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Yield the reader's (row, cells), turning an unreadable row into a RosterFileError
    naming it."""
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The row the reader was reading: the bad cell starts in it.
            if "field larger than field limit" in str(exc):
                raise RosterFileError(N_(
                    "row %(line)d: a cell is longer than %(max)d characters; no roster column "
                    "holds that much (is a quote mark left open?)",
                    line=row, max=csv.field_size_limit())) from None
            raise RosterFileError(N_("row %(line)d: the file is not readable as CSV "
                                     "(%(reason)s)", line=row, reason=str(exc))) from None
        yield row, cells


def _check_header(header: list[str], line: int) -> None:
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise RosterFileError(N_("row %(line)d: unknown column(s) %(unknown)s; "
                                 "expected %(columns)s",
                                 line=line, unknown=", ".join(unknown),
                                 columns=", ".join(COLUMNS)))
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise RosterFileError(N_("row %(line)d: missing column(s) %(missing)s", line=line,
                                 missing=", ".join(missing)))
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise RosterFileError(N_("row %(line)d: column(s) repeated: %(dupes)s", line=line,
                                 dupes=", ".join(dupes)))


def open_roster(path: str | Path) -> TextIO:
    """Open a roster file as text (decode_roster's encodings)."""
    return io.StringIO(decode_roster(Path(path).read_bytes()), newline="")
