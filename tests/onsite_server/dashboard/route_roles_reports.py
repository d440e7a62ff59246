"""Who may open the employer reports (read by test_access.py): staff, and the employer."""

from __future__ import annotations

REPORTS = frozenset({"admin", "coordinator", "employer"})

ROUTE_ROLES: dict[str, frozenset[str] | str] = {
    "dashboard.reports": REPORTS,
    "dashboard.report_csv": REPORTS,
    "dashboard.report_pdf": REPORTS,
}
