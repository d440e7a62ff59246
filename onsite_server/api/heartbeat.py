"""POST /heartbeat: a kiosk reports its health for the coordinators' fleet view."""

from __future__ import annotations

from shared.schemas.heartbeat import HeartbeatRequest, HeartbeatResponse

from ..db import get_session
from ..models import utcnow
from ..services.fleet import record_heartbeat
from . import authenticated_kiosk, operation


@operation(
    "/heartbeat", "POST", summary="Report kiosk health", tag="fleet",
    request_model=HeartbeatRequest,
    responses={200: ("Stored", HeartbeatResponse)},
)
def post_heartbeat(body: HeartbeatRequest) -> HeartbeatResponse:
    """Store the kiosk's version, outbox depth, last sync and free disk on its row."""
    now = utcnow()
    record_heartbeat(get_session(), authenticated_kiosk(), app_version=body.app_version,
                     outbox_depth=body.outbox_depth, last_sync_at=body.last_sync_at,
                     free_disk_bytes=body.free_disk_bytes, now=now)
    return HeartbeatResponse(server_time=now, ok=True)
