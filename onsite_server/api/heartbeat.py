"""POST /heartbeat: a kiosk reports its health for the coordinators' fleet view."""

from __future__ import annotations

from shared.schemas.heartbeat import HeartbeatRequest, HeartbeatResponse

from ..models import utcnow
from . import current_kiosk, operation


@operation(
    "/heartbeat", "POST", summary="Report kiosk health", tag="fleet",
    request_model=HeartbeatRequest,
    responses={200: ("Stored", HeartbeatResponse)},
)
def post_heartbeat(body: HeartbeatRequest) -> HeartbeatResponse:
    """Store the kiosk's version, outbox depth, last sync and free disk on its row."""
    kiosk = current_kiosk()
    now = utcnow()
    kiosk.app_version = body.app_version
    kiosk.outbox_depth = body.outbox_depth
    kiosk.last_sync_at = body.last_sync_at
    kiosk.free_disk_bytes = body.free_disk_bytes
    kiosk.last_heartbeat_at = now
    return HeartbeatResponse(server_time=now, ok=True)
