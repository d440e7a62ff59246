"""Kiosk settings: where the server is, window size, the data folder and the key folder.

The outbox key lives in ``key_dir``, apart from ``data_dir`` (the outbox, the catalog cache
and the pairing), so a copy of the data folder alone opens nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KioskSettings:
    """What the kiosk needs to start; read from ONSITE_KIOSK_* environment variables."""

    server_url: str = "https://127.0.0.1:8700"
    data_dir: Path = Path.home() / ".onsite-kiosk"
    width: int = 1080
    height: int = 1920
    fullscreen: bool = False
    language: str = "en"
    # None: a sibling of data_dir named "<data_dir>-keys" (~/.onsite-kiosk-keys by default).
    key_dir: Path | None = None
    # Taps are ignored this long after the screen or question changes, so the second tap of
    # a double-tap cannot act on the next screen (issue 15).
    tap_guard_ms: int = 400
    # Debug only: a file the kiosk keeps rewriting with its buttons' screen positions, for
    # tests that tap the real window from outside (kiosk/ui/probe.py).
    layout_file: Path | None = None
    # The Bluetooth controller for cuffs and scales, in bumble's terms ("usb:0",
    # "hci-socket:0"); empty: the kiosk has none (issue 19).
    ble_transport: str = ""

    @property
    def outbox_path(self) -> Path:
        """The encrypted outbox (SQLite)."""
        return self.data_dir / "outbox.sqlite"

    @property
    def key_path(self) -> Path:
        """The outbox's AES-GCM key, in its own folder."""
        folder = self.key_dir or self.data_dir.with_name(self.data_dir.name + "-keys")
        return folder / "outbox.key"

    @property
    def catalog_path(self) -> Path:
        """The last catalog and its ETag."""
        return self.data_dir / "catalog.json"

    @property
    def pairing_path(self) -> Path:
        """The paired server: URL, pinned certificate fingerprint and device token (0600)."""
        return self.data_dir / "pairing.json"

    @classmethod
    def from_env(cls) -> KioskSettings:
        """Build settings from the environment, falling back to the defaults."""
        env = os.environ
        return cls(
            server_url=env.get("ONSITE_KIOSK_SERVER_URL", cls.server_url),
            data_dir=Path(env.get("ONSITE_KIOSK_DATA_DIR", str(cls.data_dir))),
            width=int(env.get("ONSITE_KIOSK_WIDTH", cls.width)),
            height=int(env.get("ONSITE_KIOSK_HEIGHT", cls.height)),
            fullscreen=env.get("ONSITE_KIOSK_FULLSCREEN", "0") == "1",
            language=env.get("ONSITE_KIOSK_LANGUAGE", cls.language),
            key_dir=Path(env["ONSITE_KIOSK_KEY_DIR"]) if env.get("ONSITE_KIOSK_KEY_DIR")
            else None,
            tap_guard_ms=int(env.get("ONSITE_KIOSK_TAP_GUARD_MS", cls.tap_guard_ms)),
            layout_file=Path(env["ONSITE_KIOSK_LAYOUT_FILE"])
            if env.get("ONSITE_KIOSK_LAYOUT_FILE") else None,
            ble_transport=env.get("ONSITE_KIOSK_BLE_TRANSPORT", ""),
        )
