"""Who may open the employer reports (read by test_access.py)."""

from __future__ import annotations

STAFF = frozenset({"admin", "coordinator"})

ROUTE_ROLES: dict[str, frozenset[str] | str] = {
    "dashboard.reports": STAFF,
    "dashboard.report_csv": STAFF,
}
