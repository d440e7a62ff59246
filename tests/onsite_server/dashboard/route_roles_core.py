"""Who may open each dashboard route of the core and admin areas (read by test_access.py).

Each area keeps its own ``route_roles_<area>.py`` with a ``ROUTE_ROLES`` table, so areas
added later never edit this file: endpoint -> the roles let in, or PUBLIC.
"""

from __future__ import annotations

PUBLIC = "public"
ADMIN = frozenset({"admin"})
# Server operations: an admin within their own site, an operator across the server.
OPERATIONS = frozenset({"admin", "operator"})
STAFF = frozenset({"admin", "coordinator"})
EVERYONE = frozenset({"admin", "coordinator", "advocate"})
# The landing page: everyone but advocates (who land on their referrals).
HOME = frozenset({"admin", "coordinator", "employer", "operator"})

ROUTE_ROLES: dict[str, frozenset[str] | str] = {
    "root": PUBLIC,
    "auth.login": PUBLIC,
    "auth.second_factor": PUBLIC,
    "auth.enrol": PUBLIC,
    "auth.logout": PUBLIC,
    "auth.session_status": PUBLIC,
    "auth.extend_session": PUBLIC,
    "auth.set_language": PUBLIC,
    "auth.account_link": PUBLIC,
    "dashboard.index": HOME,
    "dashboard.crisis_alert": EVERYONE,
    "dashboard.crisis_banner": EVERYONE | HOME,
    "dashboard.crisis_referral": frozenset({"admin", "advocate"}),
    "advocate.index": frozenset({"advocate"}),
    "advocate.referral": frozenset({"advocate"}),
    # Admin pages.
    "dashboard.settings": ADMIN,
    "dashboard.users": ADMIN,
    "dashboard.user_action": ADMIN,
    "dashboard.roster": ADMIN,
    "dashboard.audit_log": OPERATIONS,
    "dashboard.sync_health": OPERATIONS,
    "dashboard.retry": OPERATIONS,
    "dashboard.clear_alert": OPERATIONS,
    # The kiosk fleet.
    "dashboard.fleet": STAFF,
    "dashboard.pair": STAFF,
    "dashboard.revoke": STAFF,
}
