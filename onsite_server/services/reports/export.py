"""A report's tables as CSV, the way the dashboard offers them for download."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from ..spreadsheet import safe_row
from ..suppression import TOTAL
from .model import EmployerReport, Label, ReportTable, label


def table_csv(report: EmployerReport, table: ReportTable, language: str = "en",
              hidden_mark: str = "suppressed", total_label: str = "Total") -> str:
    """One table as CSV with its margins; a suppressed cell reads ``hidden_mark``."""
    t = table.table
    cols = [*t.cols, *([TOTAL] if t.row_totals else [])]
    rows = [*t.rows, *([TOTAL] if t.col_totals else [])]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def name(labels: Mapping[str, Label], key: str) -> str:
        return total_label if key == TOTAL else label(labels[key], language)

    # Labels are typed by staff (event titles): never run as formulas.
    writer.writerow(safe_row(["", *(name(table.col_labels, c) for c in cols)]))
    for row in rows:
        line: list[Any] = [name(table.row_labels, row)]
        for col in cols:
            if not t.has(row, col):
                line.append("")
                continue
            value = report.shown(table, row, col)
            line.append(hidden_mark if value is None else value)
        writer.writerow(safe_row(line))
    return out.getvalue()

