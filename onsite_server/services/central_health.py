"""What the sync tells staff about central itself (as opposed to one message): refused keys."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Alert

log = logging.getLogger(__name__)
CREDENTIALS_REFUSED = "central_credentials"


def credentials_refused(session: Session, message: str) -> bool:
    """Raise the server-wide alert that central refuses our client; False if already open."""
    log.error("central refused the sync's credentials: %s", message)
    if session.scalars(select(Alert.id).where(Alert.kind == CREDENTIALS_REFUSED,
                                              Alert.cleared_at.is_(None))).first():
        return False
    session.add(Alert(kind=CREDENTIALS_REFUSED, site_id=None,
                      message="Central refuses this server's SMART client credentials, so "
                              "nothing is sent until an admin fixes them: " + message))
    return True


def credentials_accepted(session: Session) -> int:
    """Clear an open credentials alert once central accepts us again; return how many."""
    open_alerts = session.scalars(select(Alert).where(Alert.kind == CREDENTIALS_REFUSED,
                                                      Alert.cleared_at.is_(None))).all()
    from ..models import utcnow

    for alert in open_alerts:
        alert.cleared_at = utcnow()
    return len(open_alerts)
