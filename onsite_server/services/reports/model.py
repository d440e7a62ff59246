"""The shape of an employer report: its tables, their labels, and the published cells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..suppression import TOTAL, CellRange, Publication, Suppression, Table, audit

Label = Mapping[str, str]  # language code -> text
PEOPLE = "people"
EVENT_COLUMNS = ("checked_in", "no_show", "booked")
# The instruments whose answers a kiosk can take from a cuff or a scale (issue 19).
DEVICE_INSTRUMENTS = ("blood_pressure", "bmi")
DEVICE, SELF_REPORTED, NOT_RECORDED = "device", "self_reported", "not_recorded"


@dataclass(frozen=True)
class ReportTable:
    """One table of a report: its counts and margins, and the labels of its rows and columns."""

    id: str
    kind: str  # screenings | outcome | origin | events | day_hour
    table: Table
    row_labels: Mapping[str, Label]
    col_labels: Mapping[str, Label]
    title: Label | None = None  # the instrument's title, for outcome tables


@dataclass(frozen=True)
class EmployerReport:
    """A whole report with its suppression decided; read cells through ``shown``."""

    first_month: str
    last_month: str
    site_id: int | None
    timezone: str
    tables: tuple[ReportTable, ...]
    publication: Publication
    suppression: Suppression

    @property
    def minimum(self) -> int:
        """The minimum cell size this report was suppressed at."""
        return self.suppression.minimum

    def table(self, table_id: str) -> ReportTable:
        """The table with this id."""
        for t in self.tables:
            if t.id == table_id:
                return t
        raise KeyError(table_id)

    def shown(self, table: ReportTable, row: str, col: str) -> int | None:
        """The published value of a cell, or None when it is suppressed."""
        key = table.table.key(row, col)
        return None if key in self.suppression.hidden else self.publication.values[key]

    def hidden_count(self) -> int:
        """How many cells the report hides."""
        return len(self.suppression.hidden)

    def audit(self) -> list[CellRange]:
        """The audit of every hidden cell: what a reader could narrow it down to."""
        return audit(self.publication, self.suppression.hidden, self.minimum)



def label(text: Label, language: str) -> str:
    """A label in the language, falling back to English."""
    return text.get(language) or text.get("en") or next(iter(text.values()), "")



def rows_of(table: ReportTable) -> Sequence[str]:
    """The table's row keys, with the totals row last when it has one."""
    return [*table.table.rows, *([TOTAL] if table.table.col_totals else [])]


def cols_of(table: ReportTable) -> Sequence[str]:
    """The table's column keys, with the totals column last when it has one."""
    return [*table.table.cols, *([TOTAL] if table.table.row_totals else [])]
