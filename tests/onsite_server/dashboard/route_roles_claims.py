"""Who may see and resolve unmatched kiosk sign-ins (read by test_access.py): site staff."""

from __future__ import annotations

STAFF = frozenset({"admin", "coordinator"})

ROUTE_ROLES: dict[str, frozenset[str] | str] = {
    "dashboard.claims": STAFF,
    "dashboard.claim_resolve": STAFF,
}
