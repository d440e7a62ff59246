"""Pairing a kiosk with its onsite server."""

from __future__ import annotations

import json

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


class PairingQr(Strict):
    """What the dashboard's pairing QR holds: the server's address and the one-time code.

    A USB scanner types it into the kiosk's set-up screen as JSON text, then Enter.
    """

    server_url: str = Field(min_length=8, max_length=300, pattern=r"^https?://[^\s/]+")
    pairing_code: str = Field(min_length=4, max_length=32)

    def text(self) -> str:
        """The QR's text: compact JSON, so the code stays small enough to scan from a screen."""
        return json.dumps({"server_url": self.server_url.rstrip("/"),
                           "pairing_code": self.pairing_code}, separators=(",", ":"))

    @classmethod
    def read(cls, text: str) -> PairingQr | None:
        """The pairing QR in a scanned text, or None when the text is not one."""
        try:
            return cls.model_validate_json(text.strip())
        except ValueError:
            return None
