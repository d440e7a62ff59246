"""Employer reports: participation and screening outcomes, aggregates only, small cells hidden.

What one report publishes, for whole months (UTC, the months retention tallies use):

- **Screenings completed:** people screened per instrument.
- **Outcomes:** per instrument, people by result band (the band of their latest answer).
- **Device origin:** for blood pressure and BMI, people whose latest reading (the one the
  outcome counts) came from a Bluetooth device, was typed by the member (self-reported), or is
  no longer known (a tally of answers retention deleted keeps no origin). Each row adds up to
  the screenings cell of its instrument (one key), so suppression sees the split and its total
  together and no side of a split can be had by subtraction.
- **Participation by event:** members checked in, no-show and booked, per event whose slots
  start in the period.
- **Participation by day and hour:** people who used a kiosk or checked in at an event, per
  local date and hour (answers already deleted by retention are not in this table: a tally
  has no day or hour).

Cells count distinct people, never submissions. A person is a member, or for anonymous use
one kiosk session. Screenings and outcomes count a person once per site, month and
instrument, by the same rule retention uses when it tallies answers it deletes
(``retention.person_key``), so a report reads the rows still here plus the tallies and stays
the same after a purge. The outcome tables' totals *are* the screenings table's cells (one key
each), so suppression decides over all the tables at once (``services.suppression``).

The database does the counting (issue 20): a window picks each person's latest answer, GROUP BY
counts them, and a UNION of (local hour, person) rows counts visits, so what comes back to
Python is the cells, not the period's rows (tests/onsite_server/services/
test_reports_counted.py holds it to a plain Python count of the rows on both databases).

The package's modules: ``model`` (the report, its tables and labels), ``counting`` (the
database counts the cells), ``tables`` (cells into labelled tables), ``build``
(``employer_report``: the period checked, the tables built, suppression decided) and
``export`` (a table as CSV).
"""

from __future__ import annotations

from .build import employer_report, parse_month
from .export import table_csv
from .model import (
    DEVICE,
    DEVICE_INSTRUMENTS,
    EVENT_COLUMNS,
    NOT_RECORDED,
    PEOPLE,
    SELF_REPORTED,
    EmployerReport,
    Label,
    ReportTable,
    cols_of,
    label,
    rows_of,
)

__all__ = [
    "DEVICE",
    "DEVICE_INSTRUMENTS",
    "EVENT_COLUMNS",
    "NOT_RECORDED",
    "PEOPLE",
    "SELF_REPORTED",
    "EmployerReport",
    "Label",
    "ReportTable",
    "cols_of",
    "employer_report",
    "label",
    "parse_month",
    "rows_of",
    "table_csv",
]
