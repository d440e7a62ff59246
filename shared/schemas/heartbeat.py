"""Heartbeat: a kiosk's periodic health report for the fleet view."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .common import KioskTime, Out, Strict


class HeartbeatRequest(Strict):
    """App version, unsent outbox rows, last successful sync and free disk space."""

    app_version: str = Field(min_length=1, max_length=64)
    outbox_depth: int = Field(ge=0, le=10_000_000)
    last_sync_at: KioskTime | None = None
    free_disk_bytes: int = Field(ge=0, le=2**63 - 1)


class HeartbeatResponse(Out):
    """Acknowledgement, with the server's clock so the kiosk can notice drift."""

    server_time: datetime
    ok: bool = True
