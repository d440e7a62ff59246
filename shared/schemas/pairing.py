"""Pairing a kiosk with its onsite server."""

from __future__ import annotations

from pydantic import Field

from .common import Out, Strict


class PairRequest(Strict):
    """Trade a one-time pairing code for a device token."""

    pairing_code: str = Field(min_length=4, max_length=32)
    app_version: str | None = Field(default=None, max_length=64)


class PairResponse(Out):
    """The device token (shown once) and what the kiosk needs to pin the server."""

    kiosk_id: str
    token: str
    site: str
    site_name: str
    timezone: str
    tls_fingerprint_sha256: str | None = None
