"""Who may open the events and check-in routes (read by test_access.py): staff only."""

from __future__ import annotations

STAFF = frozenset({"admin", "coordinator"})

ROUTE_ROLES: dict[str, frozenset[str] | str] = {
    "dashboard.events": STAFF,
    "dashboard.event_new": STAFF,
    "dashboard.event_edit": STAFF,
    "dashboard.event_detail": STAFF,
    "dashboard.slots_add": STAFF,
    "dashboard.slot_capacity": STAFF,
    "dashboard.slot_cancel": STAFF,
    "dashboard.event_cancel": STAFF,
    "dashboard.event_waitlist": STAFF,
    "dashboard.slot_promote": STAFF,
    "dashboard.event_roster": STAFF,
    "dashboard.event_calendar": STAFF,
    "dashboard.checkin": STAFF,
    "dashboard.checkin_scan": STAFF,
    "dashboard.checkin_booking": STAFF,
    "dashboard.checkin_late": STAFF,
    "dashboard.checkin_undo": STAFF,
    "dashboard.event_people": STAFF,
    "dashboard.checkin_walk_in": STAFF,
    "dashboard.checkin_no_shows": STAFF,
    "dashboard.checkin_live": STAFF,
}
