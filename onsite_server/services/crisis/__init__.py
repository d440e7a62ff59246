"""Crisis on the server: recording it whatever else is wrong, and staff acknowledging it.

``record`` is the one place a crisis is recorded (a member's crisis referral, or an anonymous
alert for staff on site), called by submissions, crisis alerts and the kiosk API; ``staff``
is what the dashboard and the advocate pages do with a crisis once recorded. The package
re-exports the public names of both.
"""

from __future__ import annotations

from .record import (
    alert_body,
    alert_key,
    answer_triggers,
    audit_crisis,
    content_key,
    crisis_summary,
    raise_anonymous_alert,
    raise_lenient_alert,
    record_refused,
    settle,
)
from .staff import (
    Raised,
    acknowledge_alert,
    actor_names,
    audit_view,
    raised_times,
    record_referral_acknowledged,
    required_note,
    waiting_since,
)

__all__ = [
    "Raised",
    "acknowledge_alert",
    "actor_names",
    "alert_body",
    "alert_key",
    "answer_triggers",
    "audit_crisis",
    "audit_view",
    "content_key",
    "crisis_summary",
    "raise_anonymous_alert",
    "raise_lenient_alert",
    "raised_times",
    "record_referral_acknowledged",
    "record_refused",
    "required_note",
    "settle",
    "waiting_since",
]
